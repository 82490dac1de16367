"""Compare two variants: per-metric deltas with 95% CIs, paired tests, flipped scenarios.

The two sides are two run folders (``compare_runs(base, cand)``) or two variants inside one
run made with ``--variant A=... --variant B=...`` (``compare_variants(run, "A", "B")``).

How it is computed (documented in docs/metrics.md):

* Only scenarios that both sides ran are compared; the others are listed, not counted.
* Each metric is computed on each side exactly as in the summary; its delta is
  ``candidate - base``. The delta's CI is a *paired cluster bootstrap over scenarios*: the
  same resampled scenarios (with all their trials and turns) are used for both sides, so
  scenario difficulty cancels out.
* The metrics, their directions and their tests come from the registry
  (:data:`evalkit.metrics.summary.METRICS`); both sides are read from the conversation table.
* The significance test per metric is paired: exact McNemar on the discordant
  ``(scenario_id, trial)`` pairs for pass/fail-type metrics (task completion, automation,
  escalation, error, satisfied); Wilcoxon signed-rank on paired CSAT values; the paired
  bootstrap's two-sided p-value for latency, slow turns, cost and pass^k.
* A scenario *flips* when its majority verdict over trials (passed in more than half of its
  judged trials) differs between the sides. Regressions (passed -> failed) come first,
  then fixes, each with a conversation key from both sides to open side by side.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import Field

from evalkit.core._plural import plural
from evalkit.core.errors import ConfigError
from evalkit.core.results import ConversationResult, RunResult
from evalkit.core.strict import StrictModel
from evalkit.metrics import stats
from evalkit.metrics import summary as registry
from evalkit.metrics.summary import (
    DEFAULT_SLOW_TURN_MS,
    Clusters,
    Metric,
    MetricValue,
    PairedTest,
    Pairs,
    PassHatK,
    Rows,
    summarize_with_ci,
)
from evalkit.metrics.table import conversation_table

__all__ = [
    "COMPARED_METRICS",
    "RunRef",
    "MetricDelta",
    "FlippedScenario",
    "Comparison",
    "compare_runs",
    "compare_variants",
    "select_variant",
    "first_failure_reason",
    "render_comparison_markdown",
]

COMPARISON_SCHEMA_VERSION = 1

# The metrics a comparison reports, in display order: the registry's compared metrics (pass^k
# metrics, and red-team metrics when both sides ran attacks, are added as measured).
COMPARED_METRICS = tuple(m.name for m in registry.METRICS if m.compared and not isinstance(m.aggregate, PassHatK))

ConversationKey = tuple[str, str, int]


class RunRef(StrictModel):
    """One side of a comparison."""

    run_id: str
    variant: str
    agent: str | None = None
    path: str | None = None
    n_conversations: int = 0


class MetricDelta(StrictModel):
    """One metric on both sides, the difference with its CI, and a paired test."""

    metric: str
    base: MetricValue
    cand: MetricValue
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    # mcnemar_exact | wilcoxon | paired_bootstrap | none
    test: str = "none"
    p_value: float | None = None
    n_pairs: int = 0
    higher_is_better: bool | None = None
    # p < 1 - confidence.
    significant: bool = False
    # better | worse: significant change in that direction; same: not significant;
    # n/a: not measured on one side.
    verdict: Literal["better", "worse", "same", "n/a"] = "n/a"

    def ci_excludes_zero(self) -> bool:
        return stats.Interval(self.ci_low, self.ci_high).excludes_zero()


class FlippedScenario(StrictModel):
    """A scenario whose majority verdict changed between the two sides."""

    scenario_id: str
    title: str = ""
    tags: list[str] = Field(default_factory=list)
    kind: Literal["regression", "fix"]
    base_pass_rate: float
    cand_pass_rate: float
    base_trials: int
    cand_trials: int
    # Conversation keys (variant, scenario_id, trial) to open side by side.
    base_key: ConversationKey
    cand_key: ConversationKey
    # The first failing verdict's reason on the failing side (None on the passing side).
    base_reason: str | None = None
    cand_reason: str | None = None


class Comparison(StrictModel):
    """Base vs candidate: what ``evalkit compare`` saves as ``comparison.json``."""

    schema_version: int = COMPARISON_SCHEMA_VERSION
    base: RunRef
    cand: RunRef
    confidence: float = stats.DEFAULT_CONFIDENCE
    n_resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = 0
    slow_turn_ms: float = DEFAULT_SLOW_TURN_MS
    pairing: str = "scenario_id+trial"
    n_common_scenarios: int = 0
    n_pairs: int = 0
    base_only_scenarios: list[str] = Field(default_factory=list)
    cand_only_scenarios: list[str] = Field(default_factory=list)
    metrics: list[MetricDelta] = Field(default_factory=list)
    flipped: list[FlippedScenario] = Field(default_factory=list)

    @property
    def regressions(self) -> list[FlippedScenario]:
        return [f for f in self.flipped if f.kind == "regression"]

    @property
    def fixes(self) -> list[FlippedScenario]:
        return [f for f in self.flipped if f.kind == "fix"]

    def metric(self, name: str) -> MetricDelta | None:
        return next((m for m in self.metrics if m.metric == name), None)

    def labels(self) -> tuple[str, str]:
        """Short names for the two sides: the variants when they differ, else the run folders
        as given (else the run ids), so two runs of one agent never read "default -> default"."""
        b, c = self.base, self.cand
        if b.variant != c.variant:
            return b.variant, c.variant
        if b.path and c.path and b.path != c.path:
            return b.path, c.path
        return b.run_id, c.run_id


# --- choosing the two sides -----------------------------------------------------------------


def _variants_of(run: RunResult) -> list[str]:
    seen = {c.transcript.variant for c in run.conversations}
    return sorted(seen) or sorted(run.manifest.variants)


def select_variant(run: RunResult, variant: str | None, *, role: str = "run") -> tuple[str, list[ConversationResult]]:
    """The conversations of one variant; with ``None``, the run's only variant.

    Raises :class:`ConfigError` naming the variants when the choice is ambiguous or wrong.
    """
    variants = _variants_of(run)
    if variant is None:
        if len(variants) != 1:
            raise ConfigError(
                f"{role} '{run.manifest.run_id}' has variants {', '.join(variants) or '(none)'}: choose one",
                field="variant",
            )
        variant = variants[0]
    elif variant not in variants:
        raise ConfigError(
            f"{role} '{run.manifest.run_id}' has no variant '{variant}' (has: {', '.join(variants) or '(none)'})",
            field="variant",
        )
    return variant, [c for c in run.conversations if c.transcript.variant == variant]


def first_failure_reason(c: ConversationResult) -> str | None:
    """The reason of a conversation's first failed (or errored) deterministic verdict, or its
    transcript error; ``None`` when nothing failed."""
    if c.transcript.error:
        return f"agent error: {c.transcript.error}"
    for v in c.failed_verdicts:
        label = v.spec or v.judge
        why = v.error or v.reason
        return f"{label}: {why}" if why else label
    return None


# --- the comparison ---------------------------------------------------------------------------


def _compared(b_vals: dict[str, MetricValue], c_vals: dict[str, MetricValue]) -> list[Metric]:
    """The registry's compared metrics that both sides have, in registry order, with
    pass^k expanded to every ``pass_hat_<k>`` both sides measured."""
    out: list[Metric] = []
    for m in registry.METRICS:
        if not m.compared:
            continue
        if isinstance(m.aggregate, PassHatK):
            ks = sorted({_k(n) for n in b_vals if n.startswith("pass_hat_")} & {_k(n) for n in c_vals if n.startswith("pass_hat_")})
            out += [replace(m, name=f"pass_hat_{k}") for k in ks]
        elif m.name in b_vals and m.name in c_vals:  # an optional metric only when both sides have it
            out.append(m)
    return out


def _k(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def _statistic(m: Metric, cl: Clusters) -> Callable[[np.ndarray], np.ndarray] | None:
    if isinstance(m.aggregate, PassHatK):
        return PassHatK.statistic_k(cl, _k(m.name))
    return m.aggregate.statistic(cl)


def _paired(
    fb: Callable[[np.ndarray], np.ndarray], fc: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """candidate - base on the same resampled scenarios."""
    return lambda counts: fc(counts) - fb(counts)


def _pairs(b: Rows, c: Rows) -> Pairs:
    """Row positions on each side of the conversations paired by (scenario_id, trial), in
    that key's order."""
    keys = ["scenario_id", "trial"]
    left = b.table[keys].assign(_b=np.arange(b.n))
    right = c.table[keys].assign(_c=np.arange(c.n))
    both = left.merge(right, on=keys).sort_values(keys, kind="stable")
    return both["_b"].to_numpy(dtype=np.int64), both["_c"].to_numpy(dtype=np.int64)


