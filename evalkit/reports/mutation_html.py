"""``mutation.html``: the mutation score and the surviving mutants, in the report style.

A pure function of ``mutation.json`` (a :class:`~evalkit.quality.mutation.MutationReport`):
autoescaped Jinja, the report's own CSS inlined, no script at all, and the same
Content-Security-Policy as the other pages (nothing can be fetched or run).
"""

from __future__ import annotations

from evalkit.quality.mutation.results import MutantStatus, MutationReport
from evalkit.reports import _embed

__all__ = ["render_mutation_html"]


def render_mutation_html(report: MutationReport) -> str:
    """The page for ``report`` (self-contained)."""
    template = _embed.environment().get_template("mutation.html.j2")
    survivors = [m for m in report.mutants if m.status == MutantStatus.survived]
    equivalents = [m for m in report.mutants if m.status == MutantStatus.equivalent]
    stale = [
        m
        for m in report.mutants
        if m.equivalent_reason and m.status in (MutantStatus.killed, MutantStatus.timeout)
    ]
    return template.render(
        r=report,
        survivors=survivors,
        equivalents=equivalents,
        stale=stale,
        timeouts=[m for m in report.mutants if m.status == MutantStatus.timeout],
        css=_embed.asset("report.css"),
        # No script on this page at all: nothing may run.
        csp=_embed.content_security_policy([]).replace("script-src ;", "script-src 'none';"),
    )
