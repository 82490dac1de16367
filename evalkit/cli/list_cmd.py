"""``evalkit list``: the scenarios of a suite, with their tags and judges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from evalkit.cli._paths import cwd_on_path
from evalkit.core._plural import plural

__all__ = ["command", "scenario_rows"]


def scenario_rows(paths: list[Path], tags: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per scenario: id, title, kind, channel, tags, trials, max_turns, judges, file."""
    from evalkit.scenarios.loader import load_suite

    suite = load_suite(paths, tags=tags)
    rows = []
    for s in suite.scenarios:
        judges = [j.label() for j in suite.judges_for(s)] + [j.label() for j in s.expect]
        for n, step in enumerate(s.user.script or [], start=1):
            judges += [f"{j.label()}@{n}" for j in step.expect]
        rows.append(
            {
                "id": s.id,
                "title": s.title,
                "kind": s.kind,
                "channel": str(s.channel),
                "tags": list(s.tags),
                "trials": s.trials or suite.config.trials,
                "max_turns": s.max_turns,
                "judges": judges,
                "file": f"{s._file}:{s._line}" if s._file else None,
            }
        )
    return rows


@click.command("list")
@click.argument("suite", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only scenarios with this tag (repeatable: any)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def command(suite: tuple[Path, ...], tags: tuple[str, ...], as_json: bool) -> int:
    """List the scenarios in SUITE: id, kind (script|persona), channel, tags and judges.

    Judges of a script step are shown as `judge(arg)@N` (checked on exchange N).
    """
    cwd_on_path()
    rows = scenario_rows(list(suite), list(tags) or None)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    table = [["id", "kind", "channel", "tags", "judges"]]
    for r in rows:
        table.append(
            [r["id"], r["kind"], r["channel"], ",".join(r["tags"]) or "-", ", ".join(r["judges"]) or "-"]
        )
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    click.echo(f"\n{plural(len(rows), 'scenario')}")
    return 0