def compare_runs(
    base: RunResult,
    cand: RunResult,
    *,
    base_variant: str | None = None,
    cand_variant: str | None = None,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = 0,
    slow_turn_ms: float = DEFAULT_SLOW_TURN_MS,
    base_path: str | None = None,
    cand_path: str | None = None,
) -> Comparison:
    """Compare a candidate against a base (two runs, or two variants of one run).

    Raises :class:`ConfigError` when a variant is ambiguous or unknown, or when the two
    sides have no scenario in common.
    """
    bv, bconvs = select_variant(base, base_variant, role="base run")
    cv, cconvs = select_variant(cand, cand_variant, role="candidate run")
    if base is cand and bv == cv:
        raise ConfigError(f"base and candidate are the same variant '{bv}'", field="variant")
    b_ids = {c.transcript.scenario_id for c in bconvs}
    c_ids = {c.transcript.scenario_id for c in cconvs}
    common = sorted(b_ids & c_ids)
    if not common:
        raise ConfigError(
            f"base ({bv}) and candidate ({cv}) have no scenario in common: nothing to compare", field="scenarios"
        )
    keep = set(common)
    bconvs = [c for c in bconvs if c.transcript.scenario_id in keep]
    cconvs = [c for c in cconvs if c.transcript.scenario_id in keep]
    index = {sid: i for i, sid in enumerate(common)}
    kw: dict[str, Any] = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed, "slow_turn_ms": slow_turn_ms}
    b_rows = Rows.of(conversation_table(bconvs), slow_turn_ms)
    c_rows = Rows.of(conversation_table(cconvs), slow_turn_ms)
    b_vals = summarize_with_ci(b_rows.table, **kw)
    c_vals = summarize_with_ci(c_rows.table, **kw)
    # Clusters of the paired bootstrap: the common scenarios, with all their trials and turns.
    b_cl = Clusters(b_rows, b_rows.table["scenario_id"].map(index).to_numpy(dtype=np.int64), len(common))
    c_cl = Clusters(c_rows, c_rows.table["scenario_id"].map(index).to_numpy(dtype=np.int64), len(common))
    pairs = _pairs(b_rows, c_rows)

    metrics = _compared(b_vals, c_vals)
    alpha = 1 - confidence
    # One paired bootstrap over scenarios for every metric: the same resamples on both sides.
    fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for m in metrics:
        fb, fc = _statistic(m, b_cl), _statistic(m, c_cl)
        if b_vals[m.name].value is not None and c_vals[m.name].value is not None and fb and fc:
            fns[m.name] = _paired(fb, fc)
    dists = stats.cluster_bootstrap_many(len(common), fns, n_resamples=n_resamples, seed=seed)
    deltas: list[MetricDelta] = []
    for m in metrics:
        name = m.name
        bm, cm = b_vals[name], c_vals[name]
        md = MetricDelta(metric=name, base=bm, cand=cm, higher_is_better=m.higher_is_better)
        if bm.value is None or cm.value is None:
            deltas.append(md)
            continue
        md.delta = cm.value - bm.value
        dist = dists[name]
        iv = stats.percentile_interval(dist, confidence)
        md.ci_low, md.ci_high = iv.low, iv.high
        test = m.aggregate.paired_test(b_rows, c_rows, pairs)
        if test is None:
            test = PairedTest("paired_bootstrap", stats.bootstrap_p_value(dist), len(common))
        md.test, md.p_value, md.n_pairs = test.name, test.p_value, test.n_pairs
        md.significant = md.p_value is not None and md.p_value < alpha
        if not md.significant or md.delta == 0 or md.higher_is_better is None:
            md.verdict = "same"
        else:
            md.verdict = "better" if (md.delta > 0) == md.higher_is_better else "worse"
        deltas.append(md)

    return Comparison(
        base=RunRef(
            run_id=base.manifest.run_id,
            variant=bv,
            agent=base.manifest.variants.get(bv, base.manifest.agent),
            path=base_path,
            n_conversations=len(bconvs),
        ),
        cand=RunRef(
            run_id=cand.manifest.run_id,
            variant=cv,
            agent=cand.manifest.variants.get(cv, cand.manifest.agent),
            path=cand_path,
            n_conversations=len(cconvs),
        ),
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        slow_turn_ms=slow_turn_ms,
        n_common_scenarios=len(common),
        n_pairs=len(pairs[0]),
        base_only_scenarios=sorted(b_ids - c_ids),
        cand_only_scenarios=sorted(c_ids - b_ids),
        metrics=deltas,
        flipped=_flips(bconvs, cconvs),
    )


