"""Judges for recorded conversations with ground truth (τ-bench style).

Referenced from generated scenario files as ``module:Class``
(``evalkit.judges.recorded:DatabaseActions``), not registered as built-in names.

``DatabaseActions`` checks what the agent *wrote*: every gold call to a tool that changes
the database must appear (with matching arguments) among the agent's successful write
calls, and no other write call may succeed. It mirrors τ-bench's reward, which compares
the final database with the one the gold actions produce:

* a call whose result is an error changed nothing, so it neither satisfies a gold call nor
  counts as an extra write (``count_failed: true`` changes that);
* gold calls to read-only tools are ignored (reading changes nothing);
* calls are matched as a multiset: two identical successful bookings are one too many.

Argument comparison (``arguments_equal``):

* mappings: the same keys; a key only in the agent's call is ignored when its value is null;
  inside a nested object (a flight in ``flights``) every key the expectation does not name is
  ignored, as the environment's stored state ignores fields its tools do not read;
* numbers: numerically, so ``1000 == 1000.0 == "1000"`` (models often quote numbers);
* strings: exactly, after trimming surrounding whitespace; case matters (ids and names are
  stored as given, and τ-bench's database comparison is exact);
* lists: in order by default (the database keeps the order of flights, passengers and
  payment methods); ``list_order: any`` compares them as multisets;
* booleans: only equal to booleans.

``OutputsSaid`` checks τ-bench's required outputs the way τ-bench does: each output,
lower-cased, must be a substring of some agent message, lower-cased with commas removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from evalkit.core._plural import plural
from evalkit.core.results import Verdict
from evalkit.core.transcript import ToolCall
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.matching import assignment, max_matching, parse_number

__all__ = ["GoldCall", "DatabaseActions", "OutputsSaid", "arguments_equal", "argument_differences"]


class GoldCall(BaseModel):
    """One expected tool call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def arguments_equal(expected: Any, actual: Any, *, ordered: bool = True) -> bool:
    """Whether two argument values are equal under the rules in the module docstring."""
    return not argument_differences(expected, actual, ordered=ordered, limit=1)


def argument_differences(
    expected: Any, actual: Any, *, ordered: bool = True, path: str = "", limit: int = 5
) -> list[str]:
    """Where two argument values differ, as ``path: expected X, got Y`` lines (at most ``limit``)."""
    out: list[str] = []
    _diff(expected, actual, ordered, path, out, limit)
    return out


