"""Shared by the tests/test_robust_*.py files: run the CLI in this process and capture it."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass


@dataclass
class Outcome:
    code: int | None
    out: str
    err: str


def cli(*args: str) -> Outcome:
    """Run ``evalkit ARGS`` through :func:`evalkit.cli.main`; any exception other than
    SystemExit propagates (and fails the test: the CLI must never raise)."""
    from evalkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | None = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else None
    return Outcome(code, out.getvalue(), err.getvalue())


def cli3(*args: str) -> tuple[int | None, str, str]:
    """:func:`cli` as ``(exit code, stdout, stderr)``."""
    r = cli(*args)
    return r.code, r.out, r.err
