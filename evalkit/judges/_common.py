"""Small helpers shared by the built-in judges (turn ranges, excerpts, argument specs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from evalkit.core.transcript import ToolCall
from evalkit.judges.base import JudgeContext
from evalkit.judges.matching import MatchMode, argument_mismatches, fmt_call
from evalkit.judges.regex import PatternError, check_pattern

TurnRange = int | tuple[int, int] | None


def turn_range(turns: TurnRange) -> tuple[int, int] | None:
    """A judge's ``turns`` argument as an inclusive (from, to) range."""
    if turns is None:
        return None
    if isinstance(turns, int):
        return (turns, turns)
    return (turns[0], turns[1])


def in_range(n: int, rng: tuple[int, int] | None) -> bool:
    return rng is None or rng[0] <= n <= rng[1]


def describe_scope(ctx: JudgeContext, turns: TurnRange = None) -> str:
    """`` in turns 2-3`` / `` at turn 2`` / ``""`` for the whole conversation."""
    parts = [r for r in (ctx.window, turn_range(turns)) if r is not None]
    if not parts:
        return ""
    lo = max(p[0] for p in parts)
    hi = min(p[1] for p in parts)
    return f" at turn {lo}" if lo == hi else f" in turns {lo}-{hi}"


def fmt_turns(turns: list[int]) -> str:
    """``turn 2`` / ``turns 2, 3 and 5``."""
    uniq = sorted(set(turns))
    if len(uniq) == 1:
        return f"turn {uniq[0]}"
    return "turns " + ", ".join(str(t) for t in uniq[:-1]) + f" and {uniq[-1]}"


def excerpt(text: str, start: int = 0, end: int | None = None, width: int = 40) -> str:
    """The text around [start, end), one line, with ellipses where cut."""
    end = start if end is None else end
    lo, hi = max(0, start - width), min(len(text), end + width)
    body = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


class ArgumentSpec(BaseModel):
    """Expected arguments of a tool call, with a match mode per argument."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arguments: dict[str, JsonValue] = Field(
        default_factory=dict, description="Expected arguments; arguments not named are not checked."
    )
    match: dict[str, MatchMode] = Field(
        default_factory=dict, description="Argument -> exact | subset | regex | fuzzy | ignore."
    )
    default_match: MatchMode = Field(default="exact", description="Mode for arguments not named in match.")

    @model_validator(mode="after")
    def _check_match(self) -> Any:
        stray = sorted(set(self.match) - set(self.arguments))
        if stray:
            raise ValueError(
                f"'match' names {', '.join(stray)} which {'is' if len(stray) == 1 else 'are'} not in 'arguments'"
            )
        for key, value in self.arguments.items():
            if self.match.get(key, self.default_match) == "regex":
                try:
                    check_pattern(str(value))
                except PatternError as exc:
                    raise ValueError(f"argument '{key}': {exc}") from None
        return self

    def mismatches(self, call: ToolCall) -> list[str]:
        return argument_mismatches(self.arguments, call.arguments, self.match, self.default_match)

    def matches(self, call: ToolCall) -> bool:
        return not self.mismatches(call)


class CallSpec(ArgumentSpec):
    """One expected call in a ``tool_sequence``: a name and optional arguments."""

    name: str

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    def label(self) -> str:
        return fmt_call(self.name, self.arguments) if self.arguments else self.name

    def accepts(self, call: ToolCall) -> bool:
        return call.name == self.name and self.matches(call)


def check_range(value: Any) -> Any:
    """Validate a ``turns`` argument: a positive int or a [from, to] pair."""
    if isinstance(value, list | tuple):
        if len(value) != 2 or not all(isinstance(v, int) for v in value):
            raise ValueError("'turns' must be an exchange number or a [from, to] pair of numbers")
        if value[0] > value[1] or value[0] < 0:
            raise ValueError(f"'turns' range {list(value)} is empty or negative")
        return (value[0], value[1])
    return value


__all__ = [
    "ArgumentSpec",
    "CallSpec",
    "TurnRange",
    "check_range",
    "describe_scope",
    "excerpt",
    "fmt_turns",
    "in_range",
    "turn_range",
]
