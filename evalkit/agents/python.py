"""``--agent module:factory?key=value``: an agent written in Python, in this process.

The factory is called once per conversation, so every conversation gets a fresh agent
with isolated state. Query parameters become keyword arguments (JSON values when they
parse as JSON, strings otherwise). A factory with a ``session`` parameter receives the
conversation's :class:`~evalkit.agents.base.SessionInfo`; one with an ``agent_config``
parameter receives the run's :class:`~evalkit.agents.base.AgentConfig` (the agent model
from ``--agent-model`` / ``--model`` / ``--base-url``).
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from evalkit.agents.base import AgentAdapter, AgentConfig, AgentProvider, SessionInfo
from evalkit.core.errors import AgentSpecError

if TYPE_CHECKING:
    from evalkit.llm.settings import ModelSettings

__all__ = ["PythonAgentProvider", "parse_query"]


def parse_query(query: str, *, spec: str) -> dict[str, Any]:
    """``a=1&b=x`` -> ``{"a": 1, "b": "x"}`` (JSON when the value parses, else the string)."""
    kwargs: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise AgentSpecError(f"bad query '?{query}' (expected key=value&key=value)", field=spec) from None
    for key, value in pairs:
        if not key.isidentifier():
            raise AgentSpecError(f"'{key}' is not a valid argument name", field=spec)
        if key in kwargs:
            raise AgentSpecError(f"argument '{key}' given twice", field=spec)
        try:
            kwargs[key] = json.loads(value)
        except ValueError:
            kwargs[key] = value
    return kwargs


class PythonAgentProvider(AgentProvider):
    """Imports ``module:factory`` once and calls the factory for every conversation."""

    def __init__(self, spec: str, *, config: AgentConfig | None = None) -> None:
        self.spec = spec
        self.config = config or AgentConfig()
        target, _, query = spec.partition("?")
        module_name, sep, attr = target.partition(":")
        if not sep or not module_name or not attr:
            raise AgentSpecError(
                "expected 'module:factory' (e.g. my_bot.agent:create_agent), an http(s):// URL "
                "or a registered scheme such as 'openai-chat:'",
                field=spec,
            )
        self.kwargs = parse_query(query, spec=spec) if query else {}
        self.factory = self._resolve(module_name, attr)
        self._wants_session, self._wants_config = self._check_signature()

    def _resolve(self, module_name: str, attr: str) -> Callable[..., Any]:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise AgentSpecError(
                    f"no module named '{module_name}' (is it on PYTHONPATH?)", field=self.spec
                ) from None
            raise AgentSpecError(f"importing '{module_name}' failed: {exc}", field=self.spec) from None
        except Exception as exc:  # the user's module crashed at import: say so in one line
            raise AgentSpecError(
                f"importing '{module_name}' failed: {type(exc).__name__}: {exc}", field=self.spec
            ) from None
        obj: Any = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise AgentSpecError(f"module '{module_name}' has no '{attr}'", field=self.spec)
            obj = getattr(obj, part)
        if not callable(obj):
            kind = "an agent object" if hasattr(obj, "respond") else type(obj).__name__
            raise AgentSpecError(
                f"'{attr}' is {kind}, not a factory; give a function or class that returns a fresh agent",
                field=self.spec,
            )
        return obj

    def _check_signature(self) -> tuple[bool, bool]:
        """Whether to pass ``session`` and ``agent_config``: only to a factory naming them
        (a ``**kwargs`` factory may not want them) and not already given in the spec."""
        try:
            sig = inspect.signature(self.factory)
        except (TypeError, ValueError):
            return False, False  # builtins and C callables: cannot check, just call
        params = sig.parameters
        wants_session = "session" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
        wants_session = wants_session and "session" not in self.kwargs
        wants_config = "agent_config" in params and "agent_config" not in self.kwargs
        probe = dict(self.kwargs)
        if "session" in params and "session" not in probe:
            probe["session"] = None
        if wants_config:
            probe["agent_config"] = self.config
        try:
            sig.bind(**probe)
        except TypeError as exc:
            raise AgentSpecError(
                f"cannot call the factory with {sorted(self.kwargs)}: {exc}", field=self.spec
            ) from None
        return "session" in params and wants_session, wants_config

    def model_settings(self) -> list[ModelSettings]:
        """The run's agent model, when the factory takes ``agent_config`` (so may use it)."""
        model = self.config.model
        return [model] if self._wants_config and model is not None else []

    def new_session(self, info: SessionInfo) -> AgentAdapter:
        kwargs = dict(self.kwargs)
        if self._wants_session:
            kwargs["session"] = info
        if self._wants_config:
            kwargs["agent_config"] = self.config
        return self.factory(**kwargs)