def compare_variants(run: RunResult, base_variant: str, cand_variant: str, **kwargs: object) -> Comparison:
    """Compare two variants inside one run folder (``evalkit run --variant A=... --variant B=...``)."""
    return compare_runs(run, run, base_variant=base_variant, cand_variant=cand_variant, **kwargs)  # type: ignore[arg-type]


def _flips(bconvs: list[ConversationResult], cconvs: list[ConversationResult]) -> list[FlippedScenario]:
    def group(convs: list[ConversationResult]) -> dict[str, list[ConversationResult]]:
        out: dict[str, list[ConversationResult]] = defaultdict(list)
        for c in sorted(convs, key=lambda c: c.transcript.trial):
            out[c.transcript.scenario_id].append(c)
        return out

    bg, cg = group(bconvs), group(cconvs)
    flips: list[FlippedScenario] = []
    for sid in sorted(set(bg) & set(cg)):
        bj = [c for c in bg[sid] if c.passed is not None]
        cj = [c for c in cg[sid] if c.passed is not None]
        if not bj or not cj:
            continue
        b_rate = sum(bool(c.passed) for c in bj) / len(bj)
        c_rate = sum(bool(c.passed) for c in cj) / len(cj)
        b_pass, c_pass = b_rate > 0.5, c_rate > 0.5
        if b_pass == c_pass:
            continue
        kind: Literal["regression", "fix"] = "regression" if b_pass else "fix"
        # Show a conversation that passed on the passing side and one that failed on the
        # failing side, with the same trial number where possible.
        pass_side, fail_side = (bj, cj) if b_pass else (cj, bj)
        failing = next(c for c in fail_side if not c.passed)
        passing = next(
            (c for c in pass_side if c.passed and c.transcript.trial == failing.transcript.trial),
            next(c for c in pass_side if c.passed),
        )
        b_conv, c_conv = (passing, failing) if b_pass else (failing, passing)
        ref = c_conv if b_pass else b_conv
        flips.append(
            FlippedScenario(
                scenario_id=sid,
                title=ref.title,
                tags=list(ref.tags),
                kind=kind,
                base_pass_rate=b_rate,
                cand_pass_rate=c_rate,
                base_trials=len(bj),
                cand_trials=len(cj),
                base_key=b_conv.key,
                cand_key=c_conv.key,
                base_reason=first_failure_reason(b_conv),
                cand_reason=first_failure_reason(c_conv),
            )
        )
    # Regressions first (biggest drop first), then fixes (biggest gain first).
    flips.sort(key=lambda f: (f.kind != "regression", -abs(f.cand_pass_rate - f.base_pass_rate), f.scenario_id))
    return flips


