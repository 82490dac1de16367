"""Test doubles for the agent side, each usable as ``--agent evalkit.testing.agents:Name?arg=...``.

* :class:`ScriptedAgent`: replies from a list, or from rules (regex -> reply); can emit
  tool calls, handoffs and end the conversation.
* :class:`EchoAgent`: repeats the user's message.
* :class:`SlowAgent`: answers after ``delay_ms`` (async sleep, so it scales with concurrency).
* :class:`FlakyAgent`: raises, hangs or returns junk on chosen turns or a share of calls.
* :class:`StatefulAgent`: keeps a small order book and reports it as its end state.

Each class is its own factory: evalkit instantiates it once per conversation.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.agents.base import AgentReply, SessionInfo, TurnContext
from evalkit.core.transcript import Handoff, ToolCall

__all__ = ["ScriptedAgent", "EchoAgent", "SlowAgent", "FlakyAgent", "StatefulAgent", "reply_from"]


def reply_from(item: Any) -> AgentReply:
    """An :class:`AgentReply` from a script item: a string or a mapping of reply fields.

    Shorthands in a mapping: ``tool: name`` + ``args: {...}`` for one tool call, and
    ``handoff: "reason"`` for a handoff with that reason.
    """
    if isinstance(item, AgentReply):
        return item
    if isinstance(item, str):
        return AgentReply(content=item)
    data = dict(item)
    if "tool" in data:
        call = {"name": data.pop("tool"), "arguments": data.pop("args", {})}
        if "result" in data:
            call["result"] = data.pop("result")
        data.setdefault("tool_calls", []).append(call)
    if isinstance(data.get("handoff"), str):
        data["handoff"] = {"reason": data["handoff"]}
    return AgentReply.model_validate(data)


class ScriptedAgent:
    """Replies from ``replies`` in order (the last one repeats), or by ``rules``.

    ``rules`` maps a regex (searched case-insensitively in the user message) to a reply;
    the first match wins and ``default`` answers anything else.
    """

    def __init__(
        self,
        replies: Sequence[Any] | None = None,
        rules: Mapping[str, Any] | None = None,
        default: Any = "Sorry, I did not understand.",
    ) -> None:
        self.replies = list(replies or [])
        self.rules = [(re.compile(p, re.IGNORECASE), r) for p, r in (rules or {}).items()]
        self.default = default
        self.calls = 0

    def respond(self, ctx: TurnContext) -> AgentReply:
        self.calls += 1
        for pattern, reply in self.rules:
            if pattern.search(ctx.message):
                return reply_from(reply)
        if self.replies:
            return reply_from(self.replies[min(self.calls, len(self.replies)) - 1])
        return reply_from(self.default)


class EchoAgent:
    """Answers ``prefix + message``; ends the conversation when the user says ``bye``."""

    def __init__(self, prefix: str = "You said: ") -> None:
        self.prefix = prefix

    def respond(self, ctx: TurnContext) -> AgentReply:
        return AgentReply(
            content=self.prefix + ctx.message, end_conversation=ctx.message.strip().lower() == "bye"
        )


class SlowAgent:
    """Answers after ``delay_ms`` (an async sleep), streaming the reply in ``chunks``.

    It calls ``ctx.first_token()`` after ``ttft_ms`` (default: half the delay), so TTFT
    is measurable without HTTP.
    """

    def __init__(self, delay_ms: float = 20.0, ttft_ms: float | None = None, reply: str = "ok") -> None:
        self.delay_ms = float(delay_ms)
        self.ttft_ms = self.delay_ms / 2 if ttft_ms is None else float(ttft_ms)
        self.reply = reply

    async def respond(self, ctx: TurnContext) -> AgentReply:
        first = min(self.ttft_ms, self.delay_ms)
        await asyncio.sleep(first / 1000)
        ctx.first_token()
        await asyncio.sleep((self.delay_ms - first) / 1000)
        return AgentReply(content=self.reply)


class FlakyAgent:
    """Misbehaves on purpose: ``mode`` is ``raise``, ``hang``, ``junk`` or ``sync_hang``.

    It misbehaves on the exchanges listed in ``turns`` (1-based), or on a share ``rate``
    of calls drawn from a generator seeded with ``seed`` and the session's seed, so a run
    is reproducible. Otherwise it answers ``reply``.
    """

    def __init__(
        self,
        mode: str = "raise",
        turns: Sequence[int] | int | None = None,
        rate: float = 0.0,
        seed: int = 0,
        reply: str = "fine",
        hang_s: float = 3600.0,
        session: SessionInfo | None = None,
    ) -> None:
        if mode not in ("raise", "hang", "junk", "sync_hang"):
            raise ValueError(f"mode must be raise, hang, junk or sync_hang, not {mode!r}")
        self.mode = mode
        self.turns = {turns} if isinstance(turns, int) else set(turns or [])
        self.rate = float(rate)
        self.rng = random.Random(f"{seed}:{session.seed if session else 0}")
        self.reply = reply
        self.hang_s = float(hang_s)

    def _misbehaves(self, turn: int) -> bool:
        return turn in self.turns or (self.rate > 0 and self.rng.random() < self.rate)

    def respond(self, ctx: TurnContext) -> Any:
        # Sync on purpose (evalkit runs it in a worker thread): ``sync_hang`` blocks that
        # thread like a stuck blocking client would; ``hang`` hands back a never-ending await.
        if not self._misbehaves(ctx.turn):
            return AgentReply(content=self.reply)
        if self.mode == "raise":
            raise RuntimeError(f"flaky agent failed on turn {ctx.turn}")
        if self.mode == "hang":
            return asyncio.sleep(self.hang_s)
        if self.mode == "sync_hang":
            time.sleep(self.hang_s)
        return {"content": 42, "bogus": True}  # junk: not a valid reply


class StatefulAgent:
    """A tiny order desk: ``cancel ORD-1``, ``refund ORD-1``, ``human`` / ``agent``.

    Its end state is ``{"orders": {id: status}, "tickets": [...]}`` starting from the
    session's ``initial_state`` (``{"orders": {...}}``) or ``orders`` given as an argument.
    """

    _ORDER = re.compile(r"\bORD-\d+\b", re.IGNORECASE)

    def __init__(self, orders: Mapping[str, str] | None = None, session: SessionInfo | None = None) -> None:
        initial = (session.initial_state or {}) if session else {}
        given = initial.get("orders")
        start: Mapping[str, Any] = given if isinstance(given, dict) else (orders or {"ORD-1": "shipped"})
        self.orders: dict[str, str] = {str(k): str(v) for k, v in start.items()}
        self.tickets: list[dict[str, str]] = []
        self.pending: str | None = None

    def respond(self, ctx: TurnContext) -> AgentReply:
        text = ctx.message
        match = self._ORDER.search(text)
        order = match.group(0).upper() if match else None
        lowered = text.lower()
        if "human" in lowered or "agent" in lowered:
            ticket = f"TCK-{len(self.tickets) + 1:05d}"
            self.tickets.append({"id": ticket, "reason": "customer asked"})
            return AgentReply(
                content=f"I have passed you to a colleague (ticket {ticket}).",
                handoff=Handoff(ticket_id=ticket, reason="customer asked"),
            )
        for verb, status in (("cancel", "cancelled"), ("refund", "refunded")):
            if verb in lowered or (self.pending == verb and order is not None):
                if order is None:
                    self.pending = verb  # remembered until the customer gives the number
                    return AgentReply(content="Which order? Please give the order number.")
                self.pending = None
                if order not in self.orders:
                    call = ToolCall(name=f"{verb}_order", arguments={"order_id": order}, error="not found")
                    return AgentReply(content=f"I cannot find {order}.", tool_calls=[call])
                self.orders[order] = status
                call = ToolCall(
                    name=f"{verb}_order", arguments={"order_id": order}, result={"status": status}
                )
                return AgentReply(content=f"Done: {order} is {status}.", tool_calls=[call])
        if order is not None:
            call = ToolCall(
                name="check_order_status",
                arguments={"order_id": order},
                result={"status": self.orders.get(order)},
            )
            return AgentReply(content=f"{order} is {self.orders.get(order, 'unknown')}.", tool_calls=[call])
        return AgentReply(content="How can I help with your order?")

    def end_state(self) -> dict[str, Any]:
        return {"orders": dict(self.orders), "tickets": list(self.tickets)}
