"""The HTML report: one self-contained file a product manager can open offline.

``render_report(run)`` is a pure function of the saved run (nothing is re-run): headline
KPI cards with 95% confidence intervals (and the gate's verdict when a gate ran), plotly
charts, a filterable scenario table and a transcript viewer. Conversation text reaches the
page only as escaped JSON and is inserted with ``textContent``; see ``_embed``.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit import __version__
from evalkit.core._plural import plural
from evalkit.core.results import ConversationResult, RunResult
from evalkit.core.transcript import Outcome
from evalkit.metrics import stats
from evalkit.metrics.summary import (
    MetricValue,
    attack_success,
    cost_note,
    evaluation_spend,
    percentile,
    scaled_resamples,
    spend_text,
    summarize_with_ci,
)
from evalkit.metrics.table import conversation_table
from evalkit.reports import _embed

__all__ = [
    "OUTCOME_ORDER",
    "ROW_COLUMNS",
    "build_report_data",
    "normalize_gate",
    "render_report",
    "write_report",
    "load_gate",
]

OUTCOME_ORDER = [o.value for o in Outcome]
# Latency histogram: about this many bins between 0 and the 99.5th percentile (slower turns
# are counted in the last bin, and the axis says so) so a few outliers cannot flatten it.
_LATENCY_BINS = 40
# Bar charts by tag stay legible: the most frequent tags only.
_MAX_TAGS_CHARTED = 30


# --- KPIs -------------------------------------------------------------------------------------


def _metric_stats(table: pd.DataFrame) -> dict[str, MetricValue]:
    """Every headline metric with its 95% CI (``summarize_with_ci``) of one variant's rows."""
    return summarize_with_ci(table, n_resamples=scaled_resamples(len(table)))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"


def _usd(x: float | None) -> str:
    if x is None:
        return "–"
    return f"${x:.4f}" if x < 0.1 else f"${x:.2f}"


def _ci_text(s: MetricValue, fmt: Any) -> str:
    if s.ci_low is None or s.ci_high is None or s.value is None:
        return ""
    return f"95% CI {fmt(s.ci_low)} – {fmt(s.ci_high)}"


@dataclass(frozen=True)
class _CardSpec:
    key: str
    title: str
    metric: str  # the MetricValue shown (pass^k: the largest k)
    fmt: Any
    help: str
    # Gate checks on these metrics are shown on the card.
    gate_metrics: tuple[str, ...] = ()


