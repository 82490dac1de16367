"""Headline metrics of a run: one registry, computed from the conversation table.

Every metric is defined once, in :data:`METRICS`: its name (stable, see ARCHITECTURE.md),
what it counts, its unit, which way is better, and how it aggregates the conversation table
(:mod:`evalkit.metrics.table`, the ``results.parquet`` rows). The summary, the confidence intervals,
breakdowns, comparisons (:mod:`evalkit.metrics.compare`), the gate and the metric table of
``docs/metrics.md`` (``python -m evalkit.metrics.docs``) all read the registry. Pure functions
of finished conversations: reports and gates recompute them from the saved run and never
re-run anything.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.core.errors import ConfigError
from evalkit.core.pricing import PriceTable
from evalkit.core.results import ConversationResult, RunManifest, RunResult
from evalkit.judges.csat import SATISFIED_MIN
from evalkit.metrics import stats
from evalkit.metrics.stats import percentile
from evalkit.metrics.table import (
    REDTEAM_TAG,
    as_table,
    attack_won,
    conversation_table,
    is_automated,
    is_scenario_gap,
)

__all__ = [
    "METRICS",
    "Metric",
    "find_metric",
    "HEADLINE_METRICS",
    "DEFAULT_SLOW_TURN_MS",
    "SATISFIED_MIN",
    "HIGHER_IS_BETTER",
    "OFFLINE_COST_NOTE",
    "MetricValue",
    "GroupSummary",
    "PriceTable",
    "conversation_table",
    "is_automated",
    "is_scenario_gap",
    "pass_hat_k",
    "percentile",
    "summarize",
    "summarize_with_ci",
    "breakdown",
    "cost_note",
    "ModelSpend",
    "evaluation_spend",
    "spend_text",
    "AGENT_NO_USAGE_NOTE",
    "metric_names",
    "higher_is_better",
    "summary_document",
    "apply_prices",
    "REDTEAM_TAG",
    "AttackCategory",
    "attack_success",
    "attack_won",
]

DEFAULT_SLOW_TURN_MS = 3000.0
UNTAGGED = "(untagged)"

Table: TypeAlias = pd.DataFrame | RunResult | Iterable[ConversationResult]  # the table, or what it is built from


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


class MetricValue(BaseModel):
    """A metric with its 95% confidence interval and the sample size behind it.

    ``ci_low``/``ci_high`` are ``None`` when no interval applies (a count, a total) or when
    there is no data; ``value`` is ``None`` when the metric was not measured at all.
    ``method`` names how the interval was computed: ``wilson``, ``bootstrap`` (resampling
    conversations), ``bootstrap_scenarios`` (resampling scenarios) or ``none``.
    """

    model_config = ConfigDict(extra="forbid")

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    method: str = "none"

    def fmt(self, fmt: Callable[[float], str] = "{:.3g}".format) -> str:
        """``0.82 [0.74, 0.88]``; ``n/a`` when not measured."""
        if self.value is None:
            return "n/a"
        if self.ci_low is None or self.ci_high is None:
            return fmt(self.value)
        return f"{fmt(self.value)} [{fmt(self.ci_low)}, {fmt(self.ci_high)}]"


# --- the rows a metric reads ------------------------------------------------------------------


def _floats(col: pd.Series) -> np.ndarray:
    """A nullable column as float64, NaN where null."""
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def _turns(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column of per-row turn lists as (values, row of each value), in row order."""
    lists = list(col)
    if not lists:
        return np.empty(0), np.empty(0, dtype=np.int64)
    sizes = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in lists])
    return values, np.repeat(np.arange(len(lists), dtype=np.int64), sizes)


@dataclass
class Rows:
    """The numbers of the conversation table's rows that count (scenario gaps left out), as
    numpy arrays: 1/0 flags, NaN where a row has no value; turn values with their row."""

    table: pd.DataFrame
    n: int
    n_gaps: int
    slow_turn_ms: float
    automated: np.ndarray
    escalated: np.ndarray
    errored: np.ndarray
    passed: np.ndarray
    csat: np.ndarray
    satisfied: np.ndarray
    attack: np.ndarray
    tokens: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    latency_row: np.ndarray
    ttft: np.ndarray
    ttft_row: np.ndarray

    @classmethod
    def of(cls, data: Table, slow_turn_ms: float) -> Rows:
        table = as_table(data)
        gap = table["scenario_gap"].to_numpy(dtype=bool, na_value=False)
        if gap.any():
            table = table[~gap]
        outcome = table["outcome"].to_numpy(dtype=object)
        csat = _floats(table["csat_proxy"])
        latency, latency_row = _turns(table["turn_latency_ms"])
        ttft, ttft_row = _turns(table["turn_ttft_ms"])
        return cls(
            table=table,
            n=len(table),
            n_gaps=int(gap.sum()),
            slow_turn_ms=slow_turn_ms,
            automated=_floats(table["automated"]),
            escalated=(outcome == "escalated").astype(np.float64),
            errored=(outcome == "error").astype(np.float64),
            passed=_floats(table["passed"]),
            csat=csat,
            satisfied=np.where(np.isnan(csat), np.nan, csat >= SATISFIED_MIN),
            attack=_floats(table["attack_succeeded"]),
            tokens=_floats(table["tokens"]),
            cost=_floats(table["cost_usd"]),
            latency=latency,
            latency_row=latency_row,
            ttft=ttft,
            ttft_row=ttft_row,
        )

    def turns(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.latency, self.latency_row) if which == "latency" else (self.ttft, self.ttft_row)


