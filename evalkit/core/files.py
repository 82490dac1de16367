"""Durable file writes every layer shares: :func:`atomic_write` (temp file in the same folder,
fsync, rename, fsync of the folder) and :func:`remove_stale_temps`.

In ``core`` so that the renderers (``evalkit.reports``) and the run folder (``evalkit.run``) both
write files the same way without one importing the other. The standard library has the parts
(``tempfile``, ``os.replace``) but no durable atomic write; the small packages that offer one do
not fsync the folder or keep the old file's permissions under the umask, so it is written here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "remove_stale_temps"]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once: os.umask can only be read by setting it, which is not thread-safe mid-run.
_UMASK = _current_umask()


def _on(path: Path, exc: OSError) -> OSError:
    """The same error naming ``path`` (not a temp file, or nothing), for the one-line message."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` through a temp file in the same folder, fsync it, then rename it.

    A full disk or a read-only folder raises :class:`OSError` naming ``path``; the old file,
    if any, is left untouched and no temp file stays behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # its error names the folder: keep it
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _on(path, exc) from None
    try:
        # mkstemp makes the file 0600; a run folder is shared (CI artifacts, a team's server).
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None:
            raise _on(path, exc) from None
        raise
    _fsync_dir(path.parent)


def remove_stale_temps(run_dir: Path) -> list[Path]:
    """Delete temp files an interrupted :func:`atomic_write` left in ``run_dir`` (only ours:
    ``.<name>.<random>.tmp``); returns them. Call it only when no other writer is active."""
    removed = []
    for tmp in Path(run_dir).glob(".*.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:  # gone already, or not ours to delete: harmless either way
            pass
    return removed


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform lets a folder be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
