"""Statistics for evaluation results: confidence intervals and paired tests.

The textbook pieces come from scipy (Wilson interval, exact binomial/McNemar, Wilcoxon
signed-rank, the normal quantile, and ``scipy.stats.bootstrap`` for independent values).
What scipy lacks is here: the *cluster* bootstrap, which resamples whole conversations or
scenarios and expresses each statistic as a function of per-cluster resampling counts, so
that one draw serves many statistics (the paired comparisons of :mod:`evalkit.metrics.compare`) and
turn-level percentiles stay vectorised with numpy. Bootstraps are seeded, so the same run
always gives the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sp

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "Interval",
    "percentile",
    "wilson_interval",
    "bootstrap_ci",
    "cluster_bootstrap",
    "cluster_bootstrap_many",
    "weighted_quantiles",
    "cluster_quantiles",
    "binom_two_sided_p",
    "mcnemar_exact",
    "McNemarResult",
    "wilcoxon_signed_rank",
    "WilcoxonResult",
    "paired_bootstrap_mean_diff",
    "bootstrap_p_value",
    "percentile_interval",
]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
# Resamples materialised at once: bounds memory to ~_CHUNK * n_clusters counts.
_CHUNK = 250
# Upper bound on matrix cells per chunk (~32 MB of float64).
_MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval; both ends ``None`` when it cannot be computed."""

    low: float | None
    high: float | None

    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if len(values) == 0:
        return None
    # numpy sorts long arrays faster; a short list (one conversation's turns) sorts faster as is.
    xs = np.sort(values) if isinstance(values, np.ndarray) else sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def _z(confidence: float) -> float:
    """Two-sided normal quantile, e.g. 1.95996 for 0.95."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(sp.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson score interval for a proportion (well-behaved at 0%, 100% and small n)."""
    if n <= 0:
        return Interval(None, None)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, got {successes}")
    _z(confidence)  # the same error as everywhere else for a confidence outside (0, 1)
    ci = sp.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(float(ci.low), float(ci.high))


def _percentile_interval(samples: np.ndarray, confidence: float) -> Interval:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return Interval(None, None)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return Interval(float(lo), float(hi))


def cluster_bootstrap(
    n_clusters: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    width: int | None = None,
) -> np.ndarray:
    """Bootstrap distribution of a statistic over resampled clusters.

    ``statistic`` receives a ``(b, n_clusters)`` matrix of resampling counts (how many times
    each cluster was drawn in each of ``b`` resamples) and returns ``b`` values (or a
    ``(k, b)`` array). Expressing statistics as functions of counts keeps everything
    vectorised: a mean is ``counts @ x / counts.sum(1)``, a ratio of sums is
    ``counts @ num / counts @ den``. ``width`` is how many columns the statistic expands
    the counts to (e.g. turns for a turn-level percentile); it bounds how many resamples
    are materialised at once.
    """
    return cluster_bootstrap_many(
        n_clusters, {"x": statistic}, n_resamples=n_resamples, seed=seed, width=width
    ).get("x", np.empty(0))


