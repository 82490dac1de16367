"""``state``: assertions on the agent's end state (what the conversation left behind).

Keys are paths into the end state. A key is looked up literally first, then as a dotted
path: ``orders.ORD-10001.status`` walks into ``orders`` (a mapping keyed by id, or a list
of rows whose ``id`` or ``*_id`` field is ``ORD-10001``), then ``status``. A list is also
indexed by number (``tickets.0.reason``).

- ``contains``: a list of mappings as expected value means "each expected row matches
  (subset, numbers compared numerically) some actual row" (the actual value may be a list
  of rows or a mapping of id -> row); a mapping is matched as a subset, recursively;
  a scalar must be equal (``25 == 25.0 == "25.00"``).
- ``equals``: the value at the path equals the expected value (lists of rows compared
  without regard to order, numbers numerically).
- ``absent``: a list of rows: no actual row matches any of them; ``null``: the path does
  not exist (or is null); a scalar: the value at the path is not that value (nor contains
  it, for a list).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, JsonValue, model_validator

from evalkit.core.results import Verdict
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.matching import fmt_value, loose_equal, max_matching, subset_match

__all__ = ["StateJudge", "resolve_path"]

_MISSING = object()


def _row_key_matches(row: Any, key: str) -> bool:
    if not isinstance(row, Mapping):
        return False
    return any(
        (k == "id" or str(k).endswith("_id")) and str(v) == key for k, v in row.items() if v is not None
    )


def resolve_path(state: Any, path: str) -> Any:
    """The value at ``path`` (see module docstring), or the module's ``_MISSING`` sentinel."""
    if isinstance(state, Mapping) and path in state:
        return state[path]
    segments = path.split(".")
    if len(segments) == 1:
        if isinstance(state, list):
            if path.isdigit() and int(path) < len(state):
                return state[int(path)]
            return next((r for r in state if _row_key_matches(r, path)), _MISSING)
        return _MISSING
    # Try the longest prefix first so keys that themselves contain dots still resolve.
    for cut in range(len(segments) - 1, 0, -1):
        head, rest = ".".join(segments[:cut]), ".".join(segments[cut:])
        node = resolve_path(state, head)
        if node is not _MISSING:
            found = resolve_path(node, rest)
            if found is not _MISSING:
                return found
    return _MISSING


def _rows(value: Any) -> list[Any] | None:
    """A collection of rows: a list, or the values of a mapping of id -> row."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        return list(value.values())
    return None


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _row_diff(expected: Mapping[str, Any], row: Any) -> list[str]:
    if not isinstance(row, Mapping):
        return ["not a mapping"]
    out = []
    for k, v in expected.items():
        if k not in row:
            out.append(f"{k}: missing")
        elif not subset_match(v, row[k], loose_numbers=True):
            out.append(f"{k}: {fmt_value(row[k])} != {fmt_value(v)}")
    return out


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, list) and isinstance(actual, list):
        if _is_rows(expected):
            return len(expected) == len(actual) and max_matching(expected, actual, _equal) == len(expected)
        return len(expected) == len(actual) and all(
            _equal(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return set(expected) == set(actual) and all(_equal(v, actual[k]) for k, v in expected.items())
    return loose_equal(expected, actual)


class StateJudge(Judge):
    """The agent's end state contains / equals / lacks the expected values (see module docstring)."""

    name: ClassVar[str] = "state"
    primary: ClassVar[str | None] = "contains"

    contains: dict[str, JsonValue] = Field(
        default_factory=dict, description="Path -> value (or rows) the end state must contain."
    )
    equals: dict[str, JsonValue] = Field(
        default_factory=dict, description="Path -> value the end state must equal."
    )
    absent: dict[str, JsonValue] = Field(
        default_factory=dict, description="Path -> value (or rows, or null) the end state must not hold."
    )

    @model_validator(mode="after")
    def _some(self) -> StateJudge:
        if not (self.contains or self.equals or self.absent):
            raise ValueError("give at least one of 'contains', 'equals' or 'absent'")
        return self

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        state = ctx.transcript.end_state
        if state is None:
            return self.verdict(
                False,
                "expected an agent end state to check, but the agent reported none "
                "(its adapter has no end_state(), or the conversation errored)",
            )
        problems: list[str] = []
        for path, want in self.contains.items():
            problems += self._contains(state, path, want)
        for path, want in self.equals.items():
            got = resolve_path(state, path)
            if got is _MISSING:
                problems.append(f"{path}: expected {fmt_value(want)}, but the end state has no '{path}'")
            elif not _equal(want, got):
                problems.append(f"{path}: expected {fmt_value(want)}, got {fmt_value(got)}")
        for path, bad in self.absent.items():
            problems += self._absent(state, path, bad)
        checked = len(self.contains) + len(self.equals) + len(self.absent)
        if problems:
            return self.verdict(False, "end state: " + "; ".join(problems), problems=list(problems))
        return self.verdict(True, f"end state satisfies all {checked} expectation{'s' * (checked != 1)}")

    @staticmethod
    def _contains(state: Any, path: str, want: Any) -> list[str]:
        got = resolve_path(state, path)
        if got is _MISSING:
            return [f"{path}: expected {fmt_value(want)}, but the end state has no '{path}'"]
        if _is_rows(want):
            rows = _rows(got)
            if rows is None:
                return [f"{path}: expected rows, got {fmt_value(got)}"]
            out = []
            for row in want:
                if any(subset_match(row, r, loose_numbers=True) for r in rows):
                    continue
                if not rows:
                    out.append(f"{path}: expected a row matching {fmt_value(row)}; there are no rows")
                    continue
                closest = min(rows, key=lambda r: len(_row_diff(row, r)))
                out.append(
                    f"{path}: expected a row matching {fmt_value(row)}; closest of {len(rows)} is "
                    f"{fmt_value(closest)} ({', '.join(_row_diff(row, closest))})"
                )
            return out
        if subset_match(want, got, loose_numbers=True):
            return []
        return [f"{path}: expected {fmt_value(want)}, got {fmt_value(got)}"]

    @staticmethod
    def _absent(state: Any, path: str, bad: Any) -> list[str]:
        got = resolve_path(state, path)
        if bad is None:
            if got is _MISSING or got is None:
                return []
            return [f"{path}: expected to be absent, got {fmt_value(got)}"]
        if got is _MISSING:
            return []
        if _is_rows(bad):
            rows = _rows(got) or []
            return [
                f"{path}: expected no row matching {fmt_value(row)}, found {fmt_value(hit)}"
                for row in bad
                if (hit := next((r for r in rows if subset_match(row, r, loose_numbers=True)), None))
                is not None
            ]
        if isinstance(got, list) and any(loose_equal(bad, g) for g in got):
            return [f"{path}: expected not to contain {fmt_value(bad)}, got {fmt_value(got)}"]
        if _equal(bad, got):
            return [f"{path}: expected not to be {fmt_value(bad)}, but it is"]
        return []
