"""``evalkit report``: regenerate ``report.html`` from a saved run folder (nothing is re-run)."""

from __future__ import annotations

import time
from pathlib import Path

import click

__all__ = ["command"]


@click.command("report")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Where to write the HTML (default: RUN_DIR/report.html).",
)
@click.option(
    "--gate/--no-gate",
    "use_gate",
    default=True,
    show_default=True,
    help="Show the verdict saved by `evalkit gate` (RUN_DIR/gate.json) when there is one.",
)
@click.option(
    "--charts/--no-charts",
    default=True,
    show_default=True,
    help="Include the plotly charts (--no-charts leaves out plotly.js: a file ~4.8 MB smaller).",
)
@click.option(
    "--redact-pii",
    is_flag=True,
    help="Mask emails, phone numbers, card numbers and national ids in the report "
    "(for runs recorded without `evalkit run --redact-pii`).",
)
def command(run_dir: Path, out: Path | None, use_gate: bool, charts: bool, redact_pii: bool) -> int:
    """Write the self-contained HTML report of RUN_DIR (opens offline, one file).

    \b
    Examples:
      evalkit report runs/demo                      # -> runs/demo/report.html
      evalkit report runs/demo --out /tmp/demo.html

    Reads manifest.json and conversations.jsonl; a missing or corrupt run folder is a
    one-line error (exit 2).
    """
    from evalkit.core.files import atomic_write
    from evalkit.reports.html import load_gate, render_report
    from evalkit.run.runfiles import load_run
    from evalkit.run.runfolder import Existing, RunFolder

    started = time.perf_counter()
    # Written into the run folder: locked meanwhile (never beside a run still being written).
    folder = RunFolder(run_dir).claim(Existing.update) if out is None else None
    try:
        run = load_run(run_dir)
        if redact_pii:
            from evalkit.core.redact import redact_run

            run = redact_run(run)
        gate = load_gate(run_dir) if use_gate else None
        html = render_report(run, gate=gate, charts=charts).encode("utf-8")
        if folder is not None:
            target = folder.write_file("report.html", html)
        else:
            assert out is not None  # a folder is claimed exactly when no --out is given
            target = out
            atomic_write(target, lambda fh: fh.write(html))
    finally:
        if folder is not None:
            folder.close()
    n = len(run.conversations)
    click.echo(
        f"evalkit: wrote {target} ({n:,} conversation{'s' if n != 1 else ''}, "
        f"{len(html) / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)"
    )
    return 0