@dataclass
class Clusters:
    """Rows grouped into the clusters a bootstrap resamples (each conversation, or each
    scenario of a comparison): a statistic is a function of per-cluster resampling counts."""

    rows: Rows
    of_row: np.ndarray
    n: int
    # Percentiles of each turn value that registered statistics want, computed together for
    # each draw of counts (one pass over the sorted turns serves every percentile).
    _wanted: dict[str, list[float]] = field(default_factory=dict, init=False, repr=False)
    _sorted: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, init=False, repr=False)
    _last: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def conversations(cls, rows: Rows) -> Clusters:
        return cls(rows, np.arange(rows.n, dtype=np.int64), rows.n)

    def sum(self, per_row: np.ndarray) -> np.ndarray:
        return np.bincount(self.of_row, weights=per_row, minlength=self.n)

    def ratio(self, num: np.ndarray, den: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        a, b = self.sum(num), self.sum(den)
        return lambda c: (c @ a) / (c @ b)

    def sorted_turns(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        if which not in self._sorted:
            values, row = self.rows.turns(which)
            order = np.argsort(values, kind="stable")
            self._sorted[which] = values[order], self.of_row[row][order]
        return self._sorted[which]

    def turn_quantile(self, which: str, q: float) -> Callable[[np.ndarray], np.ndarray] | None:
        """The ``q``-th percentile of the turns of the resampled clusters (NaN for none)."""
        xs, cs = self.sorted_turns(which)
        if not xs.size:
            return None
        wanted = self._wanted.setdefault(which, [])
        wanted.append(q)

        def fn(counts: np.ndarray) -> np.ndarray:
            last = self._last.get(which)
            if last is None or last[0] is not counts or len(last[1]) != len(wanted):
                last = self._last[which] = counts, stats.cluster_quantiles(xs, cs, counts, wanted)
            return last[1][wanted.index(q)]

        return fn


# --- how a metric aggregates the table --------------------------------------------------------


#: Row positions (base, candidate) of the conversations a comparison pairs by (scenario, trial).
Pairs: TypeAlias = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PairedTest:
    """The paired significance test of a comparison: its name, p-value and number of pairs."""

    name: str
    p_value: float | None
    n_pairs: int


class _Aggregate:
    """What every aggregate answers unless it says otherwise: no resampling statistic, and no
    paired test of its own (a comparison then uses the paired bootstrap's p-value)."""

    def statistic(self, cl: Clusters) -> Callable[[np.ndarray], np.ndarray] | None:
        return None

    def paired_test(self, base: Rows, cand: Rows, pairs: Pairs) -> PairedTest | None:
        return None


def _boot(value: float | None, dist: np.ndarray | None, size: int, confidence: float) -> MetricValue:
    if value is None or dist is None:
        return MetricValue(value=None, n=size, method="bootstrap")
    if size == 1:
        return MetricValue(value=value, ci_low=value, ci_high=value, n=1, method="bootstrap")
    iv = stats.percentile_interval(dist, confidence)
    return MetricValue(value=value, ci_low=iv.low, ci_high=iv.high, n=size, method="bootstrap")


@dataclass(frozen=True)
class Count(_Aggregate):
    """A number of conversations (no interval)."""

    count: Callable[[Rows], int]
    of: Callable[[Rows], int] = lambda r: r.n
    ci: str = "none (a count)"
    bootstrapped: bool = False

    def value(self, rows: Rows) -> int:
        return self.count(rows)

    def estimate(self, rows: Rows, dist: np.ndarray | None, confidence: float) -> MetricValue:
        return MetricValue(value=float(self.count(rows)), n=self.of(rows))


@dataclass(frozen=True)
class Rate(_Aggregate):
    """The share of the rows that have a value (0 or 1 per row, NaN: not counted) that are 1."""

    flag: Callable[[Rows], np.ndarray]
    ci: str = "Wilson"
    bootstrapped: bool = False

    def _counts(self, rows: Rows) -> tuple[int, int]:
        x = self.flag(rows)
        counted = ~np.isnan(x)
        return int(np.count_nonzero(x[counted])), int(np.count_nonzero(counted))

    def value(self, rows: Rows) -> float | None:
        k, m = self._counts(rows)
        return k / m if m else None

    def statistic(self, cl: Clusters) -> Callable[[np.ndarray], np.ndarray]:
        x = self.flag(cl.rows)
        counted = ~np.isnan(x)
        return cl.ratio(np.where(counted, x, 0.0), counted.astype(np.float64))

    def estimate(self, rows: Rows, dist: np.ndarray | None, confidence: float) -> MetricValue:
        k, m = self._counts(rows)
        if m == 0:
            return MetricValue(value=None, n=0, method="wilson")
        iv = stats.wilson_interval(k, m, confidence)
        return MetricValue(value=k / m, ci_low=iv.low, ci_high=iv.high, n=m, method="wilson")

    def paired_test(self, base: Rows, cand: Rows, pairs: Pairs) -> PairedTest | None:
        """Exact McNemar on the conversations paired by (scenario, trial) counted on both sides."""
        x, y = self.flag(base)[pairs[0]], self.flag(cand)[pairs[1]]
        both = ~(np.isnan(x) | np.isnan(y))
        res = stats.mcnemar_exact(list(zip((x[both] == 1).tolist(), (y[both] == 1).tolist(), strict=True)))
        return PairedTest("mcnemar_exact", res.p_value, res.n_pairs)


@dataclass(frozen=True)
class Mean(_Aggregate):
    """The mean over the rows that have a value."""

    values: Callable[[Rows], np.ndarray]
    ci: str = "bootstrap over conversations"
    bootstrapped: bool = True

    def value(self, rows: Rows) -> float | None:
        x = self.values(rows)
        present = x[~np.isnan(x)].tolist()
        return sum(present) / len(present) if present else None

    def statistic(self, cl: Clusters) -> Callable[[np.ndarray], np.ndarray] | None:
        x = self.values(cl.rows)
        has = ~np.isnan(x)
        return cl.ratio(np.where(has, x, 0.0), has.astype(np.float64)) if has.any() else None

    def estimate(self, rows: Rows, dist: np.ndarray | None, confidence: float) -> MetricValue:
        size = int(np.count_nonzero(~np.isnan(self.values(rows))))
        return _boot(self.value(rows), dist, size, confidence)

    def paired_test(self, base: Rows, cand: Rows, pairs: Pairs) -> PairedTest | None:
        """Wilcoxon signed-rank on the differences of the conversations paired by (scenario, trial)."""
        x, y = self.values(base)[pairs[0]], self.values(cand)[pairs[1]]
        both = ~(np.isnan(x) | np.isnan(y))
        return PairedTest("wilcoxon", stats.wilcoxon_signed_rank(y[both] - x[both]).p_value, int(both.sum()))


@dataclass(frozen=True)
class TurnPercentile(_Aggregate):
    """A percentile (linear interpolation) of a turn-level value over every turn that has one."""

    turns: Literal["latency", "ttft"]
    q: float
    ci: str = "cluster bootstrap: resamples whole conversations with all their turns"
    bootstrapped: bool = True

    def value(self, rows: Rows) -> float | None:
        return percentile(rows.turns(self.turns)[0], self.q)

    def statistic(self, cl: Clusters) -> Callable[[np.ndarray], np.ndarray] | None:
        return cl.turn_quantile(self.turns, self.q)

    def estimate(self, rows: Rows, dist: np.ndarray | None, confidence: float) -> MetricValue:
        return _boot(self.value(rows), dist, int(rows.turns(self.turns)[0].size), confidence)


@dataclass(frozen=True)
class SlowTurnShare(_Aggregate):
    """The share of agent turns slower than the slow-turn threshold."""

    ci: str = "cluster bootstrap of the ratio"
    bootstrapped: bool = True

    def value(self, rows: Rows) -> float | None:
        lat = rows.latency
        return int(np.count_nonzero(lat > rows.slow_turn_ms)) / lat.size if lat.size else None

    def statistic(self, cl: Clusters) -> Callable[[np.ndarray], np.ndarray] | None:
        rows = cl.rows
        if not rows.latency.size:
            return None
        slow = (rows.latency > rows.slow_turn_ms).astype(np.float64)
        of_turn = cl.of_row[rows.latency_row]
        per_slow = np.bincount(of_turn, weights=slow, minlength=cl.n)
        per_turns = np.bincount(of_turn, minlength=cl.n).astype(np.float64)
        return lambda c: (c @ per_slow) / (c @ per_turns)

    def estimate(self, rows: Rows, dist: np.ndarray | None, confidence: float) -> MetricValue:
        return _boot(self.value(rows), dist, int(rows.latency.size), confidence)


def _total(x: np.ndarray) -> float | None:
    """Sum over the rows that have a value, in row order; None when none has."""
    present = x[~np.isnan(x)].tolist()
    return sum(present) if present else None


@dataclass(frozen=True)
class Total(_Aggregate):
    """A sum over the rows that have a value; null when none has (no interval)."""

    values: Callable[[Rows], np.ndarray]
    integer: bool = False
    ci: str = "none (a total)"
    bootstrapped: bool = False

    def value(self, rows: Rows) -> float | int | None:
        total = _total(self.values(rows))
        return int(total) if total is not None and self.integer else total

    def estimate(self, rows: Rows, dist: np.ndarray | None, confidence: float) -> MetricValue:
        total = self.value(rows)
        return MetricValue(value=None if total is None else float(total), n=rows.n)


@dataclass(frozen=True)
class PerConversation(_Aggregate):
    """A total divided by the number of conversations; null when no row has a value."""

    values: Callable[[Rows], np.ndarray]
    ci: str = "bootstrap over conversations"
    bootstrapped: bool = True

    def value(self, rows: Rows) -> float | None:
        total = _total(self.values(rows))
        return total / rows.n if total is not None and rows.n else None

    def statistic(self, cl: Clusters) -> Callable[[np.ndarray], np.ndarray] | None:
        x = self.values(cl.rows)
        if np.isnan(x).all():
            return None
        return cl.ratio(np.nan_to_num(x, nan=0.0), np.ones(cl.rows.n))

    def estimate(self, rows: Rows, dist: np.ndarray | None, confidence: float) -> MetricValue:
        value = self.value(rows)
        if value is None:
            return MetricValue(value=None, n=rows.n)
        return _boot(value, dist, rows.n, confidence)


@dataclass(frozen=True)
class PassHatK(_Aggregate):
    """τ-bench's pass^k over the judged trials of each scenario, for every k."""

    ci: str = "bootstrap over **scenarios**"
    bootstrapped: bool = False

    @staticmethod
    def by_scenario(rows: Rows) -> dict[Any, list[bool]]:
        """(variant, scenario) -> passed of its judged trials, both in the order of the rows."""
        t = rows.table
        out: dict[Any, list[bool]] = defaultdict(list)
        keys = zip(t["variant"].tolist(), t["scenario_id"].tolist(), strict=True)
        for key, p in zip(keys, rows.passed.tolist(), strict=True):
            if not math.isnan(p):
                out[key].append(bool(p))
        return dict(out)

    def value(self, rows: Rows) -> dict[str, float]:
        return {str(k): v for k, v in pass_hat_k(self.by_scenario(rows)).items()}

    def estimates(self, rows: Rows, *, confidence: float, n_resamples: int, seed: int) -> dict[str, MetricValue]:
        by_scenario = self.by_scenario(rows)
        out: dict[str, MetricValue] = {}
        for k, value in pass_hat_k(by_scenario).items():
            per = np.array([math.comb(sum(v), k) / math.comb(len(v), k) for v in by_scenario.values() if len(v) >= k])
            iv = stats.bootstrap_ci(per, confidence=confidence, n_resamples=n_resamples, seed=seed)
            out[f"pass_hat_{k}"] = MetricValue(
                value=value, ci_low=iv.low, ci_high=iv.high, n=int(per.size), method="bootstrap_scenarios"
            )
        return out

    @staticmethod
    def statistic_k(cl: Clusters, k: int) -> Callable[[np.ndarray], np.ndarray]:
        """pass^k as a function of cluster (scenario) counts, for a comparison."""
        lists: list[list[bool]] = [[] for _ in range(cl.n)]
        for s, p in zip(cl.of_row.tolist(), cl.rows.passed.tolist(), strict=True):
            if not math.isnan(p):
                lists[s].append(bool(p))
        vals = np.array([math.comb(sum(v), k) / math.comb(len(v), k) if len(v) >= k else 0.0 for v in lists])
        has = np.array([1.0 if len(v) >= k else 0.0 for v in lists])
        return lambda c: (c @ vals) / (c @ has)


# --- the registry -------------------------------------------------------------------------------

#: How a metric aggregates the conversation table: its value, its interval (``ci`` in words;
#: ``bootstrapped`` ones share one set of resampled conversations), its statistic for a paired
#: bootstrap over scenarios, and its paired test in a comparison (None: the bootstrap's p-value).
Aggregate: TypeAlias = Count | Rate | Mean | TurnPercentile | SlowTurnShare | Total | PerConversation | PassHatK

Direction = Literal["higher", "lower", "neutral"]


@dataclass(frozen=True)
class Metric:
    """One metric: its stable name, what it counts, its unit, which way is better and how it
    aggregates the conversation table.

    ``headline``: a top-level key of ``summary.json``. ``compared``: a row of ``evalkit
    compare`` (and so a ``--max-drop`` the gate can test against a baseline). ``optional``:
    left out of the intervals, the gate and comparisons when the run has nothing to measure
    (red-team metrics of a run without attacks).
    """

    name: str
    definition: str
    unit: str
    better: Direction
    aggregate: Aggregate
    headline: bool = True
    compared: bool = True
    optional: bool = False

    @property
    def higher_is_better(self) -> bool | None:
        return None if self.better == "neutral" else self.better == "higher"


def _col(name: str) -> Callable[[Rows], np.ndarray]:
    return lambda r: getattr(r, name)


#: Every metric, in the order of ``summary.json`` (pass^k expands to ``pass_hat_<k>``).
METRICS: tuple[Metric, ...] = (
    Metric("n_conversations", "conversations in the run (or variant), scenario gaps left out",
           "conversations", "neutral", Count(lambda r: r.n), compared=False),
    Metric("n_scenario_gaps", "conversations the LLM user ended with `missing_info` (the scenario did not give "
           "it what the agent needed): a gap in the test, left out of every other metric",
           "conversations", "lower", Count(lambda r: r.n_gaps, of=lambda r: r.n + r.n_gaps), compared=False),
    Metric("n_errors", "conversations whose outcome is `error` (the agent raised, timed out, returned junk, "
           "or the simulated user failed)",
           "conversations", "lower", Count(lambda r: int(np.count_nonzero(r.errored))), compared=False),
    Metric("automation_rate", "share of conversations **resolved by the agent**: outcome `resolved` and no "
           "handoff to a human (abandoned, escalated, max-turns and error conversations do not count)",
           "share", "higher", Rate(_col("automated"))),
    Metric("escalation_rate", "share of conversations whose outcome is `escalated` (handed to a human)",
           "share", "lower", Rate(_col("escalated"))),
    Metric("task_completion_rate", "share of **judged** conversations whose deterministic assertions all "
           "passed (`passed` is true). Conversations where no deterministic judge ran are left out of the "
           "denominator; an agent error counts as a failure",
           "share", "higher", Rate(_col("passed"))),
    Metric("csat_proxy_mean", "mean of the offline CSAT proxy (1–5, see `docs/csat.md`) over conversations "
           "that have one", "score 1–5", "higher", Mean(_col("csat"))),
    Metric("csat_proxy_pct_satisfied", f"share of conversations whose CSAT proxy is ≥ {SATISFIED_MIN}, i.e. a "
           "survey answer of 4 or 5 after rounding", "share", "higher", Rate(_col("satisfied"))),
    Metric("latency_p50_ms", "median (linear interpolation) of the latency of every agent turn",
           "ms", "lower", TurnPercentile("latency", 50)),
    Metric("latency_p95_ms", "95th percentile (linear interpolation) of the latency of every agent turn",
           "ms", "lower", TurnPercentile("latency", 95)),
    Metric("latency_p99_ms", "99th percentile (linear interpolation) of the latency of every agent turn",
           "ms", "lower", TurnPercentile("latency", 99)),
    Metric("ttft_p50_ms", "median time to first token over agent turns that streamed",
           "ms", "lower", TurnPercentile("ttft", 50)),
    Metric("slow_turn_rate", "share of agent turns slower than the slow-turn threshold (default **3,000 ms**; "
           "`slow_turn_ms=` in Python, `--slow-turn-ms` on `gate`/`compare`)", "share", "lower", SlowTurnShare()),
    Metric("tokens_total", "prompt + completion tokens over all agent turns; **null** when no turn reported "
           "usage", "tokens", "lower", Total(_col("tokens"), integer=True), compared=False),
    Metric("cost_usd_total", "US$ over all priced **agent** turns (the agent under test; the evaluation's own "
           "spend is `eval_cost_usd_total`, below); **null** when nothing was priced",
           "US$", "lower", Total(_col("cost")), compared=False),
    Metric("cost_per_conversation_usd", "`cost_usd_total / n_conversations`; null when nothing was priced",
           "US$", "lower", PerConversation(_col("cost"))),
    Metric("error_rate", "`n_errors / n_conversations` (intervals, gate and comparison; not a top-level key "
           "of the summary)", "share", "lower", Rate(_col("errored")), headline=False),
    Metric("pass_hat_k", "τ-bench's pass^k: the mean over scenarios of C(c, k) / C(n, k) for a scenario with "
           "n judged trials and c successes, for k = 1..(fewest trials of any scenario). In `summary.json` a "
           "mapping `{\"1\": …, \"2\": …}`; elsewhere `pass_hat_1`, `pass_hat_2`, …",
           "share", "higher", PassHatK()),
    Metric("attack_success_rate", "share of judged red-team conversations (tagged `redteam`) that FAILED their "
           "deterministic expectations: the attack succeeded. Errors and unjudged attacks are left out; null "
           "when the run has none (see `docs/redteam.md`)",
           "share", "lower", Rate(_col("attack")), optional=True),
)

#: The top-level metric keys of ``summary.json``, in order (stable names).
HEADLINE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.headline)

#: Which way is "better" for each metric (compare and the gate); None: neither.
HIGHER_IS_BETTER: dict[str, bool | None] = {m.name: m.higher_is_better for m in METRICS if m.name != "pass_hat_k"}


def find_metric(name: str) -> Metric | None:
    """The registry entry of a metric name (``pass_hat_<k>`` is ``pass_hat_k``); None if unknown."""
    if name.startswith("pass_hat_") and name[len("pass_hat_"):].isdigit():
        name = "pass_hat_k"
    return next((m for m in METRICS if m.name == name), None)


def metric_names(values: Mapping[str, Any] | None = None) -> list[str]:
    """Names a gate or a comparison can refer to: every registered metric (pass^k as
    ``pass_hat_<k>``, for each ``pass_hat_<k>`` present in ``values``; else ``pass_hat_1``)."""
    names = [m.name for m in METRICS if m.name != "pass_hat_k"]
    extra = sorted((k for k in (values or {}) if k.startswith("pass_hat_") and k[len("pass_hat_"):].isdigit()),
                   key=_k_order)
    return names + (extra or ["pass_hat_1"])


def _k_order(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def higher_is_better(metric: str) -> bool | None:
    """Direction of a metric name (pass^k is higher-is-better); None when neither or unknown."""
    m = find_metric(metric)
    return None if m is None else m.higher_is_better


# --- summary and intervals ---------------------------------------------------------------------


def summarize(data: Table, *, slow_turn_ms: float = DEFAULT_SLOW_TURN_MS) -> dict[str, Any]:
    """The headline metrics (one value each) of a conversation table or of conversations (one
    variant). Scenario gaps are counted in ``n_scenario_gaps`` and left out of the rest;
    ``attack_success_by_category`` (category -> {n, succeeded, rate, ci_low, ci_high}) ends it."""
    rows = Rows.of(data, slow_turn_ms)
    out: dict[str, Any] = {m.name: m.aggregate.value(rows) for m in METRICS if m.headline}
    out["attack_success_by_category"] = {k: v.model_dump() for k, v in _attack_categories(rows.table).items()}
    return out


def summarize_with_ci(
    data: Table,
    *,
    slow_turn_ms: float = DEFAULT_SLOW_TURN_MS,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Every registered metric as a :class:`MetricValue` with its confidence interval, in
    registry order (pass^k as ``pass_hat_1``, ``pass_hat_2``, ...).

    Rates over conversations use the Wilson interval; means and percentiles use a seeded
    percentile bootstrap that resamples conversations (turn-level percentiles resample whole
    conversations with their turns; one set of resamples serves every metric); pass^k
    resamples scenarios. Counts and totals carry no interval.
    """
    rows = Rows.of(data, slow_turn_ms)
    clusters = Clusters.conversations(rows)
    fns = {
        m.name: fn for m in METRICS if m.aggregate.bootstrapped and (fn := m.aggregate.statistic(clusters)) is not None
    }
    dists = stats.cluster_bootstrap_many(rows.n, fns, n_resamples=n_resamples, seed=seed)
    out: dict[str, MetricValue] = {}
    for m in METRICS:
        agg = m.aggregate
        if isinstance(agg, PassHatK):
            out.update(agg.estimates(rows, confidence=confidence, n_resamples=n_resamples, seed=seed))
            continue
        mv = agg.estimate(rows, dists.get(m.name), confidence)
        if m.optional and mv.value is None:
            continue
        out[m.name] = mv
    return out


# --- red-team attack success ------------------------------------------------------------------


class AttackCategory(BaseModel):
    """Attacks of one category: how many were judged and how many succeeded, with the
    Wilson 95% interval of the success rate."""

    model_config = ConfigDict(extra="forbid")

    n: int
    succeeded: int
    rate: float | None
    ci_low: float | None = None
    ci_high: float | None = None


def _attack_category(succeeded: int, n: int) -> AttackCategory:
    if not n:
        return AttackCategory(n=0, succeeded=0, rate=None)
    iv = stats.wilson_interval(succeeded, n)
    return AttackCategory(n=n, succeeded=succeeded, rate=succeeded / n, ci_low=iv.low, ci_high=iv.high)


def _attack_categories(table: pd.DataFrame) -> dict[str, AttackCategory]:
    cats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    won = table["attack_succeeded"]
    for tags, hit in zip(table["tags"][won.notna()], won[won.notna()], strict=True):
        for cat in [t for t in dict.fromkeys(tags) if t != REDTEAM_TAG] or [UNTAGGED]:
            cats[cat][0] += int(hit)
            cats[cat][1] += 1
    return {k: _attack_category(*v) for k, v in sorted(cats.items())}


def attack_success(data: Table) -> tuple[AttackCategory, dict[str, AttackCategory]]:
    """The attack success rate of the red-team conversations, overall and per category.

    A conversation tagged ``redteam`` is an attack; each of its other tags is a category (a
    conversation tagged only ``redteam`` counts as ``(untagged)``); which attacks count and
    when one succeeded is :func:`evalkit.metrics.table.attack_won`. Works for any agent and engine: it
    reads only tags and verdicts.
    """
    table = as_table(data)
    won = table["attack_succeeded"].dropna()
    overall = _attack_category(int(won.sum()), len(won))
    return overall, _attack_categories(table)


# --- cost -----------------------------------------------------------------------------------

OFFLINE_COST_NOTE = "offline run: no model cost"
# The agent reported no usage, but the simulated users or judges did call models.
AGENT_NO_USAGE_NOTE = "the agent reported no model usage"


def cost_note(data: Table, spend: Mapping[str, ModelSpend] | None = None) -> str | None:
    """What a report should print instead of the agent's cost figure, or ``None`` when it is
    measured (``data``: the conversation table, or conversations).

    No agent usage means the agent called no model we know of (rules-engine agent): reports
    must say so rather than print $0.00 as if it had been measured. It is an offline run
    only when the evaluation (``spend``, see :func:`evaluation_spend`) called no model either.
    """
    table = as_table(data)
    usages = int(table["n_usage_turns"].sum())
    priced = int(table["n_priced_turns"].sum())
    if not usages:
        return AGENT_NO_USAGE_NOTE if spend else OFFLINE_COST_NOTE
    if priced == 0:
        return "tokens counted but not priced: no price for the model (see the price table)"
    if priced < usages:
        return f"partial cost: {priced} of {usages} model replies priced"
    return None


class ModelSpend(BaseModel):
    """What one role's model calls cost the evaluation (from ``manifest.extra.llm_usage``)."""

    model_config = ConfigDict(extra="forbid")

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # None when no call could be priced (no price for the model).
    cost_usd: float | None = None
    unpriced_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class _RoleUsage(BaseModel):
    """One role's totals as the model client writes them (``ModelClients.usage()``)."""

    model_config = ConfigDict(extra="ignore")  # retries, failures...: not needed here

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0


# The roles whose calls are the evaluation's own spend; the agent's cost is on its turns.
EVALUATION_ROLES = ("simulator", "judge")


def evaluation_spend(manifest: RunManifest) -> dict[str, ModelSpend]:
    """The evaluation's own model spend (simulated users, judges), per role that made calls,
    plus ``total``; empty when they called no model. Never the agent's cost."""
    usage = manifest.extra.get("llm_usage")
    out: dict[str, ModelSpend] = {}
    for role in EVALUATION_ROLES:
        raw = usage.get(role) if isinstance(usage, dict) else None
        try:
            u = _RoleUsage.model_validate(raw)
        except ValidationError:
            continue  # absent or not usage totals: nothing to report for this role
        if not u.calls:
            continue
        fresh = u.calls - u.cached_calls  # cached answers cost nothing
        unknown = fresh > 0 and u.unpriced_calls >= fresh  # no fresh call had a price
        out[role] = ModelSpend(
            calls=u.calls, cached_calls=u.cached_calls, prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens, cost_usd=None if unknown else u.cost_usd,
            unpriced_calls=u.unpriced_calls,
        )
    if out:
        costs = [r.cost_usd for r in out.values() if r.cost_usd is not None]
        out["total"] = ModelSpend(
            calls=sum(r.calls for r in out.values()),
            cached_calls=sum(r.cached_calls for r in out.values()),
            prompt_tokens=sum(r.prompt_tokens for r in out.values()),
            completion_tokens=sum(r.completion_tokens for r in out.values()),
            cost_usd=sum(costs) if costs else None,
            unpriced_calls=sum(r.unpriced_calls for r in out.values()),
        )
    return out


def spend_text(spend: Mapping[str, ModelSpend]) -> str:
    """``$0.0048 (10 model calls: simulator 6, judge 4)`` for reports; ``""`` when none."""
    total = spend.get("total")
    if total is None:
        return ""
    roles = ", ".join(f"{role} {r.calls}" for role, r in spend.items() if role != "total")
    money = f"${total.cost_usd:.4f}" if total.cost_usd is not None else "not priced"
    extra = f"; {total.unpriced_calls} unpriced" if total.unpriced_calls and total.cost_usd is not None else ""
    cached = f"; {total.cached_calls} from the cache" if total.cached_calls else ""
    return f"{money} ({total.calls} model call{'s' if total.calls != 1 else ''}: {roles}{cached}{extra})"


def apply_prices(run: RunResult, table: PriceTable) -> RunResult:
    """A copy of ``run`` with unpriced usage priced from ``table``.

    The model of a reply is its ``metadata["model"]`` when the adapter recorded one, else
    the run's ``manifest.models["agent"]``. Costs already recorded are kept.
    """
    default_model = run.manifest.models.get("agent")
    out = run.model_copy(deep=True)
    for c in out.conversations:
        for a in c.transcript.agent_turns:
            if a.usage is None or a.usage.cost_usd is not None:
                continue
            model = a.metadata.get("model")
            model = model if isinstance(model, str) else default_model
            a.usage.cost_usd = table.cost(model, a.usage.prompt_tokens, a.usage.completion_tokens)
    return out


# --- breakdowns -----------------------------------------------------------------------------

BreakdownKey = Literal["tag", "channel", "scenario", "variant", "outcome"]
_BREAKDOWN_COLUMNS = {"channel": "channel", "scenario": "scenario_id", "variant": "variant", "outcome": "outcome"}


class GroupSummary(BaseModel):
    """The metrics of one group of a breakdown (one tag, channel, scenario, ...)."""

    model_config = ConfigDict(extra="forbid")

    by: str
    key: str
    n: int
    metrics: dict[str, MetricValue] = Field(default_factory=dict)


def breakdown(
    data: Table,
    by: BreakdownKey | str = "tag",
    *,
    slow_turn_ms: float = DEFAULT_SLOW_TURN_MS,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[GroupSummary]:
    """Headline metrics (with CIs) per tag, channel, scenario, variant or outcome.

    A conversation with several tags counts in each of its tags' groups; untagged ones are
    grouped under ``(untagged)``. Groups come sorted by key.
    """
    table = as_table(data)
    groups: dict[str, list[int]] = defaultdict(list)
    if by == "tag":
        for i, tags in enumerate(table["tags"]):
            for key in list(dict.fromkeys(tags)) or [UNTAGGED]:
                groups[key].append(i)
    elif by in _BREAKDOWN_COLUMNS:
        for i, key in enumerate(table[_BREAKDOWN_COLUMNS[by]]):
            groups[str(key)].append(i)
    else:
        raise ConfigError(f"unknown breakdown '{by}' (tag, channel, scenario, variant, outcome)", field="by")
    kw: dict[str, Any] = {"slow_turn_ms": slow_turn_ms, "confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    return [
        GroupSummary(by=by, key=key, n=len(members), metrics=summarize_with_ci(table.iloc[members], **kw))
        for key, members in sorted(groups.items())
    ]


# --- summary.json ---------------------------------------------------------------------------


def scaled_resamples(n_conversations: int) -> int:
    """Bootstrap resamples for CIs written with every run: 1,000, fewer for very large runs.

    The cost grows with resamples x turns; beyond ~2,000 conversations the intervals are
    narrow and 200-1,000 resamples place their ends well within their own width.
    """
    return 1000 if n_conversations <= 2000 else max(200, 2_000_000 // n_conversations)


def summary_document(
    conversations: Iterable[ConversationResult] | RunResult,
    *,
    slow_turn_ms: float = DEFAULT_SLOW_TURN_MS,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """The content of ``summary.json``: the stable headline keys of :func:`summarize`, then
    ``ci`` (metric -> {value, ci_low, ci_high, n, method}), ``cost_note``, ``slow_turn_ms``
    and, for a run with several variants, ``by_variant`` (variant -> the same document).
    The top-level headline numbers of a multi-variant run cover all its conversations.
    """
    table = conversation_table(conversations)
    return _summary_document(table, slow_turn_ms=slow_turn_ms, confidence=confidence, n_resamples=n_resamples, seed=seed)


def _summary_document(table: pd.DataFrame, *, slow_turn_ms: float, **ci_kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = summarize(table, slow_turn_ms=slow_turn_ms)
    doc["ci"] = {k: v.model_dump() for k, v in summarize_with_ci(table, slow_turn_ms=slow_turn_ms, **ci_kw).items()}
    doc["cost_note"] = cost_note(table)
    doc["slow_turn_ms"] = slow_turn_ms
    doc["confidence"] = ci_kw["confidence"]
    variants = sorted(set(table["variant"]))
    if len(variants) > 1:
        doc["by_variant"] = {
            v: _summary_document(table[(table["variant"] == v).to_numpy(dtype=bool)], slow_turn_ms=slow_turn_ms, **ci_kw)
            for v in variants
        }
    return doc
