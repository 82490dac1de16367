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

import click

from evalkit import __version__
from evalkit.errors import EvalkitError

# command name -> module defining `command`
COMMANDS: dict[str, str] = {
    "run": "evalkit.cli.run",
    "validate": "evalkit.cli.validate",
    "schema": "evalkit.cli.schema",
    "list": "evalkit.cli.list_cmd",
    "report": "evalkit.cli.report",
    "compare": "evalkit.cli.compare",
    "gate": "evalkit.cli.gate",
    "import": "evalkit.cli.import_cmd",
    "score": "evalkit.cli.score",
    "selftest": "evalkit.cli.selftest",
    "load": "evalkit.cli.load",
    "mutate": "evalkit.cli.mutate",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, m in COMMANDS.items() if importlib.util.find_spec(m) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None or importlib.util.find_spec(module) is None:
            return None
        return importlib.import_module(module).command


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
        click.echo(f"evalkit: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)
