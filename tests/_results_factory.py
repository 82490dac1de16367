"""Build RunResult / ConversationResult objects directly, for metrics/compare/gate/report tests."""

from __future__ import annotations

from evalkit.core.results import ConversationResult, JudgeKind, RunManifest, RunResult, Verdict
from evalkit.core.transcript import AgentTurn, Handoff, Outcome, StopReason, Transcript, Usage, UserTurn


def conv(
    scenario_id: str = "s1",
    *,
    trial: int = 0,
    variant: str = "default",
    channel: str = "web",
    passed: bool | None = True,
    outcome: Outcome = Outcome.resolved,
    csat: float | None = 4.0,
    latencies: tuple[float, ...] = (100.0,),
    ttft: float | None = None,
    tags: tuple[str, ...] = (),
    usage: Usage | None = None,
    handoff: bool = False,
    error: str | None = None,
    reason: str = "expected tool not called",
    messages: tuple[str, ...] = (),
    title: str = "",
) -> ConversationResult:
    turns: list = []
    for i, lat in enumerate(latencies):
        say = messages[i] if i < len(messages) else f"user message {i + 1}"
        turns.append(UserTurn(content=say))
        turns.append(
            AgentTurn(
                content=f"agent reply {i + 1}",
                latency_ms=lat,
                ttft_ms=ttft,
                usage=usage,
                handoff=Handoff(ticket_id="T-1", reason="asked") if handoff and i == len(latencies) - 1 else None,
            )
        )
    verdicts = []
    if passed is not None:
        verdicts.append(
            Verdict(
                judge="tool_called",
                passed=passed,
                reason="ok" if passed else reason,
                kind=JudgeKind.deterministic,
                turn=1,
                spec="tool_called(check_order_status)",
            )
        )
    verdicts.append(Verdict.skip("llm_rubric", "no model configured"))
    return ConversationResult(
        run_id="run-1",
        title=title,
        tags=list(tags),
        transcript=Transcript(
            scenario_id=scenario_id,
            trial=trial,
            variant=variant,
            channel=channel,
            turns=turns,
            outcome=outcome,
            stop_reason=StopReason.agent_error if error else StopReason.script_done,
            error=error,
        ),
        verdicts=verdicts,
        metrics={"csat_proxy": csat} if csat is not None else {},
    )


def run(convs: list[ConversationResult], *, run_id: str = "run-1", variants: dict[str, str] | None = None) -> RunResult:
    vs = variants or {v: "tests:agent" for v in sorted({c.transcript.variant for c in convs}) or ["default"]}
    return RunResult(
        manifest=RunManifest(run_id=run_id, evalkit_version="0.1.0", variants=vs, status="complete", trials=1),
        conversations=convs,
    )


def write_run_folder(path, r: RunResult):
    """Write ``r`` as a run folder with evalkit's own writers (manifest + journal + tables)."""
    from evalkit.reports.outputs import standard_outputs
    from evalkit.run.runfolder import RunFolder

    with RunFolder(path).claim() as folder:
        folder.begin(r.manifest)
        for c in r.conversations:
            folder.append(c)
        folder.finish(r, standard_outputs())
    return path
