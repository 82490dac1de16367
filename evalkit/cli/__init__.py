"""The ``evalkit`` command line: a thin click layer over the Python API.

One module per command (``evalkit/cli/<command>.py`` defining ``command``), loaded lazily
so ``evalkit --help`` is fast. Exit codes: 0 ok, 1 gate or test failure, 2 usage or input
error (printed as one line, never a traceback).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import NamedTuple

import click

from evalkit import __version__
from evalkit.core.errors import EvalkitError


class _Entry(NamedTuple):
    module: str  # defines `command`
    help: str  # the line `evalkit --help` shows: listing commands must not import them


COMMANDS: dict[str, _Entry] = {
    "run": _Entry("evalkit.cli.run", "Play a suite against an agent and write the run folder."),
    "validate": _Entry("evalkit.cli.validate", "Check scenario files and suite folders without running them."),
    "schema": _Entry("evalkit.cli.schema", "Print the JSON Schema of scenario files."),
    "list": _Entry("evalkit.cli.list_cmd", "List the scenarios of a suite (id, kind, tags, judges)."),
    "report": _Entry("evalkit.cli.report", "Write the self-contained HTML report of a run."),
    "compare": _Entry("evalkit.cli.compare", "Compare two runs or two variants: deltas with 95% CIs, flips."),
    "gate": _Entry("evalkit.cli.gate", "Pass or fail a run against thresholds and a baseline."),
    "import": _Entry("evalkit.cli.import_cmd", "Turn recorded conversations into a run folder."),
    "score": _Entry("evalkit.cli.score", "Run the judges over the recorded transcripts of a run."),
    "selftest": _Entry("evalkit.cli.selftest", "Check that the suite catches the reference agent's seeded faults."),
    "load": _Entry("evalkit.cli.load", "Load-test an HTTP agent with the suite's simulated users."),
    "calibrate": _Entry("evalkit.cli.calibrate", "How often each judge agrees with people's labels."),
    "mutate": _Entry("evalkit.cli.mutate", "Mutation testing: which changes to the agent's code the suite misses."),
}


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or shows its own help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, e in COMMANDS.items() if importlib.util.find_spec(e.module) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or importlib.util.find_spec(entry.module) is None:
            return None
        command: click.Command = importlib.import_module(entry.module).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own version loads every command for its short help: that imported pandas,
        # openai and plotly and made `evalkit --help` take seconds.
        rows = [(name, COMMANDS[name].help) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="evalkit")
def cli() -> None:
    """evalkit: play users against a support agent, score the conversations, report and gate.

    \b
    Quick start (offline, no API key):
      evalkit run datasets/support --out runs/demo
      open runs/demo/report.html
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turns EvalkitError into one line and exit code 2."""
    os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")
    try:
        rv = cli.main(args=argv, prog_name="evalkit", standalone_mode=False)
    except EvalkitError as exc:
        click.echo(f"evalkit: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("evalkit: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One line, like every other input error (click's own form spans three).
        command = exc.ctx.command_path if exc.ctx is not None else "evalkit"
        problem = " ".join(exc.format_message().split())
        click.echo(f"{command}: error: {problem} (see '{command} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        # Disk full, read-only folder, missing file: the thing the user must fix, in one line.
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        problem = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError | NotADirectoryError) and exc.filename and os.path.isfile(exc.filename):
            problem = "is a file, not a folder"  # the OS says "File exists" / "Not a directory"
        click.echo(f"evalkit: error: {where}{problem}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)