# --- Markdown -------------------------------------------------------------------------------


def render_comparison_markdown(cmp: Comparison, *, max_flips: int = 20) -> str:
    """The comparison as Markdown (PR-comment sized)."""
    from evalkit.metrics._numbers import fmt_delta, fmt_metric, fmt_p, md_escape

    b, c = cmp.base, cmp.cand
    b_label, c_label = cmp.labels()
    pct = f"{cmp.confidence * 100:.0f}%"
    lines = [
        f"## evalkit comparison: {md_escape(b_label)} → {md_escape(c_label)}",
        "",
        f"- **Base**: `{b.run_id}` variant `{b.variant}`" + (f" ({md_escape(b.agent)})" if b.agent else "")
        + f", {plural(b.n_conversations, 'conversation')}",
        f"- **Candidate**: `{c.run_id}` variant `{c.variant}`" + (f" ({md_escape(c.agent)})" if c.agent else "")
        + f", {plural(c.n_conversations, 'conversation')}",
        f"- {plural(cmp.n_common_scenarios, 'scenario')} in common, {plural(cmp.n_pairs, 'paired conversation')} "
        f"(paired by scenario and trial); {pct} CIs from a paired bootstrap over scenarios "
        f"({cmp.n_resamples} resamples, seed {cmp.seed}).",
    ]
    if cmp.base_only_scenarios or cmp.cand_only_scenarios:
        lines.append(
            f"- Not compared: {plural(len(cmp.base_only_scenarios), 'scenario')} only in the base, "
            f"{len(cmp.cand_only_scenarios)} only in the candidate."
        )
    n_reg, n_fix = len(cmp.regressions), len(cmp.fixes)
    worse = [m.metric for m in cmp.metrics if m.verdict == "worse"]
    better = [m.metric for m in cmp.metrics if m.verdict == "better"]
    lines += [
        "",
        f"**{n_reg} regression{'s' if n_reg != 1 else ''}, {n_fix} fix{'es' if n_fix != 1 else ''}**; "
        f"significantly better: {', '.join(better) or 'none'}; significantly worse: {', '.join(worse) or 'none'}.",
        "",
        f"| Metric | Base | Candidate | Δ [{pct} CI] | p | Test | |",
        "|---|---|---|---|---|---|---|",
    ]
    marks = {"better": "✅ better", "worse": "❌ worse", "same": "≈", "n/a": "n/a"}
    for m in cmp.metrics:
        if m.base.value is None and m.cand.value is None:
            continue
        delta = fmt_delta(m.metric, m.delta)
        if m.ci_low is not None and m.ci_high is not None:
            delta += f" [{fmt_delta(m.metric, m.ci_low)}, {fmt_delta(m.metric, m.ci_high)}]"
        lines.append(
            f"| {m.metric} | {fmt_metric(m.metric, m.base)} | {fmt_metric(m.metric, m.cand)} | {delta} | "
            f"{fmt_p(m.p_value)} | {m.test.replace('_', ' ')} | {marks[m.verdict]} |"
        )
    for title, items in (("Regressions (passed → failed)", cmp.regressions), ("Fixes (failed → passed)", cmp.fixes)):
        if not items:
            continue
        lines += ["", f"### {title}", ""]
        for f in items[:max_flips]:
            reason = f.cand_reason if f.kind == "regression" else f.base_reason
            rates = f"{f.base_pass_rate:.0%} → {f.cand_pass_rate:.0%}"
            name = f"`{f.scenario_id}`" + (f" {md_escape(f.title, 80)}" if f.title else "")
            lines.append(f"- {name} ({rates}): {md_escape(reason or 'failed')}")
        if len(items) > max_flips:
            lines.append(f"- … and {len(items) - max_flips} more")
    return "\n".join(lines) + "\n"
