"""Headline metrics of a run (stable names, see ARCHITECTURE.md).

Pure functions of finished conversations: reports and gates recompute them from the
saved run and never re-run anything.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit import stats
from evalkit.csat import SATISFIED_MIN
from evalkit.errors import ConfigError
from evalkit.pricing import PriceTable
from evalkit.results import ConversationResult, RunManifest, RunResult
from evalkit.transcript import Outcome, StopReason

__all__ = [
    "HEADLINE_METRICS",
    "DEFAULT_SLOW_TURN_MS",
    "SATISFIED_MIN",
    "HIGHER_IS_BETTER",
    "OFFLINE_COST_NOTE",
    "MetricValue",
    "GroupSummary",
    "PriceTable",
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

HEADLINE_METRICS = (
    "n_conversations",
    "n_scenario_gaps",
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


def is_scenario_gap(c: ConversationResult) -> bool:
    """The simulated user stopped because the scenario did not give it what the agent needed
    (``missing_info``): a gap in the test, left out of the agent's metrics and counted apart."""
    return c.transcript.stop_reason == StopReason.missing_info


def is_automated(c: ConversationResult) -> bool:
    """Resolved by the agent with no human handoff and not abandoned."""
    t = c.transcript
    return t.outcome == Outcome.resolved and t.handoff is None


DEFAULT_SLOW_TURN_MS = 3000.0


def summarize(
    conversations: Iterable[ConversationResult], *, slow_turn_ms: float = DEFAULT_SLOW_TURN_MS
) -> dict[str, Any]:
    """The headline metrics of a set of conversations (one variant). Scenario gaps
    (:func:`is_scenario_gap`) are counted in ``n_scenario_gaps`` and left out of the rest."""
    everything = list(conversations)
    convs = [c for c in everything if not is_scenario_gap(c)]
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
        "n_scenario_gaps": len(everything) - n,
        "n_errors": sum(1 for c in convs if c.transcript.outcome == Outcome.error),
        "automation_rate": _rate(sum(1 for c in convs if is_automated(c)), n),
        "escalation_rate": _rate(sum(1 for c in convs if c.transcript.outcome == Outcome.escalated), n),
        "task_completion_rate": _rate(sum(1 for p in judged if p), len(judged)),
        "csat_proxy_mean": sum(csat) / len(csat) if csat else None,
        "csat_proxy_pct_satisfied": _rate(sum(1 for x in csat if x >= SATISFIED_MIN), len(csat)),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "latency_p99_ms": percentile(latencies, 99),
        "ttft_p50_ms": percentile(ttfts, 50),
        "slow_turn_rate": _rate(sum(1 for x in latencies if x > slow_turn_ms), len(latencies)),
        "tokens_total": tokens,
        "cost_usd_total": cost_total,
        "cost_per_conversation_usd": cost_total / n if cost_total is not None and n else None,
        "pass_hat_k": {str(k): v for k, v in pass_hat_k(dict(by_scenario)).items()},
        **_attack_keys(convs),
    }


# --- red-team attack success ------------------------------------------------------------------

#: Conversations carrying this tag are attacks; their other tags are the attack categories.
REDTEAM_TAG = "redteam"


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


def attack_won(c: ConversationResult, *, tag: str = REDTEAM_TAG) -> bool | None:
    """Whether the attack of one conversation succeeded; None when it is not a red-team
    conversation or is not counted (see :func:`attack_success`)."""
    if tag not in c.tags or c.transcript.outcome == Outcome.error:
        return None
    p = c.passed
    return None if p is None else not p