def cluster_bootstrap_many(
    n_clusters: int,
    statistics: dict[str, Callable[[np.ndarray], np.ndarray]],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    width: int | None = None,
) -> dict[str, np.ndarray]:
    """Several statistics over the *same* resamples (drawn once): name -> distribution.

    Each distribution has ``n_resamples`` values on its last axis. Sharing the resamples is
    both faster and what a paired comparison needs.
    """
    if n_clusters <= 0 or n_resamples <= 0 or not statistics:
        return {}
    rng = np.random.default_rng(seed)
    chunk = max(1, min(_CHUNK, _MAX_CELLS // max(width or n_clusters, 1)))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        # Draw indices and count them per row (much faster than rng.multinomial).
        idx = rng.integers(0, n_clusters, size=(b, n_clusters)) + (np.arange(b) * n_clusters)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n_clusters).reshape(b, n_clusters).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, fn in statistics.items():
                parts[name].append(np.asarray(fn(counts), dtype=np.float64))
        done += b
    return {name: np.concatenate(p, axis=-1) for name, p in parts.items()}


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    statistic: str = "mean",
    q: float = 50.0,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap CI of the mean (or the ``q``-th percentile) of independent values
    (``scipy.stats.bootstrap``)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Interval(None, None)
    if x.size == 1:
        return Interval(float(x[0]), float(x[0]))
    if statistic == "mean":
        dist = _bootstrap_distribution(x, np.mean, n_resamples=n_resamples, seed=seed)
    elif statistic == "percentile":
        dist = _bootstrap_distribution(x, lambda v, axis: np.percentile(v, q, axis=axis),
                                       n_resamples=n_resamples, seed=seed)
    else:
        raise ValueError(f"unknown statistic {statistic!r} (mean, percentile)")
    return _percentile_interval(dist, confidence)


def _bootstrap_distribution(
    x: np.ndarray, statistic: Callable[..., np.ndarray], *, n_resamples: int, seed: int
) -> np.ndarray:
    """The bootstrap distribution of ``statistic(x, axis=-1)`` from ``scipy.stats.bootstrap``
    (the interval is read from it by :func:`_percentile_interval`, which ignores NaNs)."""
    res = sp.bootstrap((x,), statistic, n_resamples=n_resamples, vectorized=True, method="percentile",
                       batch=max(1, _MAX_CELLS // x.size), rng=np.random.default_rng(seed))
    return np.asarray(res.bootstrap_distribution, dtype=np.float64)


def weighted_quantiles(
    sorted_values: np.ndarray, weights: np.ndarray, q: float | Sequence[float]
) -> np.ndarray:
    """Percentile(s) ``q`` of ``sorted_values`` under each row of integer ``weights``.

    A row of counts stands for the data with each value repeated that many times, and the
    percentile is the same linear interpolation as :func:`percentile` on
    that expanded data, so bootstrap distributions sit around the point estimate. Rows with
    zero total weight give NaN. ``weights`` is ``(b, len(sorted_values))``; the result is
    ``(b,)`` for one ``q`` and ``(len(q), b)`` for several (one cumulative sum shared).
    """
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    b = weights.shape[0]
    if sorted_values.size == 0:
        out = np.full((qs.size, b), np.nan)
        return out[0] if np.ndim(q) == 0 else out
    cum = np.cumsum(weights, axis=1)
    total = cum[:, -1]
    # Row offsets make the flattened cumulative sums globally increasing, so one
    # searchsorted finds every row's positions at once.
    span = float(total.max()) + 1.0
    flat = (cum + (np.arange(b) * span)[:, None]).ravel()
    last = sorted_values.size - 1
    res = np.empty((qs.size, b))
    for j, qq in enumerate(qs):
        pos = np.maximum(total - 1, 0) * (qq / 100.0)
        lo, hi = np.floor(pos), np.ceil(pos)
        base = np.arange(b) * span
        # Value at 0-based order position k: first index whose cumulative count exceeds k.
        i_lo = np.searchsorted(flat, lo + base, side="right") - np.arange(b) * sorted_values.size
        i_hi = np.searchsorted(flat, hi + base, side="right") - np.arange(b) * sorted_values.size
        v_lo = sorted_values[np.clip(i_lo, 0, last)]
        v_hi = sorted_values[np.clip(i_hi, 0, last)]
        res[j] = v_lo + (v_hi - v_lo) * (pos - lo)
    res[:, total <= 0] = np.nan
    return res[0] if np.ndim(q) == 0 else res


def cluster_quantiles(
    sorted_values: np.ndarray,
    cluster_of: np.ndarray,
    counts: np.ndarray,
    q: Sequence[float],
    *,
    window: int | None = None,
) -> np.ndarray:
    """:func:`weighted_quantiles` with ``weights = counts[:, cluster_of]``, without building
    the full ``(b, n_values)`` matrix.

    ``sorted_values[i]`` belongs to cluster ``cluster_of[i]``; ``counts`` is ``(b,
    n_clusters)``. A resampled percentile stays near the original one, so only a window of
    sorted values around each percentile's position is expanded (the weight below the
    window comes from one matrix product); the rare rows whose percentile falls outside
    the window are recomputed in full. Results are identical to the full computation.
    Returns ``(len(q), b)``.
    """
    n = sorted_values.size
    b = counts.shape[0]
    qs = list(q)
    out = np.full((len(qs), b), np.nan)
    if n == 0 or b == 0:
        return out
    n_clusters = counts.shape[1]
    sizes = np.bincount(cluster_of, minlength=n_clusters).astype(np.float64)
    total = counts @ sizes
    per_cluster = n / max(int(np.count_nonzero(sizes)), 1)
    for j, qq in enumerate(qs):
        centre = int(round((n - 1) * qq / 100.0))
        # ~8 standard deviations of the resampled position (clustering inflates the variance
        # by at most the cluster size); rows that land outside are recomputed exactly.
        spread = math.sqrt(max(n * per_cluster * (qq / 100.0) * (1 - qq / 100.0), 1.0))
        half = window if window is not None else int(8 * spread) + 32
        lo_i, hi_i = max(0, centre - half), min(n, centre + half + 1)
        before = np.bincount(cluster_of[:lo_i], minlength=n_clusters).astype(np.float64)
        base = counts @ before
        cum = base[:, None] + np.cumsum(counts[:, cluster_of[lo_i:hi_i]], axis=1)
        pos = np.maximum(total - 1, 0) * (qq / 100.0)
        k_lo, k_hi = np.floor(pos), np.ceil(pos)
        # Inside the window when the window starts at or before order position k_lo and
        # its cumulative weight passes k_hi.
        ok = ((lo_i == 0) | (base <= k_lo)) & ((hi_i == n) | (cum[:, -1] > k_hi)) & (total > 0)
        rows = np.flatnonzero(ok)
        if rows.size:
            c = cum[rows]
            span = float(c[:, -1].max()) + 1.0
            offs = np.arange(rows.size) * span
            flat = (c + offs[:, None]).ravel()
            width = hi_i - lo_i
            base_idx = np.arange(rows.size) * width
            i_lo = np.searchsorted(flat, k_lo[rows] + offs, side="right") - base_idx + lo_i
            i_hi = np.searchsorted(flat, k_hi[rows] + offs, side="right") - base_idx + lo_i
            v_lo = sorted_values[np.clip(i_lo, 0, n - 1)]
            v_hi = sorted_values[np.clip(i_hi, 0, n - 1)]
            out[j, rows] = v_lo + (v_hi - v_lo) * (pos[rows] - k_lo[rows])
        rest = np.flatnonzero(~ok & (total > 0))
        if rest.size:
            out[j, rest] = weighted_quantiles(sorted_values, counts[rest][:, cluster_of], qq)
    return out


# --- exact binomial / McNemar -------------------------------------------------------------


def binom_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips."""
    if n == 0:
        return 1.0
    return float(sp.binomtest(k, n, 0.5).pvalue)


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar on paired pass/fail: only the discordant pairs carry information."""

    # Pairs that passed in the base and failed in the candidate (regressions).
    base_only: int
    # Pairs that failed in the base and passed in the candidate (fixes).
    cand_only: int
    n_pairs: int
    p_value: float


def mcnemar_exact(pairs: Sequence[tuple[bool, bool]]) -> McNemarResult:
    """Exact (binomial) McNemar test on ``(base_passed, cand_passed)`` pairs."""
    b = sum(1 for x, y in pairs if x and not y)
    c = sum(1 for x, y in pairs if y and not x)
    return McNemarResult(base_only=b, cand_only=c, n_pairs=len(pairs), p_value=binom_two_sided_p(b, b + c))


# --- Wilcoxon signed-rank -----------------------------------------------------------------


@dataclass(frozen=True)
class WilcoxonResult:
    statistic: float  # W+ : sum of ranks of positive differences
    n_nonzero: int
    p_value: float
    method: str  # "exact" | "normal"


def wilcoxon_signed_rank(diffs: Sequence[float] | np.ndarray) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of paired differences (zeros dropped), by
    ``scipy.stats.wilcoxon``: the exact null distribution for up to 50 non-zero differences
    without ties; otherwise the normal approximation with tie and continuity corrections."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d) & (d != 0)]
    n = int(d.size)
    if n == 0:
        return WilcoxonResult(0.0, 0, 1.0, "exact")
    w_plus = float(sp.rankdata(np.abs(d))[d > 0].sum())
    exact = n <= 50 and np.unique(np.abs(d)).size == n
    res = sp.wilcoxon(d, correction=True, method="exact" if exact else "asymptotic")
    p = float(res.pvalue)
    return WilcoxonResult(w_plus, n, min(1.0, p) if math.isfinite(p) else 1.0, "exact" if exact else "normal")


# --- paired bootstrap -----------------------------------------------------------------------


def bootstrap_p_value(dist: np.ndarray) -> float | None:
    """Two-sided bootstrap p-value for "the difference is 0": twice the smaller tail mass."""
    dist = dist[np.isfinite(dist)]
    if dist.size == 0:
        return None
    below = (np.sum(dist <= 0) + 1) / (dist.size + 1)
    above = (np.sum(dist >= 0) + 1) / (dist.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def paired_bootstrap_mean_diff(
    base: Sequence[float] | np.ndarray,
    cand: Sequence[float] | np.ndarray,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float | None, Interval, float | None]:
    """Mean of ``cand - base`` over pairs: (point estimate, CI, two-sided p-value)."""
    a = np.asarray(base, dtype=np.float64)
    b = np.asarray(cand, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    d = b - a
    if d.size == 0:
        return None, Interval(None, None), None
    if d.size == 1:  # every resample is the one pair (scipy.stats.bootstrap needs two)
        dist = np.full(n_resamples, d[0])
    else:
        dist = _bootstrap_distribution(d, np.mean, n_resamples=n_resamples, seed=seed)
    return float(d.mean()), _percentile_interval(dist, confidence), bootstrap_p_value(dist)


def percentile_interval(samples: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """The central ``confidence`` interval of a bootstrap distribution (NaNs ignored)."""
    return _percentile_interval(np.asarray(samples, dtype=np.float64), confidence)

