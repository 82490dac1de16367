"""How well judges agree with people.

Two parts: how a per-conversation score tracks human ratings (Spearman's rho with a bootstrap
CI, used by ``evalkit score`` and ``benchmarks/csat_uss.py``), and calibrating any judge on a
team's own labels (``evalkit calibrate``: kappa, weighted kappa, Spearman, confusion matrix,
bias, each with a bootstrap interval, beside trivial baselines).

Spearman's rho is ``scipy.stats.spearmanr`` (ties get average ranks); its interval resamples
pairs with ``scipy.stats.bootstrap`` and drops the resamples where rho is undefined (one side
constant), which scipy's own interval would not.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sp

from evalkit.core.errors import ConfigError
from evalkit.core.results import ConversationResult, RunResult
from evalkit.core.transcript import Transcript

__all__ = [
    "Correlation",
    "rankdata",
    "spearman",
    "spearman_ci",
    "length_baseline",
    "thanks_baseline",
    "proxy_vs_human",
    "LABELS_FILE",
    "CALIBRATION_FILE",
    "CALIBRATION_PAGE",
    "HumanLabel",
    "Estimate",
    "JudgeCalibration",
    "parse_label",
    "read_labels_csv",
    "labels_csv",
    "recorded_labels",
    "run_labels",
    "judge_value",
    "calibrate_judge",
    "calibrate",
    "format_calibration",
    "stat_label",
    "format_estimate",
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


# -- calibrating any judge on human labels -----------------------------------------------------
#
# A team trusts a judge when it can see how often the judge agrees with its own people. Human
# labels come from a CSV (``scenario_id,trial,judge,label``; a ``labels.csv`` inside the run
# folder is read too, which is where ``evalkit import`` puts the ``labels`` of recorded
# conversations) and from what recordings carry already: ``human_csat`` labels ``llm_csat`` and
# ``csat_proxy``, ``source_verdict`` labels ``passed`` (all deterministic checks).
#
# Statistics come from scikit-learn (Cohen's kappa, plain and quadratic-weighted) and scipy
# (Spearman, the bootstrap). As for Spearman above, the intervals are percentiles of scipy's
# bootstrap distribution with the resamples where a statistic is undefined (one rater constant)
# left out, which scipy's own interval would not do.

LABELS_FILE = "labels.csv"
CALIBRATION_FILE = "calibration.json"
CALIBRATION_PAGE = "calibration.html"

# Pseudo-judges: per-conversation values that are not a single verdict.
PASSED = "passed"  # every deterministic check passed (``ConversationResult.passed``)
CSAT_PROXY = "csat_proxy"  # the offline CSAT proxy (metrics)
# Which recorded metric is the human label for which judge.
_METRIC_LABELS = {"llm_csat": "human_csat", CSAT_PROXY: "human_csat", PASSED: "source_verdict"}
_TRUE = {"pass", "passed", "true", "yes", "1", "ok", "y", "t"}
_FALSE = {"fail", "failed", "false", "no", "0", "n", "f"}


@dataclass(frozen=True)
class HumanLabel:
    """One person's judgement of one conversation for one judge: pass/fail or a score."""

    scenario_id: str
    trial: int
    judge: str
    label: bool | float
    variant: str | None = None  # None: every variant of that scenario and trial


def parse_label(raw: object) -> bool | float:
    """``pass``/``fail``/``true``/``false``/``yes``/``no`` -> bool; a number -> float."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and math.isfinite(float(raw)):
        return float(raw)
    text = str(raw).strip().lower()
    if text in _TRUE - {"1"}:
        return True
    if text in _FALSE - {"0"}:
        return False
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{raw}' is neither pass/fail nor a number") from None
    if not math.isfinite(value):
        raise ValueError(f"'{raw}' is not a finite number")
    return value


def read_labels_csv(path: str | Path) -> list[HumanLabel]:
    """Labels from a CSV with columns ``scenario_id, trial, judge, label`` (optional ``variant``);
    a one-line :class:`ConfigError` naming file, line and field on bad input."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such labels file", file=str(path), field="--labels")
    labels: list[HumanLabel] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ("scenario_id", "trial", "judge", "label") if c not in header]
        if missing:
            raise ConfigError(f"missing column(s) {', '.join(missing)} (expected scenario_id,trial,judge,label[,variant])",
                              file=str(path), line=1, field="header")
        for lineno, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if not any(row.values()):
                continue
            for col in ("scenario_id", "judge", "label"):
                if not row.get(col):
                    raise ConfigError("empty", file=str(path), line=lineno, field=col)
            try:
                trial = int(row.get("trial") or 0)
            except ValueError:
                raise ConfigError(f"'{row['trial']}' is not a whole number", file=str(path), line=lineno,
                                  field="trial") from None
            try:
                label = parse_label(row["label"])
            except ValueError as exc:
                raise ConfigError(str(exc), file=str(path), line=lineno, field="label") from None
            labels.append(HumanLabel(row["scenario_id"], trial, row["judge"], label, row.get("variant") or None))
    return labels


