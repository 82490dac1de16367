"""How well a per-conversation score tracks human ratings: Spearman's rho with a bootstrap CI.

Used by ``evalkit score`` (when the recordings carry ``human_csat``) and by
``benchmarks/csat_uss.py``. Spearman's rho is ``scipy.stats.spearmanr`` (ties get average
ranks); the interval resamples pairs with ``scipy.stats.bootstrap`` and drops the resamples
where rho is undefined (one side constant), which scipy's own interval would not.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sp

from evalkit.results import ConversationResult
from evalkit.transcript import Transcript

__all__ = [
    "Correlation",
    "rankdata",
    "spearman",
    "spearman_ci",
    "length_baseline",
    "thanks_baseline",
    "proxy_vs_human",
]


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho, its bootstrap 95% interval, and how many pairs it rests on."""

    rho: float | None
    low: float | None
    high: float | None
    n: int

    def __str__(self) -> str:
        if self.rho is None:
            return f"n/a (n={self.n})"
        return f"{self.rho:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n={self.n})"


def rankdata(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    return np.asarray(sp.rankdata(np.asarray(values, dtype=float)), dtype=float)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho, NaN when either side is constant (scipy would warn; here it is expected)."""
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(sp.spearmanr(x, y).statistic)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None when either side is constant or n < 3."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    if len(x) < 3:
        return None
    rho = _rho(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return None if math.isnan(rho) else rho


def spearman_ci(
    x: Sequence[float], y: Sequence[float], *, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> Correlation:
    """Spearman's rho with a percentile bootstrap interval (pairs resampled, seeded)."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    rho = spearman(xs, ys)  # type: ignore[arg-type]
    n = len(xs)
    if rho is None:
        return Correlation(None, None, None, n)
    with warnings.catch_warnings():
        # scipy warns when an undefined resample makes its own interval NaN; ours drops them.
        warnings.simplefilter("ignore", sp.DegenerateDataWarning)
        res = sp.bootstrap((xs, ys), _rho, paired=True, vectorized=False, n_resamples=n_resamples,
                           method="percentile", rng=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    dist = dist[np.isfinite(dist)]
    if dist.size == 0:
        return Correlation(rho, None, None, n)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(dist, [alpha, 1 - alpha])
    return Correlation(rho, float(lo), float(hi), n)


def length_baseline(t: Transcript) -> float:
    """Trivial baseline: the number of turns."""
    return float(len(t.turns))


_THANKS = re.compile(r"\bthank\s*you\b|\bthanks\b", re.I)


def thanks_baseline(t: Transcript) -> float:
    """Trivial baseline: how often the user says "thank you" / "thanks"."""
    return float(sum(len(_THANKS.findall(u.content)) for u in t.user_turns))


def proxy_vs_human(
    conversations: Sequence[ConversationResult], *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, Correlation]:
    """Spearman of the CSAT proxy and the two trivial baselines against ``human_csat``."""
    rated = [
        c
        for c in conversations
        if isinstance(c.metrics.get("human_csat"), int | float) and isinstance(c.metrics.get("csat_proxy"), int | float)
    ]
    human = [float(c.metrics["human_csat"]) for c in rated]  # type: ignore[arg-type]
    scores = {
        "csat_proxy": [float(c.metrics["csat_proxy"]) for c in rated],  # type: ignore[arg-type]
        "length": [length_baseline(c.transcript) for c in rated],
        "thank_you_count": [thanks_baseline(c.transcript) for c in rated],
    }
    return {k: spearman_ci(v, human, n_resamples=n_resamples, seed=seed) for k, v in scores.items()}
