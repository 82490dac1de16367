"""Headline metrics of a run (stable names, see ARCHITECTURE.md).

Pure functions of finished conversations: reports and gates recompute them from the
saved run and never re-run anything.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from evalkit.results import ConversationResult
from evalkit.transcript import Outcome

__all__ = [
    "HEADLINE_METRICS",
    "pass_hat_k",
    "percentile",
    "summarize",
]

HEADLINE_METRICS = (
    "n_conversations",
    "n_errors",
    "automation_rate",
    "escalation_rate",
    "task_completion_rate",
    "csat_proxy_mean",
    "csat_proxy_pct_satisfied",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "ttft_p50_ms",
    "slow_turn_rate",
    "tokens_total",
    "cost_usd_total",
    "cost_per_conversation_usd",
    "pass_hat_k",
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def pass_hat_k(successes_by_scenario: dict[Any, list[bool]]) -> dict[int, float]:
    """τ-bench's pass^k: mean over scenarios of C(c, k) / C(n, k), for k = 1..min n.

    Scenarios with fewer than k trials do not take part in pass^k.
    """
    if not successes_by_scenario:
        return {}
    max_k = min(len(v) for v in successes_by_scenario.values())
    out: dict[int, float] = {}
    for k in range(1, max_k + 1):
        vals = [
            math.comb(sum(v), k) / math.comb(len(v), k)
            for v in successes_by_scenario.values()
            if len(v) >= k
        ]
        out[k] = sum(vals) / len(vals)
    return out


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def is_automated(c: ConversationResult) -> bool:
    """Resolved by the agent with no human handoff and not abandoned."""
    t = c.transcript
    return t.outcome == Outcome.resolved and t.handoff is None


def summarize(
    conversations: Iterable[ConversationResult], *, slow_turn_ms: float = 3000.0
) -> dict[str, Any]:
    """The headline metrics of a set of conversations (one variant)."""
    convs = list(conversations)
    n = len(convs)
    latencies = [
        a.latency_ms for c in convs for a in c.transcript.agent_turns if a.latency_ms is not None
    ]
    ttfts = [a.ttft_ms for c in convs for a in c.transcript.agent_turns if a.ttft_ms is not None]
    csat = [
        float(v)
        for c in convs
        if isinstance(v := c.metrics.get("csat_proxy"), int | float) and not isinstance(v, bool)
    ]
    usages = [a.usage for c in convs for a in c.transcript.agent_turns if a.usage is not None]
    tokens = sum(u.total_tokens for u in usages) if usages else None
    priced = [u.cost_usd for u in usages if u.cost_usd is not None]
    cost_total = sum(priced) if priced else None
    judged = [c.passed for c in convs if c.passed is not None]

    by_scenario: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for c in convs:
        if c.passed is not None:
            by_scenario[(c.transcript.variant, c.transcript.scenario_id)].append(bool(c.passed))

    return {
        "n_conversations": n,
        "n_errors": sum(1 for c in convs if c.transcript.outcome == Outcome.error),
        "automation_rate": _rate(sum(1 for c in convs if is_automated(c)), n),
        "escalation_rate": _rate(sum(1 for c in convs if c.transcript.outcome == Outcome.escalated), n),
        "task_completion_rate": _rate(sum(1 for p in judged if p), len(judged)),
        "csat_proxy_mean": sum(csat) / len(csat) if csat else None,
        "csat_proxy_pct_satisfied": _rate(sum(1 for x in csat if x >= 4.0), len(csat)),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "latency_p99_ms": percentile(latencies, 99),
        "ttft_p50_ms": percentile(ttfts, 50),
        "slow_turn_rate": _rate(sum(1 for x in latencies if x > slow_turn_ms), len(latencies)),
        "tokens_total": tokens,
        "cost_usd_total": cost_total,
        "cost_per_conversation_usd": cost_total / n if cost_total is not None and n else None,
        "pass_hat_k": {str(k): v for k, v in pass_hat_k(dict(by_scenario)).items()},
    }