def _short(v: Any) -> str:
    import json

    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _diff(e: Any, a: Any, ordered: bool, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    where = path or "(value)"
    if isinstance(e, bool) or isinstance(a, bool):
        if not (isinstance(e, bool) and isinstance(a, bool) and e == a):
            out.append(f"{where}: expected {_short(e)}, got {_short(a)}")
        return
    if _is_number(e) or _is_number(a):
        en, an = parse_number(e), parse_number(a)
        if en is None or an is None or not math.isclose(en, an, rel_tol=0, abs_tol=1e-6):
            out.append(f"{where}: expected {_short(e)}, got {_short(a)}")
        return
    if isinstance(e, Mapping) and isinstance(a, Mapping):
        for k in e:
            if k not in a:
                out.append(f"{path}.{k}: missing (expected {_short(e[k])})".lstrip("."))
            else:
                _diff(e[k], a[k], ordered, f"{path}.{k}".lstrip("."), out, limit)
            if len(out) >= limit:
                return
        if path:
            # A nested object (a flight inside ``flights``) is stored with the fields the tool
            # reads: keys the expectation does not name are ignored, as τ-bench's stored state
            # ignores them. At the top level an unknown argument is still a difference.
            return
        for k in a:
            if k not in e and a[k] is not None:
                out.append(f"{k}: not expected (got {_short(a[k])})")
        return
    if isinstance(e, list) and isinstance(a, list):
        if len(e) != len(a):
            out.append(f"{where}: expected {len(e)} items, got {len(a)}")
            return
        if ordered:
            for i, (x, y) in enumerate(zip(e, a, strict=True)):
                _diff(x, y, ordered, f"{path}[{i}]", out, limit)
        elif max_matching(e, a, lambda x, y: arguments_equal(x, y, ordered=False)) != len(e):
            out.append(f"{where}: expected the items {_short(e)} in any order, got {_short(a)}")
        return
    if isinstance(e, str) and isinstance(a, str):
        if e.strip() != a.strip():
            out.append(f"{where}: expected {_short(e)}, got {_short(a)}")
        return
    if e != a:
        out.append(f"{where}: expected {_short(e)}, got {_short(a)}")


def _fmt_call(name: str, args: Mapping[str, Any]) -> str:
    inner = ", ".join(f"{k}={_short(v)}" for k, v in args.items())
    text = f"{name}({inner})"
    return text if len(text) <= 160 else text[:157] + "..."


class DatabaseActions(Judge):
    """Every gold write call made with matching arguments, and no other write succeeded."""

    name: ClassVar[str] = "db_actions"
    primary: ClassVar[str | None] = "gold"

    gold: list[GoldCall] = Field(default_factory=list)
    # Tools that change the database; calls to any other tool are ignored.
    write_tools: list[str]
    list_order: Literal["strict", "any"] = "strict"
    # Count calls whose result was an error (default: they changed nothing).
    count_failed: bool = False

    def _writes(self, ctx: JudgeContext) -> list[tuple[int, ToolCall]]:
        writes = set(self.write_tools)
        return [
            (n, c) for n, c in ctx.tool_calls() if c.name in writes and (self.count_failed or c.error is None)
        ]

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        ordered = self.list_order == "strict"
        writes = set(self.write_tools)
        expected = [g for g in self.gold if g.name in writes]
        actual = self._writes(ctx)
        failed = [(n, c) for n, c in ctx.tool_calls() if c.name in writes and c.error is not None]

        def same(g: GoldCall, nc: tuple[int, ToolCall]) -> bool:
            c = nc[1]
            return c.name == g.name and arguments_equal(g.arguments, c.arguments, ordered=ordered)

        owner = assignment(expected, actual, same)  # actual index -> gold index
        matched = set(owner.values())
        missing = [g for i, g in enumerate(expected) if i not in matched]
        used = set(owner)
        extra = [nc for j, nc in enumerate(actual) if j not in used]
        problems: list[str] = []
        for g in missing:
            near = [c for _, c in actual if c.name == g.name] or [c for _, c in failed if c.name == g.name]
            line = f"missing {_fmt_call(g.name, g.arguments)}"
            tried = next((nc for nc in failed if same(g, nc)), None)
            if tried is not None and not self.count_failed:
                problems.append(
                    f"{line}; the identical call at turn {tried[0]} failed, so it changed nothing "
                    f"({(tried[1].error or '')[:100]})"
                )
                continue
            if near:
                diffs = argument_differences(g.arguments, near[0].arguments, ordered=ordered, limit=3)
                status = " (which failed: " + (near[0].error or "")[:80] + ")" if near[0].error else ""
                line += f"; closest call{status} differs: " + "; ".join(diffs or ["(identical arguments)"])
            problems.append(line)
        for n, c in extra:
            problems.append(f"unexpected write at turn {n}: {_fmt_call(c.name, c.arguments)}")
        details: dict[str, Any] = {
            "expected_writes": len(expected),
            "successful_writes": len(actual),
            "failed_writes": len(failed),
            "missing": [_fmt_call(g.name, g.arguments) for g in missing],
            "unexpected": [_fmt_call(c.name, c.arguments) for _, c in extra],
        }
        if problems:
            return self.verdict(
                False,
                "; ".join(problems),
                turn=extra[0][0] if extra and not missing else None,
                **details,
            )
        if not expected:
            reason = "no database change expected and none made"
        else:
            reason = f"all {plural(len(expected), 'expected database change')} made, and nothing else"
        return self.verdict(True, reason, **details)


class OutputsSaid(Judge):
    """Every required output appears in some agent message (τ-bench's rule)."""

    name: ClassVar[str] = "outputs_said"
    primary: ClassVar[str | None] = "outputs"

    outputs: list[str]

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        messages = [(n, a.content.lower().replace(",", "")) for n, a in ctx.agent_turns() if a.content]
        found: dict[str, int | None] = {}
        for out in self.outputs:
            needle = out.lower()
            found[out] = next((n for n, text in messages if needle in text), None)
        missing = [o for o, n in found.items() if n is None]
        if missing:
            return self.verdict(False, "never said: " + ", ".join(repr(o) for o in missing), missing=missing)
        where = ", ".join(f"{o!r} at turn {n}" for o, n in found.items())
        return self.verdict(True, f"said {where}")