def _dec2(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


_CARDS = [
    _CardSpec("automation", "Automation rate", "automation_rate", _pct,
              "Resolved by the agent with no human handoff and not abandoned.", ("automation_rate",)),
    _CardSpec("completion", "Task completion", "task_completion_rate", _pct,
              "Conversations whose deterministic checks all passed.", ("task_completion_rate",)),
    _CardSpec("csat", "CSAT proxy", "csat_proxy_mean", _dec2,
              "Estimated post-chat rating (1–5) from the transcript; share of 4–5 below.",
              ("csat_proxy_mean", "csat_proxy_pct_satisfied")),
    _CardSpec("latency", "p95 latency", "latency_p95_ms", _ms,
              "95% of agent replies arrived faster than this.",
              ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms", "slow_turn_rate")),
    _CardSpec("cost", "Cost / conversation", "cost_per_conversation_usd", _usd,
              "The agent's model spend per conversation, from the price table (the evaluation's own "
              "spend is listed apart).", ("cost_per_conversation_usd", "cost_usd_total")),
    _CardSpec("passk", "pass^k", "pass_hat_k", _dec2,
              "Chance that all k trials of a scenario pass (τ-bench); k = trials per scenario.", ("pass_hat_*",)),
]


def _gate_checks_for(gate: dict[str, Any] | None, spec: _CardSpec, variant: str) -> list[dict[str, Any]]:
    if not gate or gate.get("variant") not in (None, variant):
        return []
    out = []
    for c in gate["checks"]:
        m = c["metric"]
        if m in spec.gate_metrics or ("pass_hat_*" in spec.gate_metrics and m.startswith("pass_hat_")):
            # On the card the metric is implied, unless the check is on a sibling metric.
            label = c["short"] if m == spec.metric else f"{m} {c['short']}"
            out.append({**c, "label": label})
    return out


def _cards(
    variants: list[str],
    metrics: Mapping[str, Mapping[str, MetricValue]],
    notes: Mapping[str, str | None],
    gate: dict[str, Any] | None,
    eval_spend: str = "",
) -> list[dict[str, Any]]:
    """KPI cards as display strings, one row per variant inside each card; the cost card
    ends with the evaluation's own spend (simulated users, judges) when it called models."""
    cards = []
    for spec in _CARDS:
        rows = []
        for v in variants:
            s = metrics[v]
            note = ""
            if spec.metric == "pass_hat_k":
                ks = sorted(int(k.rsplit("_", 1)[1]) for k in s if k.startswith("pass_hat_"))
                if not ks:
                    stat = MetricValue(value=None)
                    note = "no deterministic checks ran"
                else:
                    stat = s[f"pass_hat_{ks[-1]}"]
                    one = s["pass_hat_1"].value
                    note = f"k = {ks[-1]}" + (f" · pass^1 {one:.2f}" if ks[-1] > 1 and one is not None else "")
            else:
                stat = s[spec.metric]
            value = spec.fmt(stat.value)
            if spec.metric == "cost_per_conversation_usd" and stat.value is None:
                tokens = s["tokens_total"].value
                if tokens:
                    value, note = "not priced", f"{tokens:,.0f} tokens; " + (notes[v] or "no price")
                elif eval_spend:
                    value, note = "no agent model cost", "the agent reported no model usage"
                else:
                    value, note = "no model cost (offline)", "no model was called, nothing to price"
            elif spec.metric == "cost_per_conversation_usd" and notes[v]:
                note = notes[v] or ""
            elif spec.metric == "csat_proxy_mean":
                sat = s["csat_proxy_pct_satisfied"]
                note = f"{_pct(sat.value)} satisfied (4–5)" if sat.value is not None else "no CSAT estimate"
            elif spec.metric == "task_completion_rate" and stat.value is None:
                note = "no deterministic checks ran"
            elif spec.metric in ("automation_rate", "task_completion_rate") and stat.n:
                note = "of " + plural(stat.n, "conversation", thousands=True)
            elif spec.metric == "latency_p95_ms" and stat.value is not None:
                note = f"p50 {_ms(s['latency_p50_ms'].value)} · p99 {_ms(s['latency_p99_ms'].value)}"
            rows.append(
                {
                    "variant": v,
                    "value": value,
                    "is_text": stat.value is None,
                    "ci": _ci_text(stat, spec.fmt),
                    "note": note,
                    "gate": _gate_checks_for(gate, spec, v),
                }
            )
        card = {"key": spec.key, "title": spec.title, "help": spec.help, "rows": rows}
        if spec.key == "cost" and eval_spend:
            card["footer"] = f"Evaluation's own spend (simulated users, judges), not the agent's: {eval_spend}"
        cards.append(card)
    return cards


# --- gate ---------------------------------------------------------------------------------------


def normalize_gate(gate: Any) -> dict[str, Any] | None:
    """The gate's outcome as the page shows it: overall verdict, variant, and each check.

    Accepts a :class:`evalkit.metrics.gate.GateResult` or its ``gate.json`` form. A file in another
    shape is ignored (the report then shows no gate) rather than failing the report.
    """
    from pydantic import ValidationError

    from evalkit.metrics._numbers import fmt_delta, fmt_metric, fmt_value
    from evalkit.metrics.gate import GateResult

    if not isinstance(gate, GateResult):
        try:
            gate = GateResult.model_validate(gate)
        except ValidationError:
            return None
    checks = []
    for c in gate.checks:
        if c.kind == "min":
            short = f"≥ {fmt_value(c.metric, c.threshold)}"
        elif c.kind == "max":
            short = f"≤ {fmt_value(c.metric, c.threshold)}"
        elif c.kind == "max_drop":
            short = f"drop ≤ {fmt_delta(c.metric, c.threshold).lstrip('+')} vs baseline"
        else:
            short = "no new failures vs baseline"
        rule = short if c.kind == "no_new_failures" else f"{c.metric} {short}"
        value = fmt_metric(c.metric, c.value) if c.kind != "no_new_failures" else (
            f"{c.value.value:.0f} new" if c.value is not None and c.value.value is not None else "n/a"
        )
        if c.kind == "max_drop" and c.delta is not None:
            value += f"; Δ {fmt_delta(c.metric, c.delta)}"
        checks.append(
            {
                "metric": c.metric,
                "rule": rule,
                "short": short,
                "value": value,
                "status": c.verdict.lower(),  # pass | fail | skip
                "detail": c.detail,
            }
        )
    return {
        "passed": gate.passed,
        "run_id": gate.run_id,
        "variant": gate.variant,
        "baseline": gate.baseline_run_id,
        "n_failed": gate.n_failed,
        "checks": checks,
        "new_failures": list(gate.new_failures),
    }


def load_gate(run_dir: str | Path) -> Any:
    """The :class:`evalkit.metrics.gate.GateResult` saved beside a run (``gate.json``), or None.

    An unreadable or foreign ``gate.json`` is ignored: the report is still written, without
    a gate verdict, rather than failing over an optional file.
    """
    from pydantic import ValidationError

    from evalkit.metrics.gate import GATE_FILE, GateResult

    path = Path(run_dir) / GATE_FILE
    if not path.is_file():
        return None
    try:
        return GateResult.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


# --- charts and table ----------------------------------------------------------------------------


def _csat_bucket(x: float) -> int:
    return int(min(5, max(1, math.floor(x + 0.5))))


def _pass_rates(groups: Mapping[str, list[bool | None]]) -> dict[str, dict[str, Any]]:
    """Pass rate per group with its Wilson 95% interval (drawn as error bars)."""
    out = {}
    for key, vals in groups.items():
        judged = [v for v in vals if v is not None]
        k = sum(1 for v in judged if v)
        iv = stats.wilson_interval(k, len(judged))
        out[key] = {
            "n": len(vals),
            "judged": len(judged),
            "passed": k,
            "rate": _round(k / len(judged), 4) if judged else None,
            "lo": _round(iv.low, 4),
            "hi": _round(iv.high, 4),
        }
    return out


def _all_passed(groups: Mapping[str, Mapping[str, dict[str, Any]]]) -> int | None:
    """The number of judged groups when every judged conversation in every group (and variant)
    passed, else None: the page then says so in one line instead of a row of identical 100%
    bars. Counts every group, also those beyond the charted most frequent tags."""
    judged = {k for per_variant in groups.values() for k, r in per_variant.items() if r["judged"]}
    rows = [r for per_variant in groups.values() for r in per_variant.values() if r["judged"]]
    return len(judged) if rows and all(r["passed"] == r["judged"] for r in rows) else None


def _charts(
    variants: list[str],
    by_variant: Mapping[str, Sequence[ConversationResult]],
    metrics: Mapping[str, Mapping[str, MetricValue]],
    passed: Mapping[int, bool | None],
) -> dict[str, Any]:
    outcomes: dict[str, list[int]] = {}
    csat: dict[str, list[int]] = {}
    by_tag: dict[str, dict[str, Any]] = {}
    by_channel: dict[str, dict[str, Any]] = {}
    lat_by_v: dict[str, list[float]] = {}
    tag_counts: Counter[str] = Counter()
    for v in variants:
        convs = by_variant[v]
        oc = Counter(c.transcript.outcome.value for c in convs)
        outcomes[v] = [oc.get(o, 0) for o in OUTCOME_ORDER]
        cs = Counter(
            _csat_bucket(float(x))
            for c in convs
            if isinstance(x := c.metrics.get("csat_proxy"), int | float) and not isinstance(x, bool)
            and math.isfinite(x)
        )
        csat[v] = [cs.get(i, 0) for i in range(1, 6)]
        tags: dict[str, list[bool | None]] = defaultdict(list)
        chans: dict[str, list[bool | None]] = defaultdict(list)
        for c in convs:
            for t in c.tags or ["(untagged)"]:
                tags[t].append(passed[id(c)])
                tag_counts[t] += 1
            chans[c.transcript.channel].append(passed[id(c)])
        by_tag[v] = _pass_rates(tags)
        by_channel[v] = _pass_rates(chans)
        lat_by_v[v] = [a.latency_ms for c in convs for a in c.transcript.agent_turns if a.latency_ms is not None]

    all_lat = [x for xs in lat_by_v.values() for x in xs]
    latency: dict[str, Any] = {"edges": [], "counts": {}, "percentiles": {}, "clipped": 0}
    if all_lat:
        top = percentile(all_lat, 99.5) or max(all_lat)
        top = max(top, 1.0)
        width = _nice_width(top / _LATENCY_BINS)
        nbins = max(1, math.ceil(top / width))
        latency["edges"] = [round(i * width, 3) for i in range(nbins + 1)]
        for v, xs in lat_by_v.items():
            counts = [0] * nbins
            for x in xs:
                counts[min(nbins - 1, max(0, int(x // width)))] += 1
            latency["counts"][v] = counts
            latency["percentiles"][v] = {
                f"p{q}": _round(metrics[v][f"latency_p{q}_ms"].value) for q in (50, 95, 99)
            }
        latency["clipped"] = sum(1 for x in all_lat if x >= nbins * width)
    top_tags = [t for t, _ in tag_counts.most_common(_MAX_TAGS_CHARTED)]
    return {
        "outcome_order": OUTCOME_ORDER,
        "outcomes": outcomes,
        "csat": csat,
        "latency": latency,
        "by_tag": {v: {t: by_tag[v][t] for t in top_tags if t in by_tag[v]} for v in variants},
        "n_tags": len(tag_counts),
        "n_tags_charted": len(top_tags),
        "by_channel": by_channel,
        "all_passed": {"by_tag": _all_passed(by_tag), "by_channel": _all_passed(by_channel)},
    }


def _nice_width(raw: float) -> float:
    """Round a bin width up to 1, 2 or 5 times a power of ten (readable axis ticks)."""
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * 10**exp >= raw:
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


def _round(x: float | None, nd: int = 1) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, nd)


ROW_COLUMNS = [
    "scenario_id", "title", "variant", "trial", "channel", "tags", "outcome", "passed",
    "csat", "turns", "latency_p50_ms", "latency_max_ms", "failed", "reason",
]


def _row(c: ConversationResult, passed: bool | None) -> list[Any]:
    t = c.transcript
    lat = [a.latency_ms for a in t.agent_turns if a.latency_ms is not None]
    failed = c.failed_verdicts
    reason = ""
    if t.error:
        reason = t.error
    elif failed:
        f = failed[0]
        reason = f.error or f.reason
    csat = c.metrics.get("csat_proxy")
    return [
        t.scenario_id,
        c.title,
        t.variant,
        t.trial,
        t.channel,
        list(c.tags),
        t.outcome.value,
        passed,
        _round(float(csat), 2) if isinstance(csat, int | float) and not isinstance(csat, bool) else None,
        len(t.user_turns),
        _round(percentile(lat, 50)),
        _round(max(lat)) if lat else None,
        [f.spec or f.judge for f in failed],
        reason[:300],
    ]


# --- red team -------------------------------------------------------------------------------------


def _redteam(variants: list[str], by_variant: Mapping[str, pd.DataFrame]) -> dict[str, Any] | None:
    """Attack success rate per category and variant (``evalkit.metrics.summary.attack_success``), or
    None when the run holds no judged red-team conversation. ``rows`` are display strings for
    the server-rendered table; ``rates`` feed the chart."""
    per_variant = {v: attack_success(by_variant[v]) for v in variants}
    if not any(overall.n for overall, _ in per_variant.values()):
        return None
    categories = sorted({k for _, cats in per_variant.values() for k in cats})

    def cell(stat: Any) -> dict[str, Any]:
        if stat is None or not stat.n:
            return {"text": "–", "ci": "", "status": "skip"}
        return {
            "text": _pct(stat.rate),
            "ci": f"{stat.succeeded} of {stat.n} · 95% CI {_pct(stat.ci_low)} – {_pct(stat.ci_high)}",
            "status": "fail" if stat.succeeded else "pass",
        }

    rows = [{"category": "all attacks", "total": True, "cells": [cell(per_variant[v][0]) for v in variants]}]
    rows += [
        {"category": k, "total": False, "cells": [cell(per_variant[v][1].get(k)) for v in variants]}
        for k in categories
    ]
    rates = {
        v: {k: c.model_dump() for k, c in cats.items()} for v, (_, cats) in per_variant.items()
    }
    return {"categories": categories, "rows": rows, "rates": rates}


# --- manifest -----------------------------------------------------------------------------------


def _manifest_items(run: RunResult) -> list[tuple[str, str]]:
    m = run.manifest
    items: list[tuple[str, Any]] = [
        ("Run id", m.run_id),
        ("Status", m.status),
        ("Agent", m.agent),
        ("Variants", ", ".join(f"{k} = {v}" for k, v in m.variants.items())),
        ("Models", ", ".join(f"{k}: {v}" for k, v in m.models.items()) or "none (offline)"),
        ("Simulator", m.simulator),
        ("Suites", ", ".join(m.suites)),
        ("Tags", ", ".join(m.tags)),
        ("Seed", m.seed),
        ("Trials per scenario", m.trials),
        ("Concurrency", m.concurrency),
        ("Conversations", f"{len(run.conversations):,}" + (f" of {m.n_planned:,} planned" if m.n_planned else "")),
        ("Started", m.started_at),
        ("Finished", m.finished_at),
        ("Duration", _duration(m.duration_s)),
        ("Cache", ", ".join(f"{k}: {v:,}" for k, v in m.cache.items())),
        ("evalkit", m.evalkit_version),
        ("Git commit", m.git_sha),
        ("Python", m.python),
        ("Platform", m.platform),
        ("Command", m.command),
    ]
    items += [(str(k), json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v) for k, v in m.extra.items()]
    return [(k, str(v)) for k, v in items if v not in (None, "")]


def _duration(s: float | None) -> str | None:
    if s is None:
        return None
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


# --- assembly -----------------------------------------------------------------------------------


def _variants(run: RunResult) -> list[str]:
    seen = list(dict.fromkeys(run.manifest.variants))
    for c in run.conversations:
        if c.transcript.variant not in seen:
            seen.append(c.transcript.variant)
    present = {c.transcript.variant for c in run.conversations}
    return [v for v in seen if v in present] or ["default"]


def build_report_data(run: RunResult, *, gate: Any = None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data (deterministic for a given run).

    This is the report's "data section": the browser renders charts, the table and the
    transcripts from it; the KPI cards and manifest are also rendered server-side so the
    headline numbers read even with JavaScript off.
    """
    variants = _variants(run)
    by_variant: dict[str, list[ConversationResult]] = {v: [] for v in variants}
    for c in run.conversations:
        by_variant.setdefault(c.transcript.variant, []).append(c)
    # The conversation table, built once: every metric of the page reads its rows.
    table = conversation_table(run)
    tables = {v: table[(table["variant"] == v).to_numpy(dtype=bool)] for v in variants}
    metrics = {v: _metric_stats(tables[v]) for v in variants}
    # ConversationResult.passed walks the verdicts each time: compute it once here.
    passed = {id(c): c.passed for c in run.conversations}
    spend = evaluation_spend(run.manifest)
    notes = {v: cost_note(tables[v], spend) for v in variants}
    gate_view = normalize_gate(gate) if gate is not None else None
    if gate_view is not None and gate_view["run_id"] != run.manifest.run_id:
        gate_view = None  # a gate.json left from another run in the same folder
    convs = run.conversations
    data: dict[str, Any] = {
        "schema": 1,
        "generator": f"evalkit {__version__}",
        "run_id": run.manifest.run_id,
        "variants": variants,
        "kpis": _cards(variants, metrics, notes, gate_view, spend_text(spend)),
        "gate": gate_view,
        "charts": _charts(variants, by_variant, metrics, passed),
        "facets": {
            "variants": variants,
            "channels": sorted({c.transcript.channel for c in convs}),
            "outcomes": [o for o in OUTCOME_ORDER if any(c.transcript.outcome.value == o for c in convs)],
            "tags": sorted({t for c in convs for t in c.tags}),
        },
        "columns": ROW_COLUMNS,
        "rows": [_row(c, passed[id(c)]) for c in convs],
        "manifest": _manifest_items(run),
    }
    # Only runs with red-team conversations carry the section (other runs' data is unchanged).
    redteam = _redteam(variants, tables)
    if redteam is not None:
        data["redteam"] = redteam
    return data


def render_report(
    run: RunResult, *, gate: Any = None, charts: bool = True, compress: bool | None = None
) -> str:
    """The report as one self-contained HTML string (inline CSS, JS, plotly.js and data).

    ``gate`` is the gate's outcome (a ``GateResult`` or its ``gate.json`` form) when a gate
    ran; ``charts=False`` leaves out plotly.js (4.8 MB) and the charts, for a light file;
    ``compress`` forces the transcript encoding (default: gzip only for large runs).
    """
    data = build_report_data(run, gate=gate)
    transcripts = _embed.transcript_store(run.conversations, compress=compress)
    m = run.manifest
    n = len(run.conversations)
    title = f"evalkit report · {m.run_id}"
    subtitle = _embed.join_nonempty(
        [
            m.agent or ", ".join(m.variants.values()) or None,
            f"{n:,} conversation{'s' if n != 1 else ''}",
            f"{len(data['variants'])} variants" if len(data["variants"]) > 1 else None,
            m.started_at[:16].replace("T", " ") if m.started_at else None,
            _duration(m.duration_s),
            f"status: {m.status}" if m.status != "complete" else None,
        ]
    )
    plotly = _embed.plotly_js() if charts else ""
    scripts = [_embed.asset("transcript.js"), _embed.asset("report.js")]
    template = _embed.environment().get_template("report.html.j2")
    return template.render(
        title=title,
        subtitle=subtitle,
        data=data,
        charts=charts,
        data_json=_embed.script_json(data),
        transcripts_json=_embed.script_json(transcripts),
        css=_embed.asset("report.css"),
        plotly_js=plotly,
        common_js=scripts[0],
        report_js=scripts[1],
        csp=_embed.content_security_policy([plotly, *scripts] if charts else scripts),
    )


def write_report(run: RunResult, path: str | Path, *, gate: Any = None, charts: bool = True) -> Path:
    """Write :func:`render_report` to ``path`` atomically (temp file + rename); returns it.

    The gate is shown only when given (``evalkit report`` passes the run folder's
    ``gate.json`` through :func:`load_gate`).
    """
    from evalkit.core.files import atomic_write

    out = Path(path)
    html = render_report(run, gate=gate, charts=charts).encode("utf-8")
    atomic_write(out, lambda fh: fh.write(html))
    return out
