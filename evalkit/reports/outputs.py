"""The output files every run folder gets beside its tables: ``report.html``, ``junit.xml``
and ``summary.md``.

Each is a :data:`evalkit.core.results.Renderer`, a pure function of the saved run that writes one
file into the folder; :meth:`evalkit.run.runfolder.RunFolder.finish` calls the ones it is handed,
so the code that writes the journal never imports a renderer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.core.results import RunResult

if TYPE_CHECKING:
    from evalkit.core.results import Renderer

__all__ = ["standard_outputs", "html_report", "junit_report", "summary_markdown"]


def html_report(run: RunResult, folder: Path) -> Path:
    """``report.html`` (self-contained)."""
    from evalkit.reports.html import write_report

    return write_report(run, folder / "report.html")


def junit_report(run: RunResult, folder: Path) -> Path:
    """``junit.xml`` (one test case per conversation)."""
    from evalkit.reports.junit import write_junit

    return write_junit(run, folder / "junit.xml")


def summary_markdown(run: RunResult, folder: Path) -> Path:
    """``summary.md`` (sized for a pull-request comment)."""
    from evalkit.reports.markdown import SUMMARY_MD_FILE, write_summary_md

    return write_summary_md(run, folder / SUMMARY_MD_FILE)


def standard_outputs() -> tuple[Renderer, ...]:
    """The renderers of a normal run, in the order they are written."""
    return (html_report, junit_report, summary_markdown)
