"""The calibration page: how each judge agrees with people, one self-contained HTML file.

Per judge: the agreement statistics with their bootstrap 95% intervals, the trivial baselines
beside them, the confusion matrix for pass/fail labels, and the conversations where judge and
people disagree most. Static markup only (no script), autoescaped like every page of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit import __version__
from evalkit.quality.calibration import Estimate, JudgeCalibration, format_estimate, stat_label
from evalkit.reports import _embed

__all__ = ["render_calibration_html"]

def _rows(stats: dict[str, Estimate]) -> list[dict[str, str]]:
    return [{"name": n, "label": stat_label(n), **dict(zip(("value", "ci"), format_estimate(n, e), strict=True))}
            for n, e in stats.items()]


def render_calibration_html(results: Sequence[JudgeCalibration], *, run_id: str, n_resamples: int) -> str:
    """The page for ``results`` of run ``run_id``."""
    judges: list[dict[str, Any]] = []
    for r in results:
        judges.append({
            "judge": r.judge,
            "kind": "pass/fail" if r.kind == "pass_fail" else "score",
            "n": r.n,
            "n_unjudged": r.n_unjudged,
            "stats": _rows(r.stats),
            "baselines": _rows(r.baselines),
            "confusion": r.confusion,
            "disagreements": r.disagreements,
        })
    template = _embed.environment().get_template("calibration.html.j2")
    return template.render(
        run_id=run_id,
        judges=judges,
        n_resamples=n_resamples,
        generator=f"evalkit {__version__}",
        css=_embed.asset("report.css"),
        csp=_embed.content_security_policy([]),
    )
