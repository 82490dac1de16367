"""Time and size of the statistics and CI outputs for a large run.

Builds a synthetic run (N conversations x T turns, 3 trials per scenario, two variants),
then times summarize_with_ci (2,000 bootstrap resamples), a breakdown by tag, compare_variants
(paired bootstrap over scenarios + tests), junit.xml and summary.md, and prints their sizes.

    python benchmarks/metrics_scale.py [--conversations 10000] [--turns 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evalkit.core.results import ConversationResult, JudgeKind, RunManifest, RunResult, Verdict
from evalkit.core.transcript import AgentTurn, Outcome, Transcript, UserTurn
from evalkit.metrics.compare import compare_variants
from evalkit.metrics.summary import breakdown, summarize_with_ci
from evalkit.reports.junit import junit_xml
from evalkit.reports.markdown import render_summary_markdown


def make_run(n: int, turns: int, seed: int = 0) -> RunResult:
    rng = np.random.default_rng(seed)
    convs = []
    tags = ["orders", "refunds", "returns", "faq", "handoff", "guardrails"]
    for i in range(n):
        variant = "A" if i % 2 == 0 else "B"
        sid = f"s{(i // 2) // 3:05d}"
        trial = (i // 2) % 3
        lat = rng.lognormal(5.5 if variant == "A" else 5.6, 0.6, turns)
        t_turns = []
        for k in range(turns):
            t_turns.append(UserTurn(content=f"user message {k}"))
            t_turns.append(AgentTurn(content=f"agent reply {k}", latency_ms=float(lat[k])))
        passed = bool(rng.random() < (0.85 if variant == "A" else 0.82))
        convs.append(
            ConversationResult(
                tags=[tags[i % len(tags)]],
                transcript=Transcript(
                    scenario_id=sid, trial=trial, variant=variant, turns=t_turns,
                    outcome=Outcome.resolved if rng.random() < 0.8 else Outcome.escalated,
                ),
                verdicts=[Verdict(judge="said", passed=passed, reason="ok" if passed else "missing text",
                                  kind=JudgeKind.deterministic, turn=1)],
                metrics={"csat_proxy": float(np.clip(rng.normal(3.6, 0.8), 1, 5))},
            )
        )
    manifest = RunManifest(run_id="bench", evalkit_version="0", variants={"A": "a:x", "B": "b:x"}, trials=3)
    return RunResult(manifest=manifest, conversations=convs)


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    # CPU time beside wall time: on a shared, busy machine the CPU figure is the steadier one.
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    print(f"{label:<34} {time.perf_counter() - t0:7.2f} s  (CPU {time.process_time() - c0:6.2f} s)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=10_000)
    ap.add_argument("--turns", type=int, default=6)
    args = ap.parse_args()
    run = timed("build synthetic run", lambda: make_run(args.conversations, args.turns))
    a = [c for c in run.conversations if c.transcript.variant == "A"]
    print(f"{len(run.conversations)} conversations, {len(run.conversations) * args.turns} agent turns")
    ci = timed("summarize_with_ci (one variant)", lambda: summarize_with_ci(a))
    print("   p95 latency", ci["latency_p95_ms"].fmt(), " task completion", ci["task_completion_rate"].fmt())
    timed("breakdown by tag (1000 resamples)", lambda: breakdown(a, "tag"))
    cmp = timed("compare_variants A vs B", lambda: compare_variants(run, "A", "B"))
    print(f"   {len(cmp.regressions)} regressions, {len(cmp.fixes)} fixes")
    xml = timed("junit.xml", lambda: junit_xml(run))
    print(f"   junit.xml {len(xml) / 1e6:.1f} MB")
    md = timed("summary.md", lambda: render_summary_markdown(run))
    print(f"   summary.md {len(md.encode()) / 1e3:.1f} kB")


if __name__ == "__main__":
    main()