def labels_csv(labels: Sequence[HumanLabel]) -> str:
    """Labels as the CSV text :func:`read_labels_csv` reads."""
    import csv
    import io

    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["scenario_id", "trial", "judge", "label", "variant"])
    for lab in labels:
        value = ("pass" if lab.label else "fail") if isinstance(lab.label, bool) else f"{lab.label:g}"
        w.writerow([lab.scenario_id, lab.trial, lab.judge, value, lab.variant or ""])
    return buf.getvalue()


def recorded_labels(conversations: Sequence[ConversationResult]) -> list[HumanLabel]:
    """The labels recordings carry already: ``human_csat`` and ``source_verdict``."""
    out: list[HumanLabel] = []
    for c in conversations:
        t = c.transcript
        for judge, metric in _METRIC_LABELS.items():
            value = c.metrics.get(metric)
            if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(float(value))):
                out.append(HumanLabel(t.scenario_id, t.trial, judge,
                                      value if isinstance(value, bool) else float(value), t.variant))
    return out


def judge_value(c: ConversationResult, judge: str) -> tuple[bool | float | None, str]:
    """What ``judge`` said of ``c`` as (value, reason): a verdict's score when it has one, else its
    pass/fail; ``None`` when the judge did not run, was skipped or failed (never a guess)."""
    if judge == PASSED:
        return c.passed, "; ".join(f"{v.spec or v.judge}: {v.reason}" for v in c.failed_verdicts)[:500]
    if judge == CSAT_PROXY:
        value = c.metrics.get(CSAT_PROXY)
        return (float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None), ""
    ran = [v for v in c.verdicts if v.judge == judge and v.skipped is None and v.error is None]
    if not ran:
        return None, ""
    reason = " / ".join(v.reason for v in ran if v.reason)[:500]
    scores = [v.score for v in ran if v.score is not None]
    if scores and len(scores) == len(ran):
        return float(np.mean(scores)), reason
    passes = [v.passed for v in ran if v.passed is not None]
    if not passes:
        return None, reason
    return all(passes), reason


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap 95% interval (None when undefined)."""

    value: float | None
    low: float | None = None
    high: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass
class Pair:
    scenario_id: str
    trial: int
    variant: str
    judge: float
    human: float
    n_turns: int
    reason: str


@dataclass
class JudgeCalibration:
    """How one judge agrees with people on the conversations both labelled."""

    judge: str
    kind: str  # "pass_fail" | "score"
    n: int
    stats: dict[str, Estimate]
    baselines: dict[str, Estimate]
    confusion: dict[str, dict[str, int]] | None
    disagreements: list[dict[str, Any]]
    n_unjudged: int  # labelled, but the judge did not run / was skipped / failed there

    def as_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "kind": self.kind,
            "n": self.n,
            "n_unjudged": self.n_unjudged,
            "stats": {k: v.as_dict() for k, v in self.stats.items()},
            "baselines": {k: v.as_dict() for k, v in self.baselines.items()},
            "confusion": self.confusion,
            "disagreements": self.disagreements,
        }


def _bootstrap(
    stat: Any, arrays: Sequence[np.ndarray], *, n_resamples: int, seed: int, confidence: float = 0.95
) -> Estimate:
    """``stat(*arrays)`` and a percentile interval over paired resamples (undefined draws skipped)."""
    value = stat(*arrays)
    if value is None:
        return Estimate(None)
    if len(arrays[0]) < 2:
        return Estimate(float(value))

    def defined(*xs: np.ndarray) -> float:
        d = stat(*xs)
        return float("nan") if d is None else float(d)

    with warnings.catch_warnings():
        # scipy warns when undefined resamples make its own interval NaN; ours drops them.
        warnings.simplefilter("ignore", sp.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sp.bootstrap(tuple(arrays), defined, paired=True, vectorized=False, n_resamples=n_resamples,
                           method="percentile", rng=np.random.default_rng(seed))
    draws = np.asarray(res.bootstrap_distribution, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size < max(20, n_resamples // 10):
        return Estimate(float(value))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return Estimate(float(value), float(lo), float(hi))


def _constant(a: np.ndarray) -> bool:
    return bool(len(a) == 0 or np.all(a == a[0]))


NEEDS_SKLEARN = "evalkit calibrate needs scikit-learn (pip install 'evalkit-support[calibrate]')"


def _cohen_kappa_score() -> Callable[..., Any]:
    """scikit-learn's ``cohen_kappa_score``; scikit-learn is the ``calibrate`` extra."""
    try:
        from sklearn.metrics import cohen_kappa_score
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] == "sklearn":
            raise ConfigError(NEEDS_SKLEARN, field="calibrate") from None
        raise
    return cohen_kappa_score  # type: ignore[no-any-return]


