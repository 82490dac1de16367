"""``--agent openai-chat:MODEL?system=prompt.md&tools=module:TOOLS``: test a model and a prompt
without writing an agent.

Any OpenAI-compatible model becomes the agent under test: a system prompt from a file, an
optional tool list executed by your own Python module, an OpenAI tool-calling loop with
the tool results fed back, streaming (for time-to-first-token), and token usage and cost on
every reply. Spec arguments (query string):

==========================  ==================================================================
``system=PATH``             system prompt file (Markdown/text); none by default
``tools=module:NAME``       a list of OpenAI tool schemas (``{"type": "function", ...}``)
``dispatch=module:FUNC``    the tool executor; default ``dispatch`` in the ``tools`` module
``base_url=URL``            endpoint; default ``EVALKIT_AGENT_BASE_URL``, ``--base-url``,
                            ``EVALKIT_BASE_URL``, ``OPENAI_BASE_URL``, else OpenAI
``temperature=T``, ``seed=N``, ``max_tokens=N``   sampling parameters
``max_tool_iterations=N``   model calls per user message that may request tools (default 6)
``stream=0|1``              stream replies (default 1: measures TTFT)
``timeout=S``, ``max_retries=N``, ``max_concurrency=N``, ``rpm=N``, ``tpm=N``   client limits
``prices=FILE``             price table (YAML/JSON) for cost
``cache_dir=DIR``           record responses to this cache; add ``replay=1`` to answer from it
==========================  ==================================================================

The API key comes from ``EVALKIT_AGENT_API_KEY`` or ``OPENAI_API_KEY`` (never from the spec).

Tool contract: ``dispatch(name, arguments, session)`` (sync or async) returns any
JSON-able result for the tool call ``name`` with the parsed ``arguments`` dict. ``session``
is a :class:`ToolSession`: ``session.info`` (scenario, customer, channel, initial state),
``session.state`` (a dict, fresh per conversation, seeded from the scenario's
``initial_state``; returned as the conversation's end state for ``state`` assertions) and
``session.handoff(reason, ticket_id=None)`` to hand the conversation to a human. An
exception raised by ``dispatch`` is sent to the model as ``{"error": "..."}`` and recorded
on the tool call.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from evalkit.agents.base import AgentConfig, AgentProvider, AgentReply, SessionInfo, TurnContext
from evalkit.agents.python import parse_query
from evalkit.core.errors import AgentSpecError, ConfigError
from evalkit.core.pricing import load_prices
from evalkit.core.transcript import Handoff, ToolCall, Usage
from evalkit.llm.cache import ResponseCache
from evalkit.llm.client import ChatResult, LLMClient
from evalkit.llm.settings import ModelSettings

__all__ = ["OpenAIChatProvider", "OpenAIChatSession", "ToolSession"]

_CLIENT_OPTIONS = ("timeout", "max_retries", "max_concurrency", "rpm", "tpm")
_KNOWN = {"system", "tools", "dispatch", "base_url", "temperature", "seed", "max_tokens", "max_tool_iterations",
          "stream", "prices", "cache_dir", "replay", *_CLIENT_OPTIONS}


@dataclass
class ToolSession:
    """What a tool dispatcher gets besides the call: the conversation and its state."""

    info: SessionInfo
    state: dict[str, Any] = field(default_factory=dict)
    handed_off: Handoff | None = None

    def handoff(self, reason: str | None = None, ticket_id: str | None = None) -> None:
        """Hand the conversation to a human after this reply."""
        self.handed_off = Handoff(reason=reason, ticket_id=ticket_id)


def _import(ref: str, what: str, spec: str) -> Any:
    module_name, _, attr = str(ref).partition(":")
    if not module_name or not attr:
        raise AgentSpecError(f"{what} must be 'module:NAME', got '{ref}'", field=spec)
    try:
        return getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise AgentSpecError(f"cannot import {what} module '{module_name}': {exc}", field=spec) from None
    except AttributeError:
        raise AgentSpecError(f"module '{module_name}' has no '{attr}' ({what})", field=spec) from None


class OpenAIChatProvider(AgentProvider):
    """Builds one :class:`OpenAIChatSession` per conversation; all share one client."""

    def __init__(self, spec: str, *, env: dict[str, str] | None = None, config: AgentConfig | None = None) -> None:
        self.spec = spec
        rest = spec.split(":", 1)[1] if ":" in spec else ""
        model, _, query = rest.partition("?")
        if not model.strip():
            raise AgentSpecError("openai-chat needs a model: openai-chat:MODEL[?system=...&tools=...]", field=spec)
        args = parse_query(query, spec=spec) if query else {}
        unknown = sorted(set(args) - _KNOWN)
        if unknown:
            raise AgentSpecError(f"unknown {'argument' if len(unknown) == 1 else 'arguments'} {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN))})",
                                 field=spec)
        self.system: str | None = None
        if args.get("system"):
            path = Path(str(args["system"]))
            try:
                self.system = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise AgentSpecError(f"cannot read system prompt '{path}': {exc.strerror or exc}", field=spec) from None
        self.tools: list[dict[str, Any]] = []
        self.dispatch: Callable[..., Any] | None = None
        if args.get("tools"):
            tools_ref = str(args["tools"])
            self.tools = list(_import(tools_ref, "tools", spec))
            for t in self.tools:
                if not isinstance(t, dict) or t.get("type") != "function" or "name" not in (t.get("function") or {}):
                    raise AgentSpecError(f"'{tools_ref}' must be a list of OpenAI function tool schemas", field=spec)
            dispatch_ref = str(args.get("dispatch") or f"{tools_ref.partition(':')[0]}:dispatch")
            self.dispatch = _import(dispatch_ref, "dispatch", spec)
            if not callable(self.dispatch):
                raise AgentSpecError(f"'{dispatch_ref}' is not callable", field=spec)
        elif args.get("dispatch"):
            raise AgentSpecError("'dispatch' needs 'tools'", field=spec)
        self.max_tool_iterations = int(args.get("max_tool_iterations", 6))
        if not 1 <= self.max_tool_iterations <= 50:
            raise AgentSpecError("max_tool_iterations must be between 1 and 50", field=spec)
        self.stream = bool(args.get("stream", 1))
        self.temperature = args.get("temperature")
        self.seed = args.get("seed")
        self.max_tokens = args.get("max_tokens")
        options = {k: args[k] for k in _CLIENT_OPTIONS if k in args}
        try:
            settings = ModelSettings.resolve("agent", role_model=model.strip(), role_base_url=args.get("base_url"),
                                             base_url=config.base_url if config else None, env=env, **options)
        except ConfigError as exc:
            raise AgentSpecError(exc.problem, field=spec) from None
        assert settings is not None
        cache = None
        if args.get("cache_dir"):
            cache = ResponseCache(Path(str(args["cache_dir"])))
        self.client = LLMClient(settings, role="agent", cache=cache, prices=load_prices(args.get("prices")),
                                cache_reads=bool(args.get("replay", 0)))

    def model_settings(self) -> list[ModelSettings]:
        return [self.client.settings]

    def new_session(self, info: SessionInfo) -> OpenAIChatSession:
        return OpenAIChatSession(self, ToolSession(info=info, state=copy.deepcopy(dict(info.initial_state or {}))))

    async def aclose(self) -> None:
        await self.client.aclose()


class OpenAIChatSession:
    """One conversation with the model: its own message list and tool state."""

    def __init__(self, provider: OpenAIChatProvider, tools: ToolSession) -> None:
        self.p = provider
        self.tool_session = tools
        self.messages: list[dict[str, Any]] = []
        if provider.system:
            self.messages.append({"role": "system", "content": provider.system})

    def end_state(self) -> dict[str, JsonValue]:
        return json.loads(json.dumps(self.tool_session.state, default=str))

    async def _run_tool(self, call_id: str, name: str, args: dict[str, Any] | None, bad: str | None) -> ToolCall:
        if bad is not None or args is None:
            return ToolCall(id=call_id, name=name, arguments={}, error=bad or "arguments are not a JSON object")
        if self.p.dispatch is None or name not in {t["function"]["name"] for t in self.p.tools}:
            return ToolCall(id=call_id, name=name, arguments=args, error=f"unknown tool '{name}'")
        try:
            result = self.p.dispatch(name, args, self.tool_session)
            if inspect.isawaitable(result):
                result = await result
            result = json.loads(json.dumps(result, default=str))
        except Exception as exc:  # the tool failed: the model is told, the call records it
            return ToolCall(id=call_id, name=name, arguments=args, error=f"{type(exc).__name__}: {exc}")
        return ToolCall(id=call_id, name=name, arguments=args, result=result)

    async def respond(self, ctx: TurnContext) -> AgentReply:
        self.messages.append({"role": "user", "content": ctx.message})
        fired = False

        def first_token() -> None:
            nonlocal fired
            if not fired:
                fired = True
                ctx.first_token()

        results: list[ChatResult] = []
        calls: list[ToolCall] = []
        content = ""
        exhausted = False
        for iteration in range(self.p.max_tool_iterations + 1):
            # The last round offers no tools, so the model must answer in words.
            offer_tools = bool(self.p.tools) and iteration < self.p.max_tool_iterations
            r = await self.p.client.chat(
                self.messages,
                tools=self.p.tools if offer_tools else None,
                temperature=self.p.temperature,
                seed=self.p.seed,
                max_tokens=self.p.max_tokens,
                stream=self.p.stream,
                on_first_token=first_token,
            )
            results.append(r)
            if r.tool_calls and not offer_tools:
                # Tools were not offered (or the bound is reached) but the model still asked:
                # keep its words only, so the history stays valid for the next call.
                self.messages.append({"role": "assistant", "content": r.content or ""})
                content, exhausted = r.content or "", bool(self.p.tools)
                break
            self.messages.append(r.message())
            if not r.tool_calls:
                content = r.content or ""
                break
            for call_id, name, args, bad in r.parsed_tool_calls():
                call = await self._run_tool(call_id, name, args, bad)
                calls.append(call)
                payload = {"error": call.error} if call.error else call.result
                self.messages.append({"role": "tool", "tool_call_id": call_id,
                                      "content": json.dumps(payload, ensure_ascii=False)})
        costs = [0.0 if x.cached else x.cost_usd for x in results]
        usage = Usage(
            prompt_tokens=sum(x.prompt_tokens for x in results),
            completion_tokens=sum(x.completion_tokens for x in results),
            cost_usd=None if any(c is None for c in costs) else math.fsum(c for c in costs if c is not None),
        )
        handoff = self.tool_session.handed_off
        self.tool_session.handed_off = None
        metadata: dict[str, JsonValue] = {"model": self.p.client.model, "model_calls": len(results)}
        if exhausted:
            metadata["tool_iterations_exhausted"] = True
        return AgentReply(content=content, tool_calls=calls, handoff=handoff, usage=usage,
                          end_conversation=handoff is not None, metadata=metadata)
