"""``evalkit import``: recorded conversations -> a run folder (scored later by ``evalkit score``)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from evalkit.cli._paths import FolderPath
from evalkit.core._plural import plural

__all__ = ["command"]


@click.command("import")
# A plain string, not a click.Choice: plugin formats (entry points) are looked up only when run.
@click.argument("fmt", metavar="FORMAT")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=FolderPath(),
    help="Run folder to write.",
)
@click.option("--force", is_flag=True, help="Replace the run already in --out.")
@click.option(
    "--domain",
    type=click.Choice(["airline", "retail"]),
    help="tau-bench only: the domain (picks the database-changing tools; default: guessed).",
)
@click.option(
    "--write-tool",
    "write_tools",
    multiple=True,
    metavar="NAME",
    help="tau-bench only: a tool that changes the database (repeatable; replaces the domain's list).",
)
@click.option(
    "--list-order",
    type=click.Choice(["strict", "any"]),
    default="strict",
    show_default=True,
    help="tau-bench only: whether list arguments of gold calls must match in order.",
)
@click.option(
    "--score", "score_now", is_flag=True, help="Also run `evalkit score` on the new folder (offline judges)."
)
def command(
    fmt: str,
    file: Path,
    out: Path,
    force: bool,
    domain: str | None,
    write_tools: tuple[str, ...],
    list_order: str,
    score_now: bool,
) -> int:
    """Turn recorded conversations in FILE into a run folder: transcripts + scenarios.yaml.

    \b
    FORMAT is one of:
      openai-messages  JSONL, one {"messages": [...], "id", "expected", ...} per line
      tau-bench        a tau-bench results JSON (trajectories, gold actions, reward)
      uss              a USS corpus text file (dialogue-level human ratings -> human_csat)
      deepeval         DeepEval conversational test cases / goldens (JSON)
    or a format an installed plugin adds (entry-point group evalkit.integrations.importers).

    \b
    Writes scenarios.yaml, manifest.json, conversations.jsonl (stop_reason: recorded),
    results.parquet, verdicts.parquet and summary.json. Then score them:
      evalkit import tau-bench airline.json --out runs/tau
      evalkit score runs/tau
    """
    from evalkit.integrations.importers import read_recordings, write_imported

    options: dict[str, object] = {}
    if fmt == "tau-bench":
        options = {"domain": domain, "write_tools": list(write_tools) or None, "list_order": list_order}
    elif domain or write_tools or list_order != "strict":
        raise click.UsageError("--domain, --write-tool and --list-order apply to tau-bench only")
    imported = read_recordings(fmt, file, **options)
    cmd = shlex.join(["evalkit", *sys.argv[1:]])
    run = write_imported(imported, out, command=cmd, force=force)
    n_scen = len(imported.scenarios)
    click.echo(
        f"imported {plural(len(run.conversations), 'conversation')} of {plural(n_scen, 'scenario')} from {file} "
        f"({fmt}) into {out}/"
    )
    for key, value in imported.info.items():
        click.echo(f"  {key}: {value}")
    if score_now:
        from evalkit.cli.score import print_scored
        from evalkit.run.recorded import score_run

        scored = score_run(out, command=cmd)
        print_scored(scored, out)
    else:
        click.echo(f"next: evalkit score {shlex.quote(str(out))}")
    return 0