def _kappa(j: np.ndarray, h: np.ndarray, weights: str | None = None) -> float | None:
    cohen_kappa_score = _cohen_kappa_score()
    if len(j) < 2 or (_constant(j) and _constant(h)):
        return None
    labels = np.union1d(j, h)
    if len(labels) < 2:
        return None
    value = float(cohen_kappa_score(h, j, labels=labels, weights=weights))
    return value if math.isfinite(value) else None


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or _constant(x) or _constant(y):
        return None
    rho = float(spearmanr(x, y).statistic)
    return rho if math.isfinite(rho) else None


def _agreement(j: np.ndarray, h: np.ndarray) -> float | None:
    return float(np.mean(j == h)) if len(j) else None


def _bias(j: np.ndarray, h: np.ndarray) -> float | None:
    return float(np.mean(j - h)) if len(j) else None


def _mae(j: np.ndarray, h: np.ndarray) -> float | None:
    return float(np.mean(np.abs(j - h))) if len(j) else None


def calibrate_judge(
    judge: str,
    conversations: Sequence[ConversationResult],
    labels: Sequence[HumanLabel],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    top: int = 10,
) -> JudgeCalibration | None:
    """Agreement of ``judge`` with the human ``labels`` for it; None when no label names it.

    Pass/fail labels: agreement rate, Cohen's kappa, the confusion matrix and bias (the judge's
    pass rate minus the people's). Score labels: Spearman's rho, quadratic-weighted kappa (the
    judge's score rounded to the people's whole-number scale), mean absolute error and bias (mean
    judge - human). Every statistic has a bootstrap 95% interval. Beside them, what trivial
    judges would score: always the majority label, and conversation length.
    """
    mine = [lab for lab in labels if lab.judge == judge]
    if not mine:
        return None
    # (scenario, trial) -> its conversations, one per variant: built once, not scanned per label.
    by_task: dict[tuple[str, int], list[ConversationResult]] = {}
    for c in conversations:
        by_task.setdefault((c.transcript.scenario_id, c.transcript.trial), []).append(c)
    pairs: list[Pair] = []
    unjudged = 0
    binary = all(isinstance(lab.label, bool) for lab in mine)
    seen: set[tuple[str, str, int]] = set()
    for lab in mine:
        matches = [c for c in by_task.get((lab.scenario_id, lab.trial), [])
                   if lab.variant is None or c.transcript.variant == lab.variant]
        for c in matches:
            if c.key in seen:
                continue  # the first label given for a conversation counts
            seen.add(c.key)
            value, reason = judge_value(c, judge)
            if value is None:
                unjudged += 1
                continue
            if binary and not isinstance(value, bool):
                # A scored judge against pass/fail people: its own pass threshold decides.
                passed = [v.passed for v in c.verdicts if v.judge == judge and v.passed is not None]
                if judge == CSAT_PROXY:
                    passed = [value >= 4.0]
                if not passed:
                    unjudged += 1
                    continue
                value = all(passed)
            pairs.append(Pair(lab.scenario_id, lab.trial, c.transcript.variant, float(value),
                              float(lab.label), len(c.transcript.turns), reason))
    j = np.array([p.judge for p in pairs], dtype=float)
    h = np.array([p.human for p in pairs], dtype=float)
    length = np.array([p.n_turns for p in pairs], dtype=float)
    boot = {"n_resamples": n_resamples, "seed": seed}
    stats: dict[str, Estimate] = {}
    baselines: dict[str, Estimate] = {}
    confusion = None
    if binary:
        stats["agreement"] = _bootstrap(_agreement, [j, h], **boot)
        stats["kappa"] = _bootstrap(_kappa, [j, h], **boot)
        stats["bias"] = _bootstrap(_bias, [j, h], **boot)
        if len(h):
            majority = 1.0 if h.mean() >= 0.5 else 0.0
            baselines["majority_agreement"] = _bootstrap(lambda hh: float(np.mean(hh == majority)), [h], **boot)
            baselines["majority_kappa"] = Estimate(0.0)  # a constant rater agrees by chance only
        baselines["length_spearman"] = _bootstrap(_spearman, [length, h], **boot)
        tp = int(np.sum((h == 1) & (j == 1)))
        fn = int(np.sum((h == 1) & (j == 0)))
        fp = int(np.sum((h == 0) & (j == 1)))
        tn = int(np.sum((h == 0) & (j == 0)))
        confusion = {"human_pass": {"judge_pass": tp, "judge_fail": fn},
                     "human_fail": {"judge_pass": fp, "judge_fail": tn}}
    else:
        lo_h, hi_h = (float(h.min()), float(h.max())) if len(h) else (0.0, 0.0)

        def qwk(jj: np.ndarray, hh: np.ndarray) -> float | None:
            return _kappa(np.clip(np.rint(jj), lo_h, hi_h), np.rint(hh), "quadratic")

        stats["spearman"] = _bootstrap(_spearman, [j, h], **boot)
        stats["qwk"] = _bootstrap(qwk, [j, h], **boot)
        stats["mae"] = _bootstrap(_mae, [j, h], **boot)
        stats["bias"] = _bootstrap(_bias, [j, h], **boot)
        if len(h):
            values, counts = np.unique(np.rint(h), return_counts=True)
            mode = float(values[np.argmax(counts)])
            baselines["majority_mae"] = _bootstrap(lambda hh: float(np.mean(np.abs(mode - hh))), [h], **boot)
            baselines["majority_qwk"] = Estimate(0.0)
        baselines["length_spearman"] = _bootstrap(_spearman, [length, h], **boot)
    span = (float(h.max() - h.min()) or 1.0) if len(h) else 1.0
    ranked = sorted(pairs, key=lambda p: (-abs(p.judge - p.human), p.scenario_id, p.trial))
    disagreements = [
        {
            "scenario_id": p.scenario_id,
            "trial": p.trial,
            "variant": p.variant,
            "judge": (p.judge == 1.0) if binary else p.judge,
            "human": (p.human == 1.0) if binary else p.human,
            "gap": round(abs(p.judge - p.human) / (1.0 if binary else span), 4),
            "reason": p.reason,
        }
        for p in ranked[:top]
        if p.judge != p.human
    ]
    return JudgeCalibration(judge, "pass_fail" if binary else "score", len(pairs), stats, baselines,
                            confusion, disagreements, unjudged)


