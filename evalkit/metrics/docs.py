"""The metric table of ``docs/metrics.md``, written from the registry (:data:`evalkit.metrics.summary.METRICS`).

    python -m evalkit.metrics.docs [docs/metrics.md]          # rewrite the table in place
    python -m evalkit.metrics.docs --check [docs/metrics.md]  # exit 1 when it differs

The table sits between two marker lines; the rest of the page is written by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

from evalkit.metrics import summary as metrics

__all__ = ["START", "END", "metric_table_markdown", "with_metric_table", "check"]

START = "<!-- metric table: written by `python -m evalkit.metrics.docs` from evalkit.metrics.summary.METRICS; do not edit -->"
END = "<!-- end of metric table -->"

_BETTER = {"higher": "higher", "lower": "lower", "neutral": "–"}


def metric_table_markdown() -> str:
    """One row per registered metric: name, definition, unit, which way is better, interval."""
    lines = ["| Metric | Definition | Unit | Better | 95% CI |", "|---|---|---|---|---|"]
    for m in metrics.METRICS:
        cells = (f"`{m.name}`", m.definition, m.unit, _BETTER[m.better], m.aggregate.ci)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def with_metric_table(page: str) -> str:
    """``page`` with the text between the markers replaced by :func:`metric_table_markdown`."""
    head, start, rest = page.partition(START + "\n")
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the page has no '{START}' ... '{END}' markers")
    return head + start + metric_table_markdown() + end + tail


def check(path: Path) -> str | None:
    """Why the page's metric table differs from the registry; None when it matches."""
    page = path.read_text(encoding="utf-8")
    if with_metric_table(page) == page:
        return None
    return f"{path}: the metric table differs from evalkit.metrics.summary.METRICS; run: python -m evalkit.metrics.docs {path}"


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--check"]
    path = Path(args[0] if args else "docs/metrics.md")
    if "--check" in argv:
        problem = check(path)
        print(problem or f"{path}: the metric table matches the registry")
        return 1 if problem else 0
    path.write_text(with_metric_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the metric table of {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