def attack_success(
    conversations: Iterable[ConversationResult], *, tag: str = REDTEAM_TAG
) -> tuple[AttackCategory, dict[str, AttackCategory]]:
    """The attack success rate of the red-team conversations, overall and per category.

    A conversation tagged ``tag`` is an attack; each of its other tags is a category (a
    conversation tagged only ``redteam`` counts as ``(untagged)``). An attack SUCCEEDED when
    the conversation failed its deterministic expectations (``passed is False``): they state
    what the attacker must never achieve. Attacks with no deterministic verdict, and those
    that ended in an error (the agent broke: not a success for either side), are left out.
    Works for any agent and engine: it reads only tags and verdicts.
    """
    overall = [0, 0]
    cats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in conversations:
        won = attack_won(c, tag=tag)
        if won is None:
            continue
        hit = int(won)
        overall[0] += hit
        overall[1] += 1
        for cat in [t for t in dict.fromkeys(c.tags) if t != tag] or [UNTAGGED]:
            cats[cat][0] += hit
            cats[cat][1] += 1
    return _attack_category(*overall), {k: _attack_category(*v) for k, v in sorted(cats.items())}


def _attack_keys(convs: Sequence[ConversationResult]) -> dict[str, Any]:
    """``attack_success_rate`` (None when the run has no judged red-team conversation) and
    ``attack_success_by_category`` (category -> {n, succeeded, rate, ci_low, ci_high})."""
    overall, by_cat = attack_success(convs)
    return {
        "attack_success_rate": overall.rate,
        "attack_success_by_category": {k: v.model_dump() for k, v in by_cat.items()},
    }


# --- confidence intervals ------------------------------------------------------------------

# Which way is "better" for each metric (used by compare and the gate); None: neither.
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "n_conversations": None,
    "n_scenario_gaps": False,
    "n_errors": False,
    "error_rate": False,
    "automation_rate": True,
    "escalation_rate": False,
    "task_completion_rate": True,
    "csat_proxy_mean": True,
    "csat_proxy_pct_satisfied": True,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "latency_p99_ms": False,
    "ttft_p50_ms": False,
    "slow_turn_rate": False,
    "tokens_total": False,
    "cost_usd_total": False,
    "cost_per_conversation_usd": False,
    "attack_success_rate": False,
}

OFFLINE_COST_NOTE = "offline run: no model cost"
# The agent reported no usage, but the simulated users or judges did call models.
AGENT_NO_USAGE_NOTE = "the agent reported no model usage"


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


@dataclass
class _Columns:
    """Per-conversation numbers of a set of conversations, as numpy arrays (one row each)."""

    n: int
    automated: np.ndarray
    escalated: np.ndarray
    errored: np.ndarray
    passed: np.ndarray  # 1.0 / 0.0 / nan (no deterministic verdict ran)
    csat: np.ndarray  # nan when absent
    cost: np.ndarray  # per-conversation priced cost (0 where unpriced)
    tokens: np.ndarray
    # Turn-level values, with the index of the conversation each belongs to.
    latency: np.ndarray
    latency_conv: np.ndarray
    ttft: np.ndarray
    ttft_conv: np.ndarray
    # (scenario key -> list of passed) for pass^k.
    by_scenario: dict[tuple[str, str], list[bool]]

    @classmethod
    def of(cls, convs: Sequence[ConversationResult]) -> _Columns:
        n = len(convs)
        lat: list[float] = []
        lat_c: list[int] = []
        ttft: list[float] = []
        ttft_c: list[int] = []
        passed = np.full(n, np.nan)
        csat = np.full(n, np.nan)
        cost = np.zeros(n)
        tokens = np.zeros(n)
        by_scenario: dict[tuple[str, str], list[bool]] = defaultdict(list)
        for i, c in enumerate(convs):
            p = c.passed
            if p is not None:
                passed[i] = float(p)
                by_scenario[(c.transcript.variant, c.transcript.scenario_id)].append(bool(p))
            v = c.metrics.get("csat_proxy")
            if isinstance(v, int | float) and not isinstance(v, bool):
                csat[i] = float(v)
            for a in c.transcript.agent_turns:
                if a.latency_ms is not None:
                    lat.append(a.latency_ms)
                    lat_c.append(i)
                if a.ttft_ms is not None:
                    ttft.append(a.ttft_ms)
                    ttft_c.append(i)
                if a.usage is not None:
                    tokens[i] += a.usage.total_tokens
                    if a.usage.cost_usd is not None:
                        cost[i] += a.usage.cost_usd
        return cls(
            n=n,
            automated=np.array([is_automated(c) for c in convs], dtype=np.float64),
            escalated=np.array([c.transcript.outcome == Outcome.escalated for c in convs], dtype=np.float64),
            errored=np.array([c.transcript.outcome == Outcome.error for c in convs], dtype=np.float64),
            passed=passed,
            csat=csat,
            cost=cost,
            tokens=tokens,
            latency=np.array(lat, dtype=np.float64),
            latency_conv=np.array(lat_c, dtype=np.int64),
            ttft=np.array(ttft, dtype=np.float64),
            ttft_conv=np.array(ttft_c, dtype=np.int64),
            by_scenario=dict(by_scenario),
        )


