"""``evalkit validate``: check scenario files and suites, print every problem."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.cli._paths import cwd_on_path

__all__ = ["command"]


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def command(paths: tuple[Path, ...]) -> int:
    """Check scenario files and suite folders (YAML, fields, judges, duplicate ids).

    \b
    Prints every problem, one per line, as `file:line: field: problem`, and exits 2.
    Prints nothing and exits 0 when everything is valid.
    """
    cwd_on_path()
    from evalkit.scenarios.loader import validate_paths

    problems = validate_paths(list(paths))
    for problem in problems:
        click.echo(str(problem))
    return 2 if problems else 0
