"""Tool-call assertions: ``tool_called``, ``tool_not_called``, ``tool_sequence``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from evalkit.core._plural import plural
from evalkit.core.results import Verdict
from evalkit.core.transcript import ToolCall
from evalkit.judges._common import (
    ArgumentSpec,
    CallSpec,
    TurnRange,
    check_range,
    describe_scope,
    fmt_turns,
    in_range,
    turn_range,
)
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.matching import count_words, fmt_call, fmt_value, max_matching, subset_match

__all__ = ["ToolCalled", "ToolNotCalled", "ToolSequence", "SequenceMode"]


def _calls_in_scope(ctx: JudgeContext, turns: TurnRange) -> list[tuple[int, ToolCall]]:
    rng = turn_range(turns)
    return [(n, c) for n, c in ctx.tool_calls() if in_range(n, rng)]


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


class _ToolJudge(ArgumentSpec, Judge):
    # The tool's name is written `name:` in scenario files; the attribute is `tool`
    # because `name` is the judge's own name.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    tool: str = Field(alias="name", description="The tool's name.")
    turns: TurnRange = Field(
        default=None, description="Only look at this exchange number, or [from, to] (inclusive)."
    )
    error: str | None = Field(
        default=None,
        description="Only failed calls whose error contains this text count (e.g. an error code).",
    )
    result: dict[str, JsonValue] | None = Field(
        default=None,
        description="Only calls whose result contains this: keys and values as a subset, "
        "recursively (a list item in some item, a string as a substring).",
    )

    primary: ClassVar[str | None] = "name"

    @field_validator("turns", mode="before")
    @classmethod
    def _turns(cls, value: Any) -> Any:
        return check_range(value)

    def _problems(self, call: ToolCall) -> list[str]:
        """Why a call of the right tool does not count (its arguments, error or result)."""
        out = self.mismatches(call)
        if self.error is not None:
            if call.error is None:
                out.append("it succeeded")
            elif self.error not in call.error:
                out.append(f"its error {fmt_value(call.error)} does not contain {fmt_value(self.error)}")
        if self.result is not None and not subset_match(self.result, call.result):
            out.append(f"its result {fmt_value(call.result)} does not contain {fmt_value(self.result)}")
        return out

    def expected_label(self) -> str:
        label = fmt_call(self.tool, self.arguments) if self.arguments else self.tool
        if self.error is not None:
            label += f" (failing with {fmt_value(self.error)})"
        if self.result is not None:
            label += f" (returning {fmt_value(self.result)})"
        return label


class ToolCalled(_ToolJudge):
    """The agent called tool ``name`` (with matching ``arguments``, and optionally a matching
    ``result`` or ``error``) between ``min_count`` and ``max_count`` times, optionally only
    within ``turns``."""

    name: ClassVar[str] = "tool_called"

    min_count: int = Field(default=1, ge=0, description="Fewest matching calls.")
    max_count: int | None = Field(default=None, ge=0, description="Most matching calls (null: no limit).")
    succeeded: bool | None = Field(
        default=None,
        description="true: only calls that returned without an error count; false: only failed calls.",
    )

    @model_validator(mode="after")
    def _counts(self) -> ToolCalled:
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError(f"max_count {self.max_count} is below min_count {self.min_count}")
        if self.error is not None and self.succeeded is True:
            raise ValueError("'error' counts only failed calls; it cannot go with 'succeeded: true'")
        return self

    def _expectation(self) -> str:
        lo, hi = self.min_count, self.max_count
        if hi is None:
            return f"at least {_times(lo)}" if lo else "any number of times"
        if lo == hi:
            return "never" if hi == 0 else f"exactly {_times(hi)}"
        return f"between {lo} and {hi} times" if lo else f"at most {_times(hi)}"

    def _problems(self, call: ToolCall) -> list[str]:
        """Why a call of the right tool does not count (arguments, or its success)."""
        out = super()._problems(call)
        if self.succeeded is True and call.error is not None:
            out.append(f"it failed: {fmt_value(call.error)}")
        elif self.succeeded is False and call.error is None and self.error is None:
            out.append("it succeeded")
        return out

    def expected_label(self) -> str:
        how = {True: " (succeeding)", False: " (failing)", None: ""}[self.succeeded]
        return super().expected_label() + how

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        scope = describe_scope(ctx, self.turns)
        calls = _calls_in_scope(ctx, self.turns)
        named = [(n, c) for n, c in calls if c.name == self.tool]
        hits = [(n, c) for n, c in named if not self._problems(c)]
        count = len(hits)
        expected = f"expected {self.expected_label()}{scope} {self._expectation()}"
        ok = count >= self.min_count and (self.max_count is None or count <= self.max_count)
        details: dict[str, Any] = {"count": count, "turns": [n for n, _ in hits]}
        if ok:
            where = f" ({fmt_turns([n for n, _ in hits])})" if hits else ""
            return self.verdict(
                True, f"{self.expected_label()} was called {count_words(count)}{scope}{where}", **details
            )
        if self.max_count is not None and count > self.max_count:
            return self.verdict(
                False,
                f"{expected}; it was called {_times(count)} ({fmt_turns([n for n, _ in hits])})",
                turn=hits[self.max_count][0],
                **details,
            )
        # Too few: explain the near misses, or what was called instead.
        near = [(n, c) for n, c in named if self._problems(c)]
        if near:
            shown = [
                f"at turn {n} with {fmt_call(c.name, c.arguments)[len(c.name) + 1 : -1] or 'no arguments'}"
                f" ({', '.join(self._problems(c))})"
                for n, c in near[:3]
            ]
            more = f"; and {len(near) - 3} more" if len(near) > 3 else ""
            listing = shown[0] if len(shown) == 1 else ": " + "; ".join(shown)
            sep = "" if len(shown) > 1 else " "
            matched = (
                f"it matched {_times(count)} ({fmt_turns([n for n, _ in hits])}) and " if count else "it "
            )
            what = f"{matched}was called {_times(len(near))}{' with other arguments' if count else ''}{sep}{listing}{more}"
            return self.verdict(False, f"{expected}; {what}", turn=near[0][0], **details)
        if count:
            return self.verdict(
                False,
                f"{expected}; it was called {_times(count)} ({fmt_turns([n for n, _ in hits])})",
                turn=hits[-1][0],
                **details,
            )
        others = sorted({c.name for _, c in calls})
        instead = f"tools called{scope}: {', '.join(others)}" if others else f"no tool was called{scope}"
        return self.verdict(False, f"{expected}; it was never called ({instead})", **details)


class ToolNotCalled(_ToolJudge):
    """The agent never called tool ``name`` (or never with matching ``arguments``, ``error`` or
    ``result``), optionally only within ``turns``."""

    name: ClassVar[str] = "tool_not_called"

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        scope = describe_scope(ctx, self.turns)
        hits = [
            (n, c) for n, c in _calls_in_scope(ctx, self.turns) if c.name == self.tool and not self._problems(c)
        ]
        label = self.expected_label()
        if not hits:
            return self.verdict(True, f"{label} was not called{scope}")
        n, first = hits[0]
        return self.verdict(
            False,
            f"expected {label} not to be called{scope}; it was called {_times(len(hits))}"
            f" ({fmt_turns([t for t, _ in hits])}), first at turn {n} as {fmt_call(first.name, first.arguments)}",
            turn=n,
            count=len(hits),
        )


SequenceMode = Literal["strict", "in_order", "unordered", "subset", "superset"]


class ToolSequence(Judge):
    """The agent's tool calls (in scope) compared with an expected list of calls.

    Modes, with ``actual`` the agent's calls in order and ``expected`` the ``calls`` list:

    - ``strict``: exactly the expected calls, in that order, nothing else.
    - ``in_order`` (default): the expected calls appear in that order; other calls may come
      before, between or after them.
    - ``unordered``: exactly the expected calls, nothing else, in any order.
    - ``subset``: every actual call is one of the expected calls (each expected call used
      at most once); the agent may skip some; order ignored.
    - ``superset``: every expected call was made (each by a distinct actual call); the agent
      may make others too; order ignored.

    An expected call is a tool name or ``{name, arguments, match, default_match}``; only the
    named arguments are checked, exactly unless ``match`` says otherwise.
    """

    name: ClassVar[str] = "tool_sequence"
    primary: ClassVar[str | None] = "calls"

    calls: list[CallSpec] = Field(
        min_length=1, description="Expected calls: tool names or {name, arguments, match, default_match}."
    )
    mode: SequenceMode = Field(
        default="in_order", description="strict | in_order | unordered | subset | superset."
    )
    turns: TurnRange = Field(default=None, description="Only look at this exchange number, or [from, to].")

    @field_validator("turns", mode="before")
    @classmethod
    def _turns(cls, value: Any) -> Any:
        return check_range(value)

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        scope = describe_scope(ctx, self.turns)
        actual = _calls_in_scope(ctx, self.turns)
        exp = self.calls
        want = "[" + ", ".join(c.label() for c in exp) + "]"
        got = "[" + ", ".join(f"{c.name} (turn {n})" for n, c in actual) + "]" if actual else "no calls"
        head = f"expected tool calls {want} ({self.mode}){scope}; actual: {got}"
        problem, turn = self._problem(exp, actual)
        if problem is None:
            return self.verdict(True, f"tool calls {got} satisfy {want} ({self.mode}){scope}")
        return self.verdict(False, f"{head}: {problem}", turn=turn)

    def _problem(
        self, exp: list[CallSpec], actual: list[tuple[int, ToolCall]]
    ) -> tuple[str | None, int | None]:
        calls = [c for _, c in actual]
        if self.mode == "strict":
            for i, spec in enumerate(exp):
                if i >= len(actual):
                    return (
                        f"call {i + 1} should be {spec.label()} but there {'is' if len(actual) == 1 else 'are'} only {plural(len(actual), 'call')}",
                        None,
                    )
                n, call = actual[i]
                if not spec.accepts(call):
                    why = (
                        f"got {call.name}"
                        if call.name != spec.name
                        else f"got {fmt_call(call.name, call.arguments)} ({', '.join(spec.mismatches(call))})"
                    )
                    return f"call {i + 1} should be {spec.label()}, {why} at turn {n}", n
            if len(actual) > len(exp):
                n, call = actual[len(exp)]
                return f"unexpected extra call {call.name} at turn {n}", n
            return None, None
        if self.mode == "in_order":
            i = 0
            for _, call in actual:
                if i < len(exp) and exp[i].accepts(call):
                    i += 1
            if i == len(exp):
                return None, None
            before = f" after {exp[i - 1].label()}" if i else ""
            return f"{exp[i].label()} was not called{before} (matched {i} of {len(exp)} in order)", None
        matched = max_matching(exp, calls, lambda s, c: s.accepts(c))
        if self.mode in ("unordered", "superset") and matched < len(exp):
            missing = self._unmatched_expected(exp, calls)
            return f"missing {', '.join(missing)}", None
        if self.mode in ("unordered", "subset") and matched < len(calls):
            extra = self._unmatched_actual(exp, actual)
            turn = extra[0][0] if extra else None
            return "unexpected " + ", ".join(f"{c.name} at turn {n}" for n, c in extra), turn
        return None, None

    @staticmethod
    def _unmatched_expected(exp: list[CallSpec], calls: list[ToolCall]) -> list[str]:
        # Greedy is enough for a readable message; the verdict itself uses a full matching.
        free = list(calls)
        out = []
        for spec in exp:
            hit = next((c for c in free if spec.accepts(c)), None)
            if hit is None:
                out.append(spec.label())
            else:
                free.remove(hit)
        return out

    @staticmethod
    def _unmatched_actual(
        exp: list[CallSpec], actual: list[tuple[int, ToolCall]]
    ) -> list[tuple[int, ToolCall]]:
        free = list(exp)
        out = []
        for n, call in actual:
            hit = next((s for s in free if s.accepts(call)), None)
            if hit is None:
                out.append((n, call))
            else:
                free.remove(hit)
        return out