def judges_with_labels(labels: Sequence[HumanLabel]) -> list[str]:
    return sorted({lab.judge for lab in labels})


def calibrate(
    run: RunResult,
    labels: Sequence[HumanLabel],
    *,
    judges: Sequence[str] = (),
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[JudgeCalibration]:
    """:func:`calibrate_judge` for every judge that has labels (or only ``judges``)."""
    _cohen_kappa_score()  # no scikit-learn: one line before any work
    names = list(judges) or judges_with_labels(labels)
    out = []
    for name in names:
        cal = calibrate_judge(name, run.conversations, labels, n_resamples=n_resamples, seed=seed)
        if cal is not None:
            out.append(cal)
    return out


def run_labels(run_dir: str | Path, run: RunResult, extra_files: Sequence[str | Path] = ()) -> list[HumanLabel]:
    """All human labels of a run: ``--labels`` files first, then ``labels.csv`` in the run folder,
    then what the recordings carry (``human_csat``, ``source_verdict``)."""
    labels: list[HumanLabel] = []
    for f in extra_files:
        labels.extend(read_labels_csv(f))
    own = Path(run_dir) / LABELS_FILE
    if own.is_file():
        labels.extend(read_labels_csv(own))
    labels.extend(recorded_labels(run.conversations))
    return labels


_UNSIGNED = {"mae", "majority_mae"}


def format_estimate(name: str, e: Estimate) -> tuple[str, str]:
    """Statistic ``name``'s value and its interval as text (``"n/a"`` and ``""`` when
    undefined): a percentage, an unsigned error or a signed coefficient. Used by the text the
    command prints and by the page."""
    if e.value is None:
        return "n/a", ""
    if _STAT_LABELS.get(name, (name, False))[1]:
        f = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    elif name in _UNSIGNED:
        f = lambda x: f"{x:.3f}"  # noqa: E731
    else:
        f = lambda x: f"{x:+.3f}"  # noqa: E731
    ci = f"{f(e.low)} to {f(e.high)}" if e.low is not None and e.high is not None else ""
    return f(e.value), ci


_STAT_LABELS = {
    "agreement": ("agreement", True),
    "kappa": ("Cohen's kappa", False),
    "bias": ("bias (judge - human)", False),
    "spearman": ("Spearman rho", False),
    "qwk": ("weighted kappa (quadratic)", False),
    "mae": ("mean abs. error", False),
    "majority_agreement": ("always the majority label: agreement", True),
    "majority_kappa": ("always the majority label: kappa", False),
    "majority_mae": ("always the most common score: mean abs. error", False),
    "majority_qwk": ("always the most common score: weighted kappa", False),
    "length_spearman": ("conversation length: Spearman with the labels", False),
}


def stat_label(name: str) -> str:
    return _STAT_LABELS.get(name, (name, False))[0]


def _value(v: bool | float) -> str:
    return ("pass" if v else "fail") if isinstance(v, bool) else f"{v:.2f}"


def format_calibration(results: Sequence[JudgeCalibration]) -> str:
    """The text ``evalkit calibrate`` prints."""
    if not results:
        return "calibration: no judge has human labels in this run"
    lines: list[str] = []
    for r in results:
        kind = "pass/fail labels" if r.kind == "pass_fail" else "score labels"
        if r.n == 0:
            lines.append(f"{r.judge}: {r.n_unjudged} labelled conversation{'s' if r.n_unjudged != 1 else ''}, "
                         "none judged (the judge did not run there, was skipped or failed)")
            lines.append("")
            continue
        extra = f"; {r.n_unjudged} labelled conversation{'s' if r.n_unjudged != 1 else ''} not judged" if r.n_unjudged else ""
        lines.append(f"{r.judge}: {r.n} conversation{'s' if r.n != 1 else ''} with {kind}{extra}")
        for name, est in [*r.stats.items(), *r.baselines.items()]:
            value, ci = format_estimate(name, est)
            lines.append(f"  {stat_label(name):<48} {value}" + (f" [{ci.replace(' to ', ', ')}]" if ci else ""))
        if r.confusion:
            c = r.confusion
            lines.append("                      judge pass  judge fail")
            lines.append(f"    human pass        {c['human_pass']['judge_pass']:>10}  {c['human_pass']['judge_fail']:>10}")
            lines.append(f"    human fail        {c['human_fail']['judge_pass']:>10}  {c['human_fail']['judge_fail']:>10}")
        if r.disagreements:
            lines.append("  largest disagreements:")
            for d in r.disagreements[:5]:
                lines.append(f"    {d['scenario_id']} trial {d['trial']}: judge {_value(d['judge'])}, people {_value(d['human'])}")
        lines.append("")
    return "\n".join(lines).rstrip()
