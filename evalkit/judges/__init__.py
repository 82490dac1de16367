"""Judges: ``evaluate(ctx) -> Verdict``. Deterministic built-ins, the registry, and helpers to run them.

Public names are imported lazily (on first attribute access) so that importing
``evalkit.judges.registry`` does not import every judge module.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from evalkit.core.results import Verdict
from evalkit.core.untrusted import exc_line, stops_the_run
from evalkit.judges.base import Judge, JudgeContext

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from evalkit.judges.conversation import (
        HandoffJudge,
        LatencyJudge,
        MaxTurnsJudge,
        OutcomeJudge,
        StopReasonJudge,
    )
    from evalkit.judges.matching import fuzzy_equal, values_match
    from evalkit.judges.pii import NoPiiLeak
    from evalkit.judges.registry import JUDGES, build_judge, get_judge_class, judge_names
    from evalkit.judges.state import StateJudge
    from evalkit.judges.text import NeverSaid, Said
    from evalkit.judges.tools import ToolCalled, ToolNotCalled, ToolSequence

__all__ = [
    "Judge",
    "JudgeContext",
    "JUDGES",
    "build_judge",
    "get_judge_class",
    "judge_names",
    "run_judge",
    "run_judges",
    "run_judges_sync",
    "ToolCalled",
    "ToolNotCalled",
    "ToolSequence",
    "StateJudge",
    "HandoffJudge",
    "OutcomeJudge",
    "StopReasonJudge",
    "MaxTurnsJudge",
    "LatencyJudge",
    "Said",
    "NeverSaid",
    "NoPiiLeak",
    "values_match",
    "fuzzy_equal",
]

_LAZY = {
    "JUDGES": "registry",
    "build_judge": "registry",
    "get_judge_class": "registry",
    "judge_names": "registry",
    "ToolCalled": "tools",
    "ToolNotCalled": "tools",
    "ToolSequence": "tools",
    "StateJudge": "state",
    "HandoffJudge": "conversation",
    "OutcomeJudge": "conversation",
    "StopReasonJudge": "conversation",
    "MaxTurnsJudge": "conversation",
    "LatencyJudge": "conversation",
    "Said": "text",
    "NeverSaid": "text",
    "NoPiiLeak": "pii",
    "values_match": "matching",
    "fuzzy_equal": "matching",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"evalkit.judges.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'evalkit.judges' has no attribute {name!r}")


def _judge_name(judge: Any) -> str:
    return str(getattr(judge, "name", None) or type(judge).__name__)


def _crashed(judge: Any, exc: BaseException) -> Verdict:
    # A crashing judge is recorded (and makes the conversation fail), never raised.
    kind = getattr(judge, "kind", None)
    what = exc_line(exc, limit=2000)  # never raises, whatever the exception's __str__ does
    v = Verdict(judge=_judge_name(judge), reason=f"judge crashed: {what}", error=what)
    return v.model_copy(update={"kind": kind}) if kind is not None else v


def _checked(judge: Any, result: Any) -> Verdict:
    if isinstance(result, Verdict):
        return result
    return _crashed(judge, TypeError(f"evaluate() returned {type(result).__name__}, not a Verdict"))


async def run_judge(judge: Any, ctx: JudgeContext) -> Verdict:
    """Run one judge (sync or async ``evaluate``); a crash becomes a verdict with ``error`` set."""
    try:
        result = judge.evaluate(ctx)
        if inspect.isawaitable(result):
            result = await result
    except BaseException as exc:  # noqa: BLE001 - recorded as data on the verdict
        # Even SystemExit: only the user's Ctrl-C / SIGTERM (or the run's cancel) stops a run.
        if stops_the_run(exc):
            raise
        return _crashed(judge, exc)
    return _checked(judge, result)


async def run_judges(judges: Iterable[Any], ctx: JudgeContext) -> list[Verdict]:
    """Run judges one after the other, in order (async-aware)."""
    return [await run_judge(j, ctx) for j in judges]


def run_judges_sync(judges: Iterable[Any], ctx: JudgeContext) -> list[Verdict]:
    """Run judges whose ``evaluate`` is synchronous; an async judge is reported as an error
    verdict (use :func:`run_judges` from async code)."""
    out = []
    for j in judges:
        try:
            result = j.evaluate(ctx)
        except Exception as exc:  # noqa: BLE001 - recorded as data on the verdict
            out.append(_crashed(j, exc))
            continue
        if inspect.isawaitable(result):
            if hasattr(result, "close"):
                result.close()  # avoid "coroutine was never awaited"
            out.append(_crashed(j, RuntimeError("async judge used where only sync judges can run")))
            continue
        out.append(_checked(j, result))
    return out
