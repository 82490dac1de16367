"""Model flags shared by ``evalkit run`` and ``evalkit score``.

Attach with ``@model_options``; turn the parsed values into the ``llm=`` object with::

    roles = build_model_roles(**kwargs)          # ModelRoles (which model per role)
    llm = build_llm_for_run(roles, cache=..., cache_dir=..., prices=...)   # ModelClients | None

``llm`` is ``None`` when no role has a model (fully offline). Otherwise it is an
:class:`~evalkit.llm.ModelClients`: judges use ``llm.judge``, LLM users ``llm.simulator``,
agent adapters ``llm.agent``; ``llm.models()``, ``llm.cache_stats()`` and ``llm.usage()``
feed the run manifest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from evalkit.core.masking import Secrets
from evalkit.core.pricing import load_prices
from evalkit.llm.cache import DEFAULT_CACHE_DIR, CacheMode, ResponseCache
from evalkit.llm.settings import ROLES, ModelRoles

if TYPE_CHECKING:  # the client imports openai: only when a model is configured
    from evalkit.llm.client import LLMClient
    from evalkit.llm.clients import ModelClients

__all__ = ["model_options", "build_model_roles", "build_llm_for_run", "run_secrets", "MODEL_OPTION_NAMES"]

F = TypeVar("F", bound=Callable[..., Any])

MODEL_OPTION_NAMES = (
    "model", "base_url", "simulator_model", "judge_model", "agent_model", "cache", "cache_dir", "prices",
    "no_preflight",
)

_OPTIONS = [
    click.option("--model", envvar="EVALKIT_MODEL", default=None, metavar="NAME",
                 help="Model for every role (simulator, judge, agent) unless overridden. Env: EVALKIT_MODEL."),
    click.option("--base-url", envvar="EVALKIT_BASE_URL", default=None, metavar="URL",
                 help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), "
                      "http://localhost:11434/v1 (Ollama). Env: EVALKIT_BASE_URL, OPENAI_BASE_URL."),
    click.option("--simulator-model", default=None, metavar="NAME",
                 help="Model for LLM-simulated users. Env: EVALKIT_SIMULATOR_MODEL."),
    click.option("--judge-model", default=None, metavar="NAME",
                 help="Model for LLM judges and deepeval metrics. Env: EVALKIT_JUDGE_MODEL."),
    click.option("--agent-model", default=None, metavar="NAME",
                 help="Model for model-backed agents (openai-chat, reference agent LLM engine). "
                      "Env: EVALKIT_AGENT_MODEL."),
    click.option("--cache", "cache", type=click.Choice([m.value for m in CacheMode]), default="read-write",
                 show_default=True, envvar="EVALKIT_CACHE",
                 help="On-disk model response cache. Agent calls are never read from it (only written)."),
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CACHE_DIR,
                 show_default=True, envvar="EVALKIT_CACHE_DIR", help="Folder of the response cache."),
    click.option("--prices", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                 metavar="FILE", help="YAML/JSON price table: {model: {input: USD/1M, output: USD/1M}}."),
    click.option("--no-preflight", is_flag=True,
                 help="Do not check each configured model (API key, endpoint, model name) before starting."),
]


def model_options(fn: F) -> F:
    """Add the model flags (see ``MODEL_OPTION_NAMES``) to a click command."""
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def build_model_roles(
    *,
    model: str | None = None,
    base_url: str | None = None,
    simulator_model: str | None = None,
    judge_model: str | None = None,
    agent_model: str | None = None,
    **_ignored: Any,
) -> ModelRoles:
    """Which model each role uses, from the flags and the environment."""
    return ModelRoles.resolve(
        model=model,
        base_url=base_url,
        simulator_model=simulator_model,
        judge_model=judge_model,
        agent_model=agent_model,
    )


def run_secrets(roles: ModelRoles) -> Secrets:
    """What a run masks in everything it writes: the keys and ``EVALKIT_SECRET_ENV`` variables
    (:meth:`Secrets.from_env`), each role's key, and the credentials in each role's base URL."""
    settings = [s for r in ROLES if (s := getattr(roles, r)) is not None]
    keys = [s.api_key.get_secret_value() for s in settings if s.api_key is not None]
    return Secrets.from_env().plus(*keys).plus_urls(*(s.base_url for s in settings))


def build_llm_for_run(
    roles: ModelRoles,
    *,
    cache: str | None = None,
    cache_dir: str | Path | None = None,
    prices: str | Path | None = None,
    replay: bool = False,
    **_ignored: Any,
) -> ModelClients | None:
    """The ``llm=`` object for the runner, judges and simulators; ``None`` when offline.

    ``cache`` / ``cache_dir`` default to ``EVALKIT_CACHE`` / ``EVALKIT_CACHE_DIR``, else
    ``read-write`` in ``.evalkit-cache/llm``. ``replay=True`` lets the agent role read from
    the cache too (re-score a run exactly).
    """
    table = load_prices(prices)
    if not roles.any:
        return None
    from evalkit.llm.client import LLMClient
    from evalkit.llm.clients import ModelClients

    mode = cache or os.environ.get("EVALKIT_CACHE") or "read-write"
    folder = Path(cache_dir or os.environ.get("EVALKIT_CACHE_DIR") or DEFAULT_CACHE_DIR)
    store = ResponseCache(folder, mode=mode, secrets=run_secrets(roles))  # type: ignore[arg-type]
    clients: dict[str, LLMClient | None] = {}
    for role in ("simulator", "judge", "agent"):
        settings = getattr(roles, role)
        clients[role] = None if settings is None else LLMClient(
            settings, role=role, cache=store, prices=table, cache_reads=(role != "agent" or replay)
        )
    return ModelClients(**clients, cache=store)
