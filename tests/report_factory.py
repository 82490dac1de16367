"""Small deterministic runs for the report tests (built directly, no runner involved)."""

from __future__ import annotations

from evalkit.core.results import ConversationResult, JudgeKind, RunManifest, RunResult, Verdict
from evalkit.core.transcript import (
    AgentTurn,
    Handoff,
    Outcome,
    StopReason,
    ToolCall,
    Transcript,
    Usage,
    UserTurn,
)
from evalkit.metrics.gate import GateCheck, GateResult
from evalkit.metrics.summary import MetricValue

HOSTILE_SCRIPT = "<script>window.__xss = 1</script>"
HOSTILE_IMG = '<img src=x onerror="window.__xss = 2">'
HOSTILE_TITLE = '</script><script>window.__xss = 3</script><!--'

CHANNELS = ["web", "whatsapp", "slack", "voice"]
OUTCOMES = [Outcome.resolved, Outcome.resolved, Outcome.escalated, Outcome.abandoned, Outcome.resolved]


def conversation(
    i: int,
    *,
    variant: str = "default",
    trial: int = 0,
    fail_at: int | None = None,
    outcome: Outcome = Outcome.resolved,
    channel: str = "web",
    tags: list[str] | None = None,
    hostile: bool = False,
    priced: bool = False,
) -> ConversationResult:
    """A three-exchange conversation; ``fail_at`` makes the exchange-level check fail there."""
    turns: list = []
    for x in range(1, 4):
        user = f"Question {x} about order A{i:04d}"
        if hostile and x == 2:
            user = f"{HOSTILE_SCRIPT} and {HOSTILE_IMG}"
        turns.append(UserTurn(content=user))
        calls = []
        if x == 1:
            calls = [
                ToolCall(
                    name="lookup_order",
                    arguments={"order_id": f"A{i:04d}", "note": HOSTILE_IMG if hostile else "plain"},
                    result={"status": "shipped", "eta_days": 2 + i % 3},
                )
            ]
        turns.append(
            AgentTurn(
                content=f"Answer {x} for A{i:04d}",
                tool_calls=calls,
                latency_ms=float(200 + 150 * x + 37 * (i % 7)),
                ttft_ms=float(80 + 10 * x),
                usage=Usage(prompt_tokens=100, completion_tokens=20, cost_usd=0.001 if priced else None)
                if priced
                else None,
                handoff=Handoff(ticket_id=f"T-{i}", reason="customer asked for a human")
                if outcome == Outcome.escalated and x == 3
                else None,
            )
        )
    verdicts = [
        Verdict(
            judge="tool_called",
            spec="tool_called(lookup_order)",
            passed=True,
            reason="lookup_order was called",
            turn=1,
        )
    ]
    if fail_at is not None:
        verdicts.append(
            Verdict(
                judge="contains",
                spec="contains(refund)",
                passed=False,
                reason=(HOSTILE_SCRIPT if hostile else "reply did not mention") + " refund",
                turn=fail_at,
            )
        )
    verdicts.append(Verdict.skip("llm_rubric", "no model configured"))
    t = Transcript(
        scenario_id=f"sc-{i:03d}",
        trial=trial,
        variant=variant,
        channel=channel,
        turns=turns,
        outcome=outcome,
        stop_reason=StopReason.transferred if outcome == Outcome.escalated else StopReason.goal_met,
        duration_ms=1234.0,
    )
    return ConversationResult(
        run_id="run-test",
        title=HOSTILE_TITLE if hostile else f"Where is my order {i}",
        tags=tags if tags is not None else (["orders"] if i % 2 == 0 else ["billing", "refunds"]),
        transcript=t,
        verdicts=verdicts,
        metrics={"csat_proxy": 1.0 + (i * 0.7) % 4.0},
    )


def make_run(
    n: int = 10,
    *,
    variants: tuple[str, ...] = ("default",),
    trials: int = 1,
    hostile_index: int | None = None,
    priced: bool = False,
) -> RunResult:
    """A run of ``n`` scenarios per variant; every third conversation fails at exchange 2."""
    convs = []
    for v in variants:
        for i in range(n):
            for trial in range(trials):
                convs.append(
                    conversation(
                        i,
                        variant=v,
                        trial=trial,
                        fail_at=2 if (i + trial) % 3 == 0 else None,
                        outcome=OUTCOMES[i % len(OUTCOMES)],
                        channel=CHANNELS[i % len(CHANNELS)],
                        hostile=(i == hostile_index),
                        priced=priced,
                    )
                )
    manifest = RunManifest(
        run_id="run-test",
        evalkit_version="0.1.0",
        agent="reference_agent:create_agent",
        variants={v: f"reference_agent:create_agent --prompt {v}" for v in variants},
        seed=7,
        trials=trials,
        started_at="2026-01-02T03:04:05Z",
        finished_at="2026-01-02T03:05:05Z",
        duration_s=60.0,
        status="complete",
        cache={"hits": 3, "misses": 1},
        extra={"note": HOSTILE_SCRIPT} if hostile_index is not None else {},
    )
    return RunResult(manifest=manifest, conversations=convs)


def gate_result(run: RunResult, passed: bool) -> GateResult:
    """A gate outcome for ``run``: a task-completion check (``passed``) and a passing latency one."""
    mv = MetricValue(value=0.5, ci_low=0.3, ci_high=0.7, n=12, method="wilson")
    return GateResult(
        run_id=run.manifest.run_id,
        variant="default",
        checks=[
            GateCheck(metric="task_completion_rate", kind="min", threshold=0.8, value=mv, passed=passed),
            GateCheck(metric="latency_p95_ms", kind="max", threshold=3000, value=mv, passed=True),
        ],
    )


__all__ = ["make_run", "conversation", "odd_conversation", "gate_result", "HOSTILE_SCRIPT", "HOSTILE_IMG", "HOSTILE_TITLE"]


def odd_conversation() -> ConversationResult:
    """Everything unusual at once: a greeting before the user speaks, a recorded tool turn,
    an agent error, a failed tool call, a judge that crashed and a verdict past the last turn."""
    from evalkit.core.transcript import ToolTurn

    t = Transcript(
        scenario_id="odd-1",
        channel="sms",  # not one of the styled channels
        turns=[
            AgentTurn(content="Hi! How can I help?", latency_ms=5.0),
            UserTurn(content="Refund please"),
            AgentTurn(
                content="",
                tool_calls=[ToolCall(name="issue_refund", arguments={"amount": 5}, error="payment service down")],
                latency_ms=4200.0,
            ),
            ToolTurn(name="issue_refund", content='{"error": "payment service down"}'),
            AgentTurn(error="agent raised TimeoutError", latency_ms=30000.0),
        ],
        outcome=Outcome.error,
        stop_reason=StopReason.agent_error,
        error="agent raised TimeoutError",
        end_state={"refunds": []},
    )
    return ConversationResult(
        run_id="run-test",
        title="=HYPERLINK(\"http://127.0.0.1/x\", \"odd, one\")",  # a spreadsheet formula
        tags=[],
        transcript=t,
        verdicts=[
            Verdict(judge="refund_issued", passed=False, reason="no refund in the end state", turn=7),
            Verdict(judge="rubric", error="judge model returned invalid JSON", kind=JudgeKind.model),
        ],
    )
