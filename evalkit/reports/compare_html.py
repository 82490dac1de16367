"""The comparison page: base vs candidate, one self-contained HTML file.

Per-metric deltas with their 95% CIs and paired-test p-values (from
:class:`evalkit.metrics.compare.Comparison`), then the scenarios that flipped (regressions first,
then fixes), each opening the base and the candidate transcript side by side. Like the run
report, every piece of run text reaches the page as escaped JSON or autoescaped markup.
"""

from __future__ import annotations

from typing import Any

from evalkit import __version__
from evalkit.core.results import ConversationResult, RunResult
from evalkit.metrics._numbers import fmt_delta, fmt_metric, fmt_p
from evalkit.metrics.compare import Comparison
from evalkit.reports import _embed

__all__ = ["METRIC_LABELS", "build_comparison_data", "render_comparison_html"]

# What a product manager reads instead of the metric's stable name.
METRIC_LABELS = {
    "task_completion_rate": "Task completion",
    "automation_rate": "Automation rate",
    "escalation_rate": "Escalation rate",
    "error_rate": "Error rate",
    "csat_proxy_mean": "CSAT proxy (mean)",
    "csat_proxy_pct_satisfied": "CSAT proxy: % satisfied",
    "latency_p50_ms": "Latency p50",
    "latency_p95_ms": "Latency p95",
    "latency_p99_ms": "Latency p99",
    "ttft_p50_ms": "Time to first token p50",
    "slow_turn_rate": "Slow replies",
    "cost_per_conversation_usd": "Cost / conversation",
}

_TESTS = {
    "mcnemar_exact": "exact McNemar",
    "wilcoxon": "Wilcoxon signed-rank",
    "paired_bootstrap": "paired bootstrap",
    "none": "",
}


def _label(metric: str) -> str:
    if metric.startswith("pass_hat_"):
        return f"pass^{metric.rsplit('_', 1)[1]}"
    return METRIC_LABELS.get(metric, metric)


def build_comparison_data(
    cmp: Comparison, base_run: RunResult, cand_run: RunResult
) -> tuple[dict[str, Any], list[ConversationResult]]:
    """The page's data (metric rows, flips) and the conversations the flips open.

    Flip ``i`` opens ``conversations[flips[i].base]`` and ``conversations[flips[i].cand]``;
    a conversation missing from its run folder is ``None`` (the page says so).
    """
    base_by_key = {c.key: c for c in base_run.conversations}
    cand_by_key = {c.key: c for c in cand_run.conversations}
    convs: list[ConversationResult] = []

    def take(c: ConversationResult | None) -> int | None:
        if c is None:
            return None
        convs.append(c)
        return len(convs) - 1

    metrics = []
    for m in cmp.metrics:
        if m.base.value is None and m.cand.value is None:
            continue
        delta = fmt_delta(m.metric, m.delta)
        ci = (
            f"{fmt_delta(m.metric, m.ci_low)} to {fmt_delta(m.metric, m.ci_high)}"
            if m.ci_low is not None and m.ci_high is not None
            else ""
        )
        metrics.append(
            {
                "metric": m.metric,
                "label": _label(m.metric),
                "base": fmt_metric(m.metric, m.base),
                "cand": fmt_metric(m.metric, m.cand),
                "delta": delta,
                "ci": ci,
                "p": fmt_p(m.p_value),
                "test": _TESTS.get(m.test, m.test),
                "n_pairs": m.n_pairs,
                "verdict": m.verdict,
                "significant": m.significant,
                "direction": ""
                if m.higher_is_better is None
                else ("higher is better" if m.higher_is_better else "lower is better"),
            }
        )
    flips = []
    for f in cmp.flipped:
        flips.append(
            {
                "scenario_id": f.scenario_id,
                "title": f.title,
                "tags": f.tags,
                "kind": f.kind,
                "base_rate": f"{f.base_pass_rate:.0%} of {f.base_trials}",
                "cand_rate": f"{f.cand_pass_rate:.0%} of {f.cand_trials}",
                "reason": (f.cand_reason if f.kind == "regression" else f.base_reason) or "",
                "base": take(base_by_key.get(f.base_key)),
                "cand": take(cand_by_key.get(f.cand_key)),
                "base_trial": f.base_key[2],
                "cand_trial": f.cand_key[2],
            }
        )
    data = {
        "schema": 1,
        "generator": f"evalkit {__version__}",
        "base": cmp.base.model_dump(mode="json"),
        "cand": cmp.cand.model_dump(mode="json"),
        "confidence": cmp.confidence,
        "n_resamples": cmp.n_resamples,
        "n_common_scenarios": cmp.n_common_scenarios,
        "n_pairs": cmp.n_pairs,
        "base_only": cmp.base_only_scenarios,
        "cand_only": cmp.cand_only_scenarios,
        "metrics": metrics,
        "better": [m["label"] for m in metrics if m["verdict"] == "better"],
        "worse": [m["label"] for m in metrics if m["verdict"] == "worse"],
        "n_regressions": len(cmp.regressions),
        "n_fixes": len(cmp.fixes),
        "flips": flips,
    }
    return data, convs


def render_comparison_html(cmp: Comparison, base_run: RunResult, cand_run: RunResult) -> str:
    """The comparison as one self-contained HTML page (no plotly, no network)."""
    data, convs = build_comparison_data(cmp, base_run, cand_run)
    transcripts = _embed.transcript_store(convs)
    scripts = [_embed.asset("transcript.js"), _embed.asset("compare.js")]
    b, c = cmp.base, cmp.cand
    same_run = b.run_id == c.run_id
    title = f"{b.variant} → {c.variant}" if same_run else f"{b.run_id} ({b.variant}) → {c.run_id} ({c.variant})"
    template = _embed.environment().get_template("compare.html.j2")
    return template.render(
        title=title,
        data=data,
        pct=f"{cmp.confidence * 100:.0f}%",
        data_json=_embed.script_json(data),
        transcripts_json=_embed.script_json(transcripts),
        css=_embed.asset("report.css"),
        common_js=scripts[0],
        compare_js=scripts[1],
        csp=_embed.content_security_policy(scripts),
    )
