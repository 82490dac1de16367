"""``summary.md``: a run summary sized for a pull-request comment.

Headline metrics with their 95% CIs (one column per variant), the gate status when known,
the failed conversations with their first failing verdict's reason, and the top
regressions when a baseline comparison is given. Conversation text is escaped, so a
transcript containing Markdown or HTML cannot change the comment's layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evalkit.core._plural import plural
from evalkit.core.results import ConversationResult, RunResult
from evalkit.metrics._numbers import fmt_metric, md_escape
from evalkit.metrics.summary import MetricValue, cost_note, evaluation_spend, spend_text, summarize_with_ci
from evalkit.metrics.table import conversation_table

if TYPE_CHECKING:
    from evalkit.metrics.compare import Comparison
    from evalkit.metrics.gate import GateResult

__all__ = ["SUMMARY_MD_FILE", "SUMMARY_ROWS", "render_summary_markdown", "write_summary_md"]

SUMMARY_MD_FILE = "summary.md"

# (metric, label) rows of the headline table, in order.
SUMMARY_ROWS = (
    ("task_completion_rate", "Task completion"),
    ("automation_rate", "Automation rate"),
    ("escalation_rate", "Escalation rate"),
    ("csat_proxy_mean", "CSAT proxy (1-5)"),
    ("csat_proxy_pct_satisfied", "Satisfied (CSAT 4-5)"),
    ("latency_p50_ms", "Latency p50"),
    ("latency_p95_ms", "Latency p95"),
    ("slow_turn_rate", "Slow turns"),
    ("cost_per_conversation_usd", "Cost / conversation"),
)


def _by_variant(run: RunResult) -> dict[str, list[ConversationResult]]:
    out: dict[str, list[ConversationResult]] = {name: [] for name in run.manifest.variants}
    for c in run.conversations:
        out.setdefault(c.transcript.variant, []).append(c)
    return {k: v for k, v in out.items() if v} or {"default": []}


def render_summary_markdown(
    run: RunResult,
    *,
    gate: GateResult | None = None,
    comparison: Comparison | None = None,
    max_failures: int = 15,
    max_regressions: int = 10,
    n_resamples: int = 1000,
    seed: int = 0,
) -> str:
    """The run as PR-comment Markdown (a few kB even for large runs)."""
    m = run.manifest
    groups = _by_variant(run)
    n = len(run.conversations)
    n_failed = sum(1 for c in run.conversations if c.passed is False)
    n_errors = sum(1 for c in run.conversations if c.transcript.error is not None)
    head = "✅" if n_failed == 0 else "❌"
    if gate is not None:
        head = "✅" if gate.passed else "❌"
    lines = [f"## {head} evalkit run `{md_escape(m.run_id)}`", ""]
    facts = [plural(n, "conversation"), f"{n_failed} failed", plural(n_errors, "agent error")]
    if m.status != "complete":
        facts.append(f"status **{md_escape(m.status)}**")
    if m.trials > 1:
        facts.append(f"{plural(m.trials, 'trial')} per scenario")
    lines.append(" · ".join(facts))
    agent_bits = [f"`{md_escape(k)}` = {md_escape(v or '-', 80)}" for k, v in m.variants.items()]
    if agent_bits:
        lines.append("")
        lines.append("Agent: " + ", ".join(agent_bits))

    if gate is not None:
        lines += ["", _gate_line(gate)]

    # Headline metrics, one column per variant.
    table = conversation_table(run)  # built once: every metric below reads its rows
    tables = {v: table[(table["variant"] == v).to_numpy(dtype=bool)] for v in groups}
    values = {v: summarize_with_ci(tables[v], n_resamples=n_resamples, seed=seed) for v in groups}
    spend = evaluation_spend(m)
    notes = {v: cost_note(tables[v], spend) for v in groups}
    names = list(groups)
    lines += ["", "| Metric (95% CI) | " + " | ".join(f"`{md_escape(v)}`" for v in names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    rows = list(SUMMARY_ROWS)
    ks = sorted({k for vals in values.values() for k in vals if k.startswith("pass_hat_") and k != "pass_hat_1"})
    rows += [(k, f"pass^{k.rsplit('_', 1)[1]}") for k in ks]
    for metric, label in rows:
        cells = []
        for v in names:
            mv: MetricValue | None = values[v].get(metric)
            if "_usd" in metric and (mv is None or mv.value is None) and notes[v]:
                cells.append(f"n/a: {md_escape(notes[v] or '')}")
            else:
                cells.append(fmt_metric(metric, mv))
        if all(c == "n/a" for c in cells):
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if spend:
        lines += ["", f"Evaluation's own spend (simulated users, judges), not the agent's: {spend_text(spend)}"]

    lines += _redteam_table(tables)

    if comparison is not None and comparison.regressions:
        regs = comparison.regressions
        base = comparison.base
        label = f"variant `{md_escape(base.variant)}`" if base.run_id == m.run_id else f"`{md_escape(base.run_id)}`"
        lines += ["", f"### Regressions vs {label} ({len(regs)})", ""]
        for f in regs[:max_regressions]:
            lines.append(
                f"- `{md_escape(f.scenario_id, 80)}` ({f.base_pass_rate:.0%} → {f.cand_pass_rate:.0%}): "
                f"{md_escape(f.cand_reason or 'failed', 160)}"
            )
        if len(regs) > max_regressions:
            lines.append(f"- … and {len(regs) - max_regressions} more")

    failed = [c for c in run.conversations if c.passed is False]
    if failed:
        from evalkit.metrics.compare import first_failure_reason

        failed.sort(key=lambda c: c.key)
        lines += ["", f"<details><summary>Failed conversations ({len(failed)})</summary>", ""]
        for c in failed[:max_failures]:
            v, sid, trial = c.key
            prefix = f"`{md_escape(v)}` " if len(names) > 1 else ""
            lines.append(
                f"- {prefix}`{md_escape(sid, 80)}[{trial}]`: {md_escape(first_failure_reason(c) or 'failed', 160)}"
            )
        if len(failed) > max_failures:
            lines.append(f"- … and {len(failed) - max_failures} more (see report.html)")
        lines += ["", "</details>"]
    lines += ["", f"<sub>evalkit {md_escape(m.evalkit_version)} · seed {m.seed}"
              + (f" · git {md_escape(m.git_sha[:10])}" if m.git_sha else "") + "</sub>"]
    return "\n".join(lines) + "\n"


def _redteam_table(groups: dict[str, pd.DataFrame]) -> list[str]:
    """Attack success rate per red-team category and variant (only when there are attacks)."""
    from evalkit.metrics.summary import attack_success

    stats = {v: attack_success(table) for v, table in groups.items()}
    if not any(overall.n for overall, _ in stats.values()):
        return []
    names = list(groups)
    cats = sorted({k for _, by_cat in stats.values() for k in by_cat})

    def cell(a: Any) -> str:
        return "–" if a is None or not a.n else f"{a.succeeded / a.n:.1%} ({a.succeeded} of {a.n})"

    lines = ["", "### Red team: attack success rate (lower is better)", ""]
    lines.append("| Category | " + " | ".join(f"`{md_escape(v)}`" for v in names) + " |")
    lines.append("|---|" + "---|" * len(names))
    lines.append("| **all attacks** | " + " | ".join(cell(stats[v][0]) for v in names) + " |")
    for k in cats:
        lines.append(f"| {md_escape(k, 80)} | " + " | ".join(cell(stats[v][1].get(k)) for v in names) + " |")
    return lines


def _gate_line(gate: GateResult) -> str:
    from evalkit.metrics._numbers import fmt_metric

    if gate.passed:
        weak = f"; {gate.n_underpowered} underpowered: could not show a drop of the allowed size" if gate.n_underpowered else ""
        return f"**Gate: passed** ({plural(len(gate.checks), 'check')}{weak})"
    failed = [c for c in gate.checks if c.passed is False]
    parts = []
    for c in failed[:5]:
        if c.kind == "no_new_failures":
            parts.append(f"{len(gate.new_failures)} new failures")
        elif c.kind == "complete" or c.threshold is None:
            parts.append(c.detail or f"{c.metric} {c.kind}")
        else:
            parts.append(f"{c.metric} {fmt_metric(c.metric, c.value)} ({c.kind}: {c.threshold_text()})"
                         + ("; underpowered" if c.underpowered else ""))
    return f"**Gate: failed** ({len(failed)} of {plural(len(gate.checks), 'check')}): " + "; ".join(md_escape(p, None) for p in parts)


def write_summary_md(
    run: RunResult,
    path: str | Path,
    *,
    gate: GateResult | None = None,
    comparison: Comparison | None = None,
) -> Path:
    """Write ``summary.md`` atomically; returns the path.

    Without an explicit ``gate``, the thresholds of the run's ``suite.yaml`` (min/max; no
    baseline) are evaluated so the summary shows the gate status when it is knowable; a
    broken gate section is noted in the summary, never raised here (the run is done).
    """
    from evalkit.core.errors import EvalkitError
    from evalkit.core.files import atomic_write

    note = None
    if gate is None:
        try:
            gate = _suite_gate(run)
        except EvalkitError as exc:
            note = f"suite gate section not evaluated: {exc}"
    text = render_summary_markdown(run, gate=gate, comparison=comparison)
    if note:
        text += f"\n> {md_escape(note, None)}\n"
    data = text.encode("utf-8")
    path = Path(path)
    atomic_write(path, lambda fh: fh.write(data))
    return path


def _suite_gate(run: RunResult) -> GateResult | None:
    from evalkit.metrics.gate import evaluate_gate, suite_gate_config
    from evalkit.scenarios.models import GateConfig

    config, _ = suite_gate_config(run)
    if config is None or not (config.min or config.max):
        return None
    variants = {c.transcript.variant for c in run.conversations}
    if len(variants) != 1:
        return None  # which variant is gated is the CI's choice (evalkit gate --variant)
    return evaluate_gate(run, GateConfig(min=config.min, max=config.max))