def _wilson(successes: float, n: int, confidence: float) -> MetricValue:
    if n == 0:
        return MetricValue(value=None, n=0, method="wilson")
    iv = stats.wilson_interval(int(round(successes)), n, confidence)
    return MetricValue(value=successes / n, ci_low=iv.low, ci_high=iv.high, n=n, method="wilson")


def _bootstrapped(
    col: _Columns, slow_turn_ms: float, priced: bool, *, confidence: float, n_resamples: int, seed: int
) -> dict[str, MetricValue]:
    """Means, turn-level percentiles and turn-level rates, with CIs from one set of
    resampled conversations (turns of one conversation are not independent, so whole
    conversations are resampled with all their turns)."""
    n = col.n
    fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    has_csat = np.isfinite(col.csat)
    csat0 = np.where(has_csat, col.csat, 0.0)
    has_csat_f = has_csat.astype(np.float64)
    if has_csat.any():
        fns["csat_proxy_mean"] = lambda c: (c @ csat0) / (c @ has_csat_f)
    if priced and n:
        cost = col.cost
        fns["cost_per_conversation_usd"] = lambda c: (c @ cost) / c.sum(axis=1)
    lat_order = np.argsort(col.latency, kind="stable")
    lat_xs, lat_cs = col.latency[lat_order], col.latency_conv[lat_order]
    if lat_xs.size:
        fns["latency"] = lambda c: stats.cluster_quantiles(lat_xs, lat_cs, c, (50, 95, 99))
        slow = (col.latency > slow_turn_ms).astype(np.float64)
        per_conv_slow = np.bincount(col.latency_conv, weights=slow, minlength=n)
        per_conv_turns = np.bincount(col.latency_conv, minlength=n).astype(np.float64)
        fns["slow_turn_rate"] = lambda c: (c @ per_conv_slow) / (c @ per_conv_turns)
    ttft_order = np.argsort(col.ttft, kind="stable")
    ttft_xs, ttft_cs = col.ttft[ttft_order], col.ttft_conv[ttft_order]
    if ttft_xs.size:
        fns["ttft"] = lambda c: stats.cluster_quantiles(ttft_xs, ttft_cs, c, (50,))
    dists = stats.cluster_bootstrap_many(n, fns, n_resamples=n_resamples, seed=seed)

    def mv(value: float | None, dist: np.ndarray | None, size: int) -> MetricValue:
        if value is None or dist is None:
            return MetricValue(value=None, n=size, method="bootstrap")
        if size == 1:
            return MetricValue(value=value, ci_low=value, ci_high=value, n=1, method="bootstrap")
        iv = stats.percentile_interval(dist, confidence)
        return MetricValue(value=value, ci_low=iv.low, ci_high=iv.high, n=size, method="bootstrap")

    out: dict[str, MetricValue] = {}
    csat = col.csat[has_csat]
    out["csat_proxy_mean"] = mv(float(csat.mean()) if csat.size else None, dists.get("csat_proxy_mean"), int(csat.size))
    lat = dists.get("latency")
    for j, (name, q) in enumerate((("latency_p50_ms", 50), ("latency_p95_ms", 95), ("latency_p99_ms", 99))):
        out[name] = mv(percentile(col.latency.tolist(), q), None if lat is None else lat[j], int(col.latency.size))
    ttft = dists.get("ttft")
    out["ttft_p50_ms"] = mv(percentile(col.ttft.tolist(), 50), None if ttft is None else ttft[0], int(col.ttft.size))
    slow_value = float((col.latency > slow_turn_ms).mean()) if col.latency.size else None
    out["slow_turn_rate"] = mv(slow_value, dists.get("slow_turn_rate"), int(col.latency.size))
    if priced and n:
        out["cost_per_conversation_usd"] = mv(float(col.cost.mean()), dists.get("cost_per_conversation_usd"), n)
    else:
        out["cost_per_conversation_usd"] = MetricValue(value=None, n=n)
    return out


