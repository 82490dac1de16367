"""The engine interface: what the dialog manager of any engine gets and returns.

:class:`~reference_agent.agent.SupportAgent` owns the shared pipeline (channel
normalisation, input guardrails, PII redaction, output check, channel formatting, memory,
analytics, streaming). An :class:`Engine` only decides what to say and which tools to
call for one user message, through a :class:`Conversation` (store, tools, identity,
memory, profile, faults). ``engine="rules"`` is :class:`~reference_agent.dialog.RulesEngine`;
``engine="llm"`` is ``reference_agent.llm_engine.LLMEngine`` (a later addition).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from reference_agent.faults import ActiveFaults
from reference_agent.memory import Profile, ProfileStore, ShortTermMemory
from reference_agent.nlu import Analysis
from reference_agent.store import Store
from reference_agent.tools import ToolContext, call_tool

__all__ = ["Draft", "Conversation", "Engine", "EngineUnavailableError", "ToolRunner", "make_engine"]


class EngineUnavailableError(ValueError):
    """The requested engine does not exist or cannot be loaded (misuse)."""


class ToolRunner:
    """Calls tools for the engine and records every call of the current turn."""

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx
        self.calls: list[dict[str, Any]] = []

    def __call__(self, name: str, **arguments: Any) -> dict[str, Any]:
        result = call_tool(self.ctx, name, arguments)
        error = f"{result['error']}: {result.get('message', '')}".strip(": ") if "error" in result else None
        self.calls.append({"name": name, "arguments": dict(arguments), "result": result, "error": error})
        return result


@dataclass
class Draft:
    """An engine's answer to one message, before the output check and channel formatting."""

    text: str
    intent: str
    outcome: str  # answered | asked | confirm | completed | refused | redirected | handoff | closed | failed
    handoff: dict[str, Any] | None = None  # {"ticket_id": ..., "reason": ...}
    end_conversation: bool = False
    usage: dict[str, Any] | None = None
    issues: list[str] = field(default_factory=list)  # "intent:ORD-xxxxx" done this turn (profile)


@dataclass
class Conversation:
    """Everything about one conversation an engine may use."""

    session_id: str
    channel: str
    store: Store
    tool_ctx: ToolContext
    faults: ActiveFaults
    memory: ShortTermMemory
    profiles: ProfileStore
    profile: Profile | None = None  # as it was when the customer was identified
    customer: dict[str, Any] | None = None
    tools: ToolRunner = field(init=False)

    def __post_init__(self) -> None:
        self.tools = ToolRunner(self.tool_ctx)

    @property
    def customer_email(self) -> str | None:
        return self.tool_ctx.customer_email

    def identify(self, email: str) -> bool:
        """Adopt ``email`` as the customer's identity if it is on file."""
        customer = self.store.customer_by_email(email)
        if customer is None:
            return False
        self.tool_ctx.customer_email = customer["email"]
        self.customer = customer
        if self.profile is None:
            self.profile = self.profiles.load(customer["customer_id"])
        return True

    def new_turn(self) -> None:
        self.tools = ToolRunner(self.tool_ctx)


class Engine(ABC):
    """Decides the reply to one user message."""

    name: str = "engine"

    @abstractmethod
    def reply(self, conv: Conversation, message: str, analysis: Analysis) -> Draft:
        """Answer ``message`` (already normalised for the channel and screened by the input
        guardrails); call tools through ``conv.tools``."""

    def reset(self) -> None:
        """Forget the dialog state (a new conversation on the same agent)."""
        return None


def make_engine(engine: str | Engine) -> Engine:
    if isinstance(engine, Engine):
        return engine
    if engine == "rules":
        from reference_agent.dialog import RulesEngine

        return RulesEngine()
    if engine == "llm":
        try:
            module = importlib.import_module("reference_agent.llm_engine")
        except ModuleNotFoundError as err:
            if err.name != "reference_agent.llm_engine":
                raise
            raise EngineUnavailableError(
                "engine: 'llm' is not available yet (reference_agent/llm_engine.py is missing); "
                "use engine='rules'") from None
        factory = getattr(module, "LLMEngine", None)
        if factory is None:
            raise EngineUnavailableError("engine: reference_agent.llm_engine defines no LLMEngine")
        return factory()  # type: ignore[no-any-return]
    raise EngineUnavailableError(f"engine: unknown engine {engine!r}; use 'rules' or 'llm'")
