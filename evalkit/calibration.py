"""How well a per-conversation score tracks human ratings: Spearman's rho with a bootstrap CI.

Used by ``evalkit score`` (when the recordings carry ``human_csat``) and by
``benchmarks/csat_uss.py``. numpy only; ties get average ranks (as scipy's ``spearmanr``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
    x = np.asarray(values, dtype=float)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    # The average rank of a run of equal values: its last rank minus half its extra width.
    avg = np.cumsum(counts) - (counts - 1) / 2.0
    return np.asarray(avg[inverse], dtype=float)


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return None if denom == 0 else float((a * b).sum() / denom)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None when either side is constant or n < 3."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    if len(x) < 3:
        return None
    return _pearson(rankdata(x), rankdata(y))


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
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        r = spearman(xs[idx], ys[idx])  # type: ignore[arg-type]
        if r is not None:
            stats.append(r)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha]) if stats else (None, None)
    return Correlation(rho, float(lo) if lo is not None else None, float(hi) if hi is not None else None, n)


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
