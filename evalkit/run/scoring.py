"""Score one transcript: run every judge that applies and compute per-conversation metrics.

Independent of the runner, so ``evalkit score`` can re-score saved or imported
transcripts. The judges that apply to a conversation are the suite's judges, the
scenario's ``expect`` (whole conversation) and each script step's ``expect`` (only the
exchange answering that step). A judge that crashes or cannot be built is recorded as a
verdict with ``error`` set: counted, never a score, never raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.core.results import ConversationResult, Verdict
from evalkit.core.transcript import Transcript
from evalkit.judges.base import JudgeContext
from evalkit.scenarios.models import JudgeSpec, Scenario

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = ["PlannedJudge", "plan_judges", "score_transcript", "score_transcript_sync", "conversation_metrics"]


@dataclass(frozen=True)
class PlannedJudge:
    """One judge spec and the window (exchange range) it looks at."""

    spec: JudgeSpec
    window: tuple[int, int] | None = None


def plan_judges(scenario: Scenario | None, suite_judges: Sequence[JudgeSpec] = ()) -> list[PlannedJudge]:
    """Every judge that applies to a conversation of ``scenario``, in a stable order."""
    plan = [PlannedJudge(s) for s in suite_judges]
    if scenario is not None:
        plan += [PlannedJudge(s) for s in scenario.expect]
        for n, step in enumerate(scenario.user.script or [], start=1):
            plan += [PlannedJudge(s, (n, n)) for s in step.expect]
    return plan


def _spec_error(planned: PlannedJudge, exc: Exception) -> Verdict:
    return Verdict(
        judge=planned.spec.name,
        reason=f"judge could not be built: {exc}",
        error=f"{type(exc).__name__}: {exc}",
        spec=planned.spec.label(),
        turn=planned.window[0] if planned.window else None,
    )


def _build(spec: JudgeSpec, cache: dict[str, Any] | None) -> Any:
    from evalkit.judges.registry import build_judge

    if cache is None:
        return build_judge(spec)
    # Judges hold configuration only (no results), so one instance serves every conversation.
    key = spec.model_dump_json()
    judge = cache.get(key)
    if judge is None:
        judge = cache[key] = build_judge(spec)
    return judge


async def _run_one(
    planned: PlannedJudge,
    transcript: Transcript,
    scenario: Scenario | None,
    llm: ModelClients | None,
    cache: dict[str, Any] | None,
) -> Verdict:
    from evalkit.judges import run_judge

    try:
        judge = _build(planned.spec, cache)
    except Exception as exc:  # an invalid spec that slipped past loading: recorded, not raised
        return _spec_error(planned, exc)
    ctx = JudgeContext(transcript=transcript, scenario=scenario, window=planned.window, llm=llm)
    verdict = await run_judge(judge, ctx)
    update: dict[str, Any] = {"spec": verdict.spec or planned.spec.label()}
    if planned.window is not None and verdict.turn is None:
        update["turn"] = planned.window[0]
    return verdict.model_copy(update=update)


def conversation_metrics(transcript: Transcript) -> dict[str, float | bool | str | None]:
    """Flat per-conversation numbers stored beside the verdicts."""
    from evalkit.judges.csat import csat_proxy

    return {"csat_proxy": csat_proxy(transcript)}


async def score_transcript(
    transcript: Transcript,
    scenario: Scenario | None,
    *,
    suite_judges: Sequence[JudgeSpec] = (),
    llm: ModelClients | None = None,
    run_id: str = "",
    judge_cache: dict[str, Any] | None = None,
) -> ConversationResult:
    """Judge one transcript; returns its :class:`ConversationResult` (never raises for judges).

    ``judge_cache`` (a dict the caller keeps across conversations) reuses built judges.
    """
    plan = plan_judges(scenario, suite_judges)
    # Judges are independent: model judges overlap their calls, deterministic ones are instant.
    verdicts = list(
        await asyncio.gather(*(_run_one(p, transcript, scenario, llm, judge_cache) for p in plan))
    )
    metrics = conversation_metrics(transcript)
    return ConversationResult(
        run_id=run_id,
        title=scenario.title if scenario is not None else "",
        tags=list(scenario.tags) if scenario is not None else [],
        transcript=transcript,
        verdicts=verdicts,
        metrics=metrics,
    )


def score_transcript_sync(
    transcript: Transcript,
    scenario: Scenario | None,
    *,
    suite_judges: Sequence[JudgeSpec] = (),
    llm: ModelClients | None = None,
    run_id: str = "",
) -> ConversationResult:
    """:func:`score_transcript` for code that is not already inside an event loop."""
    return asyncio.run(
        score_transcript(transcript, scenario, suite_judges=suite_judges, llm=llm, run_id=run_id)
    )
