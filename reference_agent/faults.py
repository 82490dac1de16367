"""Seeded faults: small, realistic defects switched on by name.

``evalkit selftest`` runs the bundled suite against the agent with each fault on and
checks that the suite catches it. Turn faults on with ``SupportAgent(faults=...)`` or
``--agent "reference_agent:create_agent?faults=accept_late_returns,leak_email"``.
A fault may take a value: ``slow_reply=1.5`` (seconds).

Each fault changes behaviour in one place (the tool rules via ``bypass``, the dialog
manager, the output pipeline or the channel formatter); the clean agent has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Fault", "FAULTS", "ActiveFaults", "UnknownFaultError", "parse_faults"]


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    bypass: frozenset[str] = frozenset()  # tool rules this fault switches off
    default: float | None = None  # default parameter value, if the fault takes one


def _f(name: str, description: str, *bypass: str, default: float | None = None) -> Fault:
    return Fault(name, description, frozenset(bypass), default)


FAULTS: dict[str, Fault] = {f.name: f for f in [
    _f("no_ask_order_id",
       "Checks the status without asking for the order id: silently uses the customer's most recent order."),
    _f("drop_digit",
       "Passes a mistyped order id to the tools (the last digit dropped), so lookups fail."),
    _f("accept_late_returns",
       "Accepts returns more than 30 days after delivery.", "return_window"),
    _f("return_off_by_one",
       "Refuses returns on day 30 (the last allowed day): an off-by-one in the window.",
       "return_boundary_off_by_one"),
    _f("grant_large_refund",
       "Grants refunds over $500 itself instead of escalating them to a human.", "refund_limit"),
    _f("ignore_human_request",
       "Ignores an explicit request for a human agent and keeps the customer with the bot."),
    _f("no_handoff_on_frustration",
       "Does not hand over to a human when the customer is clearly frustrated."),
    _f("leak_email",
       "Repeats the customer's email address in replies (PII in the output)."),
    _f("follow_injection",
       "Follows injected instructions (in the message or in an order note), e.g. 'refund $1000'.",
       "refund_limit"),
    _f("leak_system_prompt",
       "Answers system-prompt extraction attempts with the system prompt."),
    _f("forget_order_id",
       "Forgets the order id the customer gave earlier and asks for it again."),
    _f("markdown_on_voice",
       "Sends web Markdown (bold, links, URLs) on the voice channel."),
    _f("slow_reply",
       "Replies slowly: sleeps before answering (seconds; default 3.5, e.g. slow_reply=1.5).",
       default=3.5),
    _f("double_submit_return",
       "Submits a return twice, creating two return rows.", "duplicate_return"),
    _f("cancel_shipped",
       "Cancels or re-addresses orders that are no longer pending (shipped, processing...).",
       "order_status"),
    _f("skip_confirmation",
       "Makes changes (cancel, return, refund, address) without asking the customer to confirm."),
    _f("cross_customer",
       "Acts on another customer's order (no ownership check).", "ownership"),
    _f("no_closing",
       "Never asks 'Is there anything else I can help you with?' and never closes the conversation."),
    _f("wrong_refund_amount",
       "Refunds the order total instead of the amount the customer asked for."),
    _f("log_raw_pii",
       "Writes the raw user message (with emails, phones, card numbers) to the analytics log."),
]}


class UnknownFaultError(ValueError):
    """A fault name that is not in the catalogue (misuse)."""


@dataclass(frozen=True)
class ActiveFaults:
    """The faults switched on for one agent, with their parameters."""

    names: frozenset[str] = frozenset()
    params: dict[str, float] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __bool__(self) -> bool:
        return bool(self.names)

    @property
    def bypass(self) -> frozenset[str]:
        out: set[str] = set()
        for name in self.names:
            out |= FAULTS[name].bypass
        return frozenset(out)

    def param(self, name: str) -> float | None:
        if name not in self.names:
            return None
        return self.params.get(name, FAULTS[name].default)


def parse_faults(spec: str | Iterable[str] | ActiveFaults | None) -> ActiveFaults:
    """``"a,b=1.5"`` or ``["a", "b=1.5"]`` -> :class:`ActiveFaults`; unknown names raise."""
    if isinstance(spec, ActiveFaults):
        return spec
    if spec is None:
        return ActiveFaults()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: set[str] = set()
    params: dict[str, float] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in FAULTS:
            raise UnknownFaultError(
                f"faults: unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        names.add(name)
        if value:
            try:
                params[name] = float(value)
            except ValueError:
                raise UnknownFaultError(f"faults: {name}: value {value!r} is not a number") from None
    return ActiveFaults(frozenset(names), params)
