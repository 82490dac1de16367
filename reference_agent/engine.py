"""The engine interface: what the dialog manager of any engine gets and returns.

:class:`~reference_agent.agent.SupportAgent` owns the shared pipeline (channel
normalisation, input guardrails, PII redaction, output check, channel formatting, memory,
analytics, streaming). An :class:`Engine` only decides what to say and which tools to
call for one user message, through a :class:`Conversation` (store, tools, identity,
memory, profile, faults). ``engine="rules"`` is :class:`~reference_agent.dialog.RulesEngine`;
``engine="llm"`` is ``reference_agent.llm_engine.LLMEngine``.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from reference_agent.faults import ActiveFaults
from reference_agent.memory import Profile, ProfileStore, ShortTermMemory
from reference_agent.nlu import Analysis
from reference_agent.store import Store
from reference_agent.tools import ToolContext, call_tool

__all__ = [
    "Draft", "Conversation", "Engine", "EngineUnavailableError", "ToolRunner", "VERIFY_ATTEMPTS", "make_engine",
    "postcode_of",
]

# Wrong proofs of identity allowed per conversation; after that verification always fails,
# so the order id + postcode pair cannot be guessed by trying postcodes one by one.
VERIFY_ATTEMPTS = 3
# An order id inside an answer is not part of the postcode ("ORD-10001, 97201").
_ORDER_IN_TEXT = re.compile(r"\bORD(?:ER)?\s*[-_#:.]?\s*\d{3,7}\b", re.IGNORECASE)


class EngineUnavailableError(ValueError):
    """The requested engine does not exist or cannot be loaded (misuse)."""


class ToolRunner:
    """Calls tools for the engine and records every call of the current turn."""

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx
        self.calls: list[dict[str, Any]] = []

    def __call__(self, name: str, /, **arguments: Any) -> dict[str, Any]:
        # ``name`` is positional-only: a model may send an argument called "name" too.
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
    # True when nobody vouches for the customer's identity (the HTTP service without a
    # trusted front end): an email is then only a claim, and the customer is identified
    # only by proving an order: its id plus the postcode it ships to (:meth:`verify`).
    verify_identity: bool = False
    claimed_email: str | None = None
    verify_failures: int = 0
    tools: ToolRunner = field(init=False)

    def __post_init__(self) -> None:
        self.tools = ToolRunner(self.tool_ctx)

    @property
    def customer_email(self) -> str | None:
        return self.tool_ctx.customer_email

    @property
    def verified(self) -> bool:
        """Whether the customer's identity is established (always, unless verification is on)."""
        return self.customer is not None

    def identify(self, email: str) -> bool:
        """Adopt ``email`` as the customer's identity if it is on file.

        With ``verify_identity`` the email is only remembered as a claim (and True is
        returned whether or not it is on file, so accounts cannot be probed); the customer
        stays unidentified until :meth:`verify` succeeds."""
        if self.verify_identity:
            self.claimed_email = email.strip().lower()
            return True
        return self._adopt(email)

    def verify(self, order_id: str | None, answer: str) -> bool:
        """Identify the customer from proof: an order id and the postcode that order ships
        to. If an email was claimed, the order must be that customer's. A wrong proof counts
        against :data:`VERIFY_ATTEMPTS`; the answer says nothing about which part was wrong."""
        if self.verify_failures >= VERIFY_ATTEMPTS:
            return False
        order = self.store.get_order(order_id) if order_id else None
        owner = self.store.get_customer(order["customer_id"]) if order else None
        ok = (
            order is not None and owner is not None
            and _normalise_postcode(_ORDER_IN_TEXT.sub(" ", answer)) == postcode_of(order["shipping_address"])
            and self.claimed_email in (None, owner["email"].lower())
        )
        if not ok or owner is None:
            self.verify_failures += 1
            return False
        return self._adopt(owner["email"])

    @property
    def verify_locked(self) -> bool:
        """Too many wrong proofs: this conversation can no longer verify."""
        return self.verify_failures >= VERIFY_ATTEMPTS

    def _adopt(self, email: str) -> bool:
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


def postcode_of(address: str) -> str:
    """The postcode of a one-line address, normalised: its last part's words that hold a
    digit ("405 Oak Ave, Portland, OR 97201" -> "97201"; "..., London SW1A 1AA" -> "SW1A1AA")."""
    last = address.rsplit(",", 1)[-1]
    return _normalise_postcode(last)


def _normalise_postcode(text: str) -> str:
    # Only words holding a digit count ("my zip is 97201" -> "97201"); several postcodes in
    # one answer join into one string that matches none, so one answer is one guess.
    return "".join(w for w in re.findall(r"[A-Za-z0-9]+", text) if any(c.isdigit() for c in w)).upper()


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