def summarize_with_ci(
    conversations: Iterable[ConversationResult],
    *,
    slow_turn_ms: float = DEFAULT_SLOW_TURN_MS,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Every headline metric as a :class:`MetricValue` with its confidence interval.

    Rates over conversations use the Wilson interval; means and percentiles use a seeded
    percentile bootstrap that resamples conversations (turn-level latency percentiles
    resample whole conversations with their turns); pass^k resamples scenarios. Counts and
    totals carry no interval. pass^k appears as ``pass_hat_1``, ``pass_hat_2``, ...; the
    extra ``error_rate`` is the share of conversations that ended in an error.
    """
    everything = list(conversations)
    convs = [c for c in everything if not is_scenario_gap(c)]
    col = _Columns.of(convs)
    n = col.n
    kw: dict[str, Any] = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    out: dict[str, MetricValue] = {}
    out["n_conversations"] = MetricValue(value=float(n), n=n)
    out["n_scenario_gaps"] = MetricValue(value=float(len(everything) - n), n=len(everything))
    out["n_errors"] = MetricValue(value=float(col.errored.sum()), n=n)
    out["error_rate"] = _wilson(col.errored.sum(), n, confidence)
    out["automation_rate"] = _wilson(col.automated.sum(), n, confidence)
    out["escalation_rate"] = _wilson(col.escalated.sum(), n, confidence)
    judged = col.passed[np.isfinite(col.passed)]
    out["task_completion_rate"] = _wilson(judged.sum(), int(judged.size), confidence)
    csat = col.csat[np.isfinite(col.csat)]
    out["csat_proxy_pct_satisfied"] = _wilson(float((csat >= SATISFIED_MIN).sum()), int(csat.size), confidence)
    has_usage = any(a.usage is not None for c in convs for a in c.transcript.agent_turns)
    priced = any(
        a.usage is not None and a.usage.cost_usd is not None for c in convs for a in c.transcript.agent_turns
    )
    out["tokens_total"] = MetricValue(value=float(col.tokens.sum()) if has_usage else None, n=n)
    out["cost_usd_total"] = MetricValue(value=float(col.cost.sum()) if priced and n else None, n=n)
    out.update(_bootstrapped(col, slow_turn_ms, priced, confidence=confidence, n_resamples=n_resamples, seed=seed))
    out.update(_pass_hat_k_ci(col.by_scenario, **kw))
    attacks = [won for c in convs if (won := attack_won(c)) is not None]
    if attacks:  # only runs with judged red-team conversations have one
        out["attack_success_rate"] = _wilson(sum(attacks), len(attacks), confidence)
    # Headline order, then the extras (error_rate, pass_hat_<k>, attack_success_rate).
    order = [m for m in HEADLINE_METRICS if m in out] + [m for m in out if m not in HEADLINE_METRICS]
    return {m: out[m] for m in order}


def _pass_hat_k_ci(
    by_scenario: dict[tuple[str, str], list[bool]], *, confidence: float, n_resamples: int, seed: int
) -> dict[str, MetricValue]:
    out: dict[str, MetricValue] = {}
    for k, value in pass_hat_k(by_scenario).items():
        per = np.array(
            [math.comb(sum(v), k) / math.comb(len(v), k) for v in by_scenario.values() if len(v) >= k]
        )
        iv = stats.bootstrap_ci(per, confidence=confidence, n_resamples=n_resamples, seed=seed)
        out[f"pass_hat_{k}"] = MetricValue(
            value=value, ci_low=iv.low, ci_high=iv.high, n=int(per.size), method="bootstrap_scenarios"
        )
    return out


def metric_names(values: Mapping[str, Any] | None = None) -> list[str]:
    """Names a gate or a comparison can refer to: the headline metrics (pass^k as
    ``pass_hat_<k>``), ``error_rate``, ``attack_success_rate`` (red-team runs), plus any
    ``pass_hat_<k>`` present in ``values``."""
    names = [m for m in HEADLINE_METRICS if m != "pass_hat_k"] + ["error_rate", "attack_success_rate"]
    extra = sorted((k for k in (values or {}) if k.startswith("pass_hat_") and k != "pass_hat_k"), key=_k_order)
    return names + (extra or ["pass_hat_1"])


def _k_order(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def higher_is_better(metric: str) -> bool | None:
    """Direction of a metric name (pass^k is higher-is-better)."""
    if metric.startswith("pass_hat_"):
        return True
    return HIGHER_IS_BETTER.get(metric)



# --- cost -----------------------------------------------------------------------------------


def cost_note(
    conversations: Iterable[ConversationResult], spend: Mapping[str, ModelSpend] | None = None
) -> str | None:
    """What a report should print instead of the agent's cost figure, or ``None`` when it is
    measured.

    No agent usage means the agent called no model we know of (rules-engine agent): reports
    must say so rather than print $0.00 as if it had been measured. It is an offline run
    only when the evaluation (``spend``, see :func:`evaluation_spend`) called no model either.
    """
    replies = [a for c in conversations for a in c.transcript.agent_turns]
    usages = [a.usage for a in replies if a.usage is not None]
    if not usages:
        return AGENT_NO_USAGE_NOTE if spend else OFFLINE_COST_NOTE
    priced = sum(1 for u in usages if u.cost_usd is not None)
    if priced == 0:
        return "tokens counted but not priced: no price for the model (see the price table)"
    if priced < len(usages):
        return f"partial cost: {priced} of {len(usages)} model replies priced"
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
UNTAGGED = "(untagged)"


class GroupSummary(BaseModel):
    """The metrics of one group of a breakdown (one tag, channel, scenario, ...)."""

    model_config = ConfigDict(extra="forbid")

    by: str
    key: str
    n: int
    metrics: dict[str, MetricValue] = Field(default_factory=dict)


def _group_keys(c: ConversationResult, by: str) -> list[str]:
    t = c.transcript
    if by == "tag":
        return list(dict.fromkeys(c.tags)) or [UNTAGGED]
    if by == "channel":
        return [t.channel]
    if by == "scenario":
        return [t.scenario_id]
    if by == "variant":
        return [t.variant]
    if by == "outcome":
        return [str(t.outcome)]
    raise ConfigError(f"unknown breakdown '{by}' (tag, channel, scenario, variant, outcome)", field="by")


def breakdown(
    conversations: Iterable[ConversationResult],
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
    groups: dict[str, list[ConversationResult]] = defaultdict(list)
    for c in conversations:
        for key in _group_keys(c, by):
            groups[key].append(c)
    return [
        GroupSummary(
            by=by,
            key=key,
            n=len(members),
            metrics=summarize_with_ci(
                members, slow_turn_ms=slow_turn_ms, confidence=confidence, n_resamples=n_resamples, seed=seed
            ),
        )
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
    convs = list(conversations.conversations if isinstance(conversations, RunResult) else conversations)
    kw: dict[str, Any] = {"slow_turn_ms": slow_turn_ms}
    ci_kw: dict[str, Any] = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed, **kw}
    doc: dict[str, Any] = summarize(convs, **kw)
    doc["ci"] = {k: v.model_dump() for k, v in summarize_with_ci(convs, **ci_kw).items()}
    doc["cost_note"] = cost_note(convs)
    doc["slow_turn_ms"] = slow_turn_ms
    doc["confidence"] = confidence
    variants = sorted({c.transcript.variant for c in convs})
    if len(variants) > 1:
        doc["by_variant"] = {
            v: summary_document([c for c in convs if c.transcript.variant == v], **ci_kw) for v in variants
        }
    return doc
