"""Whole-conversation assertions: ``handoff``, ``outcome``, ``stop_reason``, ``max_turns``, ``latency``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from evalkit.core._plural import plural
from evalkit.core.results import Verdict
from evalkit.core.transcript import Handoff, Outcome, StopReason
from evalkit.judges._common import describe_scope
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.matching import fmt_value
from evalkit.judges.regex import check_pattern, search

__all__ = ["HandoffJudge", "OutcomeJudge", "StopReasonJudge", "MaxTurnsJudge", "LatencyJudge"]


def _one_or_many(value: Any, allowed: type[Outcome] | type[StopReason], what: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    known = [m.value for m in allowed]
    for v in values:
        if v not in known:
            raise ValueError(f"unknown {what} {v!r} (known: {', '.join(known)})")
    if not values:
        raise ValueError(f"give at least one {what}")
    return values


def _text_matches(pattern: str, text: str | None) -> bool:
    """Case-insensitive substring, or a regex search when written ``re:PATTERN``."""
    if text is None:
        return False
    if pattern.startswith("re:"):
        return search(pattern[3:], text, ignore_case=True) is not None
    return pattern.casefold() in text.casefold()


class HandoffJudge(Judge):
    """The conversation was handed to a human (``expected: true``) or was not (``false``).

    ``reason`` checks the handoff's stated reason (case-insensitive substring, or
    ``re:PATTERN``); ``ticket: true`` requires a ticket id. A conversation whose outcome is
    ``escalated`` counts as handed off even when no agent turn carried the handoff.
    """

    name: ClassVar[str] = "handoff"
    primary: ClassVar[str | None] = "expected"

    expected: bool = Field(default=True, description="A handoff must (true) or must not (false) happen.")
    reason: str | None = Field(
        default=None,
        description="The handoff reason contains this (case-insensitive), or matches re:PATTERN.",
    )
    ticket: bool = Field(default=False, description="The handoff must carry a ticket id.")

    @field_validator("reason")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value and value.startswith("re:"):
            check_pattern(value[3:])
        return value

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        scope = describe_scope(ctx)
        found: tuple[int, Handoff] | None = next(
            ((n, a.handoff) for n, a in ctx.agent_turns() if a.handoff is not None), None
        )
        escalated = ctx.window is None and ctx.transcript.outcome == Outcome.escalated
        happened = found is not None or escalated
        if found:
            n, h = found
            desc = f"handed off at turn {n}" + (f" (reason: {fmt_value(h.reason)})" if h.reason else "")
            desc += f", ticket {h.ticket_id}" if h.ticket_id else ", no ticket id"
        else:
            n, h = None, None
            desc = "the outcome is escalated but no agent turn recorded a handoff" if escalated else ""
        if not self.expected:
            if happened:
                return self.verdict(False, f"expected no handoff{scope}; the agent {desc}", turn=n)
            return self.verdict(True, f"no handoff{scope}")
        if not happened:
            return self.verdict(
                False,
                f"expected a handoff to a human{scope}; none happened "
                f"(outcome: {ctx.transcript.outcome.value}, stop reason: {ctx.transcript.stop_reason.value})",
            )
        problems = []
        if self.reason is not None and not _text_matches(self.reason, h.reason if h else None):
            problems.append(f"reason should match {fmt_value(self.reason)}")
        if self.ticket and not (h and h.ticket_id):
            problems.append("a ticket id is required")
        if problems:
            return self.verdict(
                False, f"expected a handoff ({'; '.join(problems)}); the agent {desc}", turn=n
            )
        return self.verdict(True, f"the agent {desc}", turn=n)


class _EnumJudge(Judge):
    """A transcript field is one of the ``expected`` values of an enum."""

    primary: ClassVar[str | None] = "expected"
    enum: ClassVar[type[Outcome] | type[StopReason]]
    what: ClassVar[str]

    expected: str | list[str]

    @field_validator("expected")
    @classmethod
    def _known(cls, value: Any) -> Any:
        _one_or_many(value, cls.enum, cls.what)
        return value

    def _actual(self, ctx: JudgeContext) -> tuple[str, str]:
        """(the value checked, context shown when it is wrong)."""
        raise NotImplementedError

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        allowed = _one_or_many(self.expected, self.enum, self.what)
        got, context = self._actual(ctx)
        if got in allowed:
            return self.verdict(True, f"{self.what} is {got}", label=got)
        return self.verdict(
            False, f"expected {self.what} {' or '.join(allowed)}; got {got} ({context})", label=got
        )


class OutcomeJudge(_EnumJudge):
    """The conversation's outcome is ``expected`` (or one of a list): resolved | escalated |
    abandoned | max_turns | error."""

    name: ClassVar[str] = "outcome"
    enum: ClassVar[type[Outcome] | type[StopReason]] = Outcome
    what: ClassVar[str] = "outcome"

    def _actual(self, ctx: JudgeContext) -> tuple[str, str]:
        t = ctx.transcript
        return t.outcome.value, f"stop reason: {t.stop_reason.value}" + (
            f"; error: {t.error}" if t.error else ""
        )


class StopReasonJudge(_EnumJudge):
    """The loop stopped for the ``expected`` reason (or one of a list): goal_met, gave_up,
    transferred, script_done, max_turns, out_of_scope, agent_error, timeout, agent_ended."""

    name: ClassVar[str] = "stop_reason"
    enum: ClassVar[type[Outcome] | type[StopReason]] = StopReason
    what: ClassVar[str] = "stop reason"

    def _actual(self, ctx: JudgeContext) -> tuple[str, str]:
        t = ctx.transcript
        return t.stop_reason.value, f"outcome: {t.outcome.value}"


class MaxTurnsJudge(Judge):
    """The user needed at most ``value`` turns (user messages) in the whole conversation."""

    name: ClassVar[str] = "max_turns"
    primary: ClassVar[str | None] = "value"

    value: int = Field(ge=1, description="Most user messages allowed.")

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        n = len(ctx.transcript.user_turns)
        if n <= self.value:
            return self.verdict(True, f"{n} user turns (limit {self.value})", score=float(n))
        return self.verdict(
            False,
            f"expected at most {self.value} user turns; the conversation took {n}",
            score=float(n),
            turn=self.value + 1,
        )


class LatencyJudge(Judge):
    """Every agent turn (in scope) answered within ``max_ms`` (and its first token within
    ``ttft_max_ms`` when given). Skipped when no latency was measured."""

    name: ClassVar[str] = "latency"
    primary: ClassVar[str | None] = "max_ms"

    max_ms: float = Field(gt=0, description="Per-turn latency budget in milliseconds.")
    ttft_max_ms: float | None = Field(default=None, gt=0, description="Time-to-first-token budget in ms.")

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        scope = describe_scope(ctx)
        timed = [(n, a.latency_ms) for n, a in ctx.agent_turns() if a.latency_ms is not None]
        if not timed:
            return self.skip(f"no agent turn{scope} has a measured latency")
        slow_n, slowest = max(timed, key=lambda p: p[1])
        over = [(n, ms) for n, ms in timed if ms > self.max_ms]
        problems = []
        fail_turn = None
        if over:
            fail_turn = over[0][0]
            problems.append(
                f"{len(over)} of {len(timed)} agent turns took longer than {self.max_ms:g} ms; "
                f"slowest {slowest:.0f} ms at turn {slow_n}"
            )
        if self.ttft_max_ms is not None:
            firsts = [(n, a.ttft_ms) for n, a in ctx.agent_turns() if a.ttft_ms is not None]
            slow_first = [(n, ms) for n, ms in firsts if ms > self.ttft_max_ms]
            if slow_first:
                n, ms = max(slow_first, key=lambda p: p[1])
                fail_turn = min(fail_turn or slow_first[0][0], slow_first[0][0])
                problems.append(
                    f"{plural(len(slow_first), 'turn')} took longer than {self.ttft_max_ms:g} ms to the first token; "
                    f"slowest {ms:.0f} ms at turn {n}"
                )
        if problems:
            return self.verdict(False, "; ".join(problems), turn=fail_turn, score=slowest)
        return self.verdict(
            True,
            f"every agent turn{scope} within {self.max_ms:g} ms (slowest {slowest:.0f} ms at turn {slow_n})",
            score=slowest,
        )
