"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["cwd_on_path", "FolderPath"]


class FolderPath(click.Path):
    """A folder path option (``--out DIR``): an existing *file* there is refused in one clear
    line ("'x' is a file, not a folder") before anything is written, instead of the
    operating system's "File exists" from deep inside the command."""

    def __init__(self) -> None:
        super().__init__(path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if os.path.lexists(path) and not os.path.isdir(path):
            self.fail(f"'{os.fsdecode(path)}' is a file, not a folder", param, ctx)
        return path


def cwd_on_path() -> None:
    """Let ``--agent my_bot:create`` and ``module:Class`` judges import from the working
    folder, as ``python -m`` would (the console script does not put it on ``sys.path``)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
