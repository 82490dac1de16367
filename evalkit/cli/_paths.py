"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import os
import sys

__all__ = ["cwd_on_path"]


def cwd_on_path() -> None:
    """Let ``--agent my_bot:create`` and ``module:Class`` judges import from the working
    folder, as ``python -m`` would (the console script does not put it on ``sys.path``)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
