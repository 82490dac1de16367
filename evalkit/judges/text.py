"""What the agent said: ``said`` and ``never_said``.

Text is compared case-insensitively by default, with runs of whitespace collapsed and
typographic quotes/dashes read as plain ones (``I’ll`` matches ``I'll``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from evalkit.core.results import Verdict
from evalkit.core.transcript import AgentTurn
from evalkit.judges._common import describe_scope, excerpt
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.matching import fmt_value
from evalkit.judges.regex import check_pattern, search

__all__ = ["Said", "NeverSaid", "normalize_speech"]

_TYPOGRAPHIC = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})


def _flat(text: str) -> str:
    return " ".join(text.translate(_TYPOGRAPHIC).split())


def normalize_speech(text: str, case_sensitive: bool = False) -> str:
    """Collapse whitespace, plain quotes and dashes, and (by default) fold case."""
    text = _flat(text)
    # lower() rather than casefold() keeps offsets aligned with the original text.
    return text if case_sensitive else text.lower()


class _TextJudge(Judge):
    contains: str | list[str] | None = Field(default=None, description="Every one of these strings.")
    any_of: list[str] | None = Field(default=None, description="At least one of these strings.")
    regex: str | None = Field(
        default=None, description="A regular expression (searched for; RE2 syntax, linear time)."
    )
    where: Literal["any", "last", "every"] = Field(
        default="any", description="Which agent turns: any | last | every."
    )
    turn: int | None = Field(default=None, ge=0, description="Only this exchange number.")
    case_sensitive: bool = False

    primary: ClassVar[str | None] = "contains"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return check_pattern(value) if value is not None else None

    @model_validator(mode="after")
    def _something(self) -> Any:
        if not (self.contains or self.any_of or self.regex):
            raise ValueError("give at least one of 'contains', 'any_of' or 'regex'")
        return self

    @property
    def needles(self) -> list[str]:
        if self.contains is None:
            return []
        return [self.contains] if isinstance(self.contains, str) else list(self.contains)

    def _norm(self, text: str) -> str:
        return normalize_speech(text, self.case_sensitive)

    def _find(self, needle: str, text: str) -> tuple[int, int] | None:
        hay, n = self._norm(text), self._norm(needle)
        i = hay.find(n)
        return None if i < 0 else (i, i + len(n))

    def _search(self, text: str) -> tuple[int, int] | None:
        assert self.regex is not None
        return search(self.regex, _flat(text), ignore_case=not self.case_sensitive)

    def _scope(self, ctx: JudgeContext) -> list[tuple[int, AgentTurn]]:
        turns = [(n, a) for n, a in ctx.agent_turns() if self.turn is None or n == self.turn]
        # Tool-only turns (no text) neither say nor fail to say anything.
        turns = [(n, a) for n, a in turns if a.content.strip()]
        if self.where == "last":
            return turns[-1:]
        return turns

    def _scope_words(self, ctx: JudgeContext) -> str:
        base = describe_scope(ctx) if self.turn is None else f" at turn {self.turn}"
        which = {"any": "any agent turn", "last": "the last agent turn", "every": "every agent turn"}[
            self.where
        ]
        return f"{which}{base}"

    def _what(self) -> str:
        parts = []
        if self.needles:
            parts.append(" and ".join(fmt_value(s) for s in self.needles))
        if self.any_of:
            parts.append("one of " + ", ".join(fmt_value(s) for s in self.any_of))
        if self.regex:
            parts.append(f"text matching /{self.regex}/")
        return " and ".join(parts)


class Said(_TextJudge):
    """The agent said every ``contains`` string, at least one ``any_of`` string and text matching
    ``regex`` (each given condition), on ``where``: ``any`` agent turn in scope (each condition
    may be met on a different turn), the ``last`` one, or ``every`` one; ``turn`` limits the
    scope to one exchange."""

    name: ClassVar[str] = "said"

    def _missing(self, text: str) -> list[str]:
        out = [fmt_value(s) for s in self.needles if self._find(s, text) is None]
        if self.any_of and not any(self._find(s, text) is not None for s in self.any_of):
            out.append("one of " + ", ".join(fmt_value(s) for s in self.any_of))
        if self.regex and self._search(text) is None:
            out.append(f"/{self.regex}/")
        return out

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        turns = self._scope(ctx)
        head = f"expected the agent to say {self._what()} on {self._scope_words(ctx)}"
        if not turns:
            return self.verdict(False, f"{head}; the agent said nothing there")
        if self.where == "every":
            for n, a in turns:
                missing = self._missing(a.content)
                if missing:
                    return self.verdict(
                        False,
                        f"{head}; turn {n} lacks {', '.join(missing)}: {fmt_value(excerpt(a.content, width=60))}",
                        turn=n,
                    )
            return self.verdict(True, f"the agent said {self._what()} on " + ("its only turn" if len(turns) == 1 else f"every one of {len(turns)} turns"))
        # any / last: each condition must hold on some turn in scope.
        missing = self._missing_anywhere(turns)
        if missing:
            n, last = turns[-1]
            return self.verdict(
                False,
                f"{head}; not found: {', '.join(missing)}. Last reply (turn {n}): "
                f"{fmt_value(excerpt(last.content, width=60), limit=140)}",
                turn=n if self.where == "last" or self.turn is not None else None,
            )
        return self.verdict(True, f"the agent said {self._what()} on {self._scope_words(ctx)}")

    def _missing_anywhere(self, turns: list[tuple[int, AgentTurn]]) -> list[str]:
        missing_sets = [set(self._missing(a.content)) for _, a in turns]
        everything = set.intersection(*missing_sets) if missing_sets else set()
        # Keep the order in which the conditions were written.
        order = self._missing("")
        return [m for m in order if m in everything]


class NeverSaid(_TextJudge):
    """The agent never said any ``contains`` / ``any_of`` string nor text matching ``regex``
    on any agent turn in scope (``where: last`` checks only the last one)."""

    name: ClassVar[str] = "never_said"

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        turns = self._scope(ctx)
        forbidden = self.needles + list(self.any_of or [])
        for n, a in turns:
            for s in forbidden:
                span = self._find(s, a.content)
                if span is not None:
                    shown = excerpt(_flat(a.content), *span)
                    return self.verdict(
                        False,
                        f"expected the agent never to say {fmt_value(s)} on {self._scope_words(ctx)}; "
                        f"it did at turn {n}: {fmt_value(shown, limit=140)}",
                        turn=n,
                    )
            if self.regex:
                span = self._search(a.content)
                if span is not None:
                    flat = _flat(a.content)
                    return self.verdict(
                        False,
                        f"expected the agent never to say text matching /{self.regex}/ on "
                        f"{self._scope_words(ctx)}; it did at turn {n}: {fmt_value(excerpt(flat, *span), limit=140)}",
                        turn=n,
                    )
        return self.verdict(True, f"the agent never said {self._what()} on {self._scope_words(ctx)}")
