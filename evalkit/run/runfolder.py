"""One owner for a run folder: claiming and locking it, the manifest, the journal, resume and
writing the outputs.

Everything that writes a run folder (``evalkit run`` and ``--resume``, ``evalkit import`` and
``score``, the pytest plugin, the self-test, ``report`` and ``gate`` rewriting their files)
goes through :class:`RunFolder`, which promises:

* **one writer**: an exclusive lock (``.evalkit.lock``, ``portalocker``/``flock``) is held
  from the claim to :meth:`RunFolder.close`; a second process is refused with one line
  saying who holds it (pid, host, since when, command);
* **one run**: every journal line carries the run id and the suite hash; a ``--resume``
  refuses a line of another run or suite, naming the file and line;
* **only its own folder**: a non-empty folder that is not an evalkit run is never written
  to (``--out /`` or ``--out ~/Documents`` write nothing); a file inside the folder that is
  a symbolic link is refused, never followed (``O_NOFOLLOW``);
* **nothing secret**: each conversation and the manifest pass through one masking point
  (:class:`evalkit.core.masking.Secrets`, plus PII masking for ``--redact-pii``) before they are
  written, so every file derived from them (tables, reports) is clean too.

Renderers (HTML, JUnit, Markdown) are not imported here: :meth:`RunFolder.finish` calls the
ones it is given (``evalkit.reports.outputs.standard_outputs()`` for a normal run).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import pandas as pd
import portalocker

from evalkit.core._clock import now_iso
from evalkit.core.errors import ConfigError, RunFolderError
from evalkit.core.files import atomic_write, remove_stale_temps
from evalkit.core.masking import Secrets
from evalkit.core.results import ConversationResult, Renderer, RunManifest, RunResult
from evalkit.metrics.table import conversation_table
from evalkit.run.runfiles import (
    JOURNAL,
    MANIFEST,
    RESULTS,
    SUMMARY,
    VERDICTS,
    open_nofollow,
    read_manifest,
    scan_journal,
    summary_dict,
    verdicts_frame,
    write_json,
)

__all__ = ["LOCK_FILE", "Existing", "RunFolder"]

log = logging.getLogger("evalkit")

LOCK_FILE = ".evalkit.lock"



class Existing(StrEnum):
    """What a claim does with a run already in the folder."""

    new = "new"  # refuse it: the folder must be new, empty or hold no run
    resume = "resume"  # continue it (or start one if there is none)
    overwrite = "overwrite"  # replace it (its journal is removed)
    update = "update"  # there must be one: rewrite derived files (report, gate, score in place)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


class RunFolder:
    """A claimed run folder. Use as a context manager (``with RunFolder(path).claim(...)``)
    or call :meth:`close`; the lock is held until then."""

    def __init__(
        self,
        path: str | Path,
        *,
        secrets: Secrets | None = None,
        redact_pii: bool = False,
        command: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.secrets = secrets if secrets is not None else Secrets.from_env()
        self.redact_pii = redact_pii
        self.command = command
        self.previous: RunManifest | None = None
        self._lock: IO[bytes] | None = None
        self._journal: IO[bytes] | None = None
        self._created: list[Path] = []  # folders the claim made, removed again if nothing was written
        self._wrote = False
        self._run_id: str | None = None
        self._suite_hash: str | None = None

    # -- claiming ---------------------------------------------------------------------
    def claim(self, existing: Existing = Existing.new, *, hint: str = "choose another --out") -> RunFolder:
        """Check the folder may be written, lock it, and read the run already there (into
        :attr:`previous`). Nothing is written to a folder that is refused."""
        self._check_writable(existing, hint, locked=False)
        self._take_lock()
        try:
            # Again under the lock: another process may have written a run since the check.
            self._check_writable(existing, hint, locked=True)
            self._refuse_links()
            if self.is_run() and existing == Existing.overwrite:
                self.remove(JOURNAL)
            elif self.is_run():
                self.previous = read_manifest(self.path)  # a journal without it is a broken run
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_run(self) -> bool:
        """Does the folder hold an evalkit run (a manifest or a journal)?"""
        return any(os.path.lexists(self.path / name) for name in (MANIFEST, JOURNAL))

    def _check_writable(self, existing: Existing, hint: str, *, locked: bool) -> None:
        # Before the lock, only what makes the lock file itself wrong to write (not a run
        # folder); "already holds a run" waits for the lock, whose holder is worth naming.
        p = self.path
        if os.path.lexists(p) and not p.is_dir():
            raise RunFolderError("is a file, not a run folder", file=str(p))
        if not p.is_dir():
            if existing == Existing.update:
                raise RunFolderError("no such run folder", file=str(p))
            return
        if self.is_run():
            if existing == Existing.new and locked:
                raise ConfigError(f"already holds a run; {hint}", field=str(p))
            return
        if existing == Existing.update:
            raise RunFolderError(f"not a run folder (no {MANIFEST})", file=str(p))
        try:
            with os.scandir(p) as entries:
                stray = next((e.name for e in entries if e.name != LOCK_FILE), None)
        except OSError as exc:
            raise RunFolderError(f"cannot read: {exc.strerror or exc}", file=str(p)) from None
        if stray is not None:
            raise RunFolderError(
                f"not empty and not an evalkit run folder (it holds '{stray}' but no {MANIFEST}); "
                "give a new or empty folder",
                file=str(p),
            )

    def _refuse_links(self) -> None:
        with os.scandir(self.path) as entries:
            links = [e.name for e in entries if e.is_symlink()]
        if links:
            raise RunFolderError(
                "is a symbolic link: evalkit never follows links inside a run folder "
                "(replace it with the file itself)",
                file=str(self.path / sorted(links)[0]),
            )

    def _take_lock(self) -> None:
        missing = [p for p in [self.path, *self.path.parents] if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # read-only or full disk: one line naming the folder (exit 2)
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None
        self._created = list(missing)  # innermost first: removed in this order
        path = self.path / LOCK_FILE
        for _ in range(5):
            try:
                fh = open_nofollow(path, os.O_RDWR | os.O_CREAT)
            except OSError as exc:
                if os.path.islink(path):
                    raise RunFolderError("is a symbolic link: evalkit never follows links inside a run folder",
                                         file=str(path)) from None
                raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None
            try:
                portalocker.lock(fh, portalocker.LOCK_EX | portalocker.LOCK_NB)
            except portalocker.exceptions.LockException:
                holder = _describe_holder(fh)
                fh.close()
                raise RunFolderError(
                    f"in use by another evalkit process ({holder}); wait for it to finish or stop it",
                    file=str(self.path),
                ) from None
            # The file may have been removed and re-created between open and lock (a claim
            # abandoned by another process): then this lock guards nothing; take it again.
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        else:
            raise RunFolderError("cannot lock: the lock file keeps changing", file=str(path))
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname() or platform.node(),
            "started": now_iso(),
            "command": self.secrets.mask_text(self.command or ""),
        }
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(info).encode())
        fh.flush()
        self._lock = fh

    def close(self) -> None:
        """Close the journal and release the lock (a claim that wrote nothing leaves no trace)."""
        if self._journal is not None:
            fh, self._journal = self._journal, None
            try:
                fh.close()
            except OSError as exc:  # every append was flushed; only a failed append can be pending
                log.debug("closing %s: %s", self.path / JOURNAL, exc.strerror or exc)
        if self._lock is not None:
            fh, self._lock = self._lock, None
            # Removed while still held: a process that opened it meanwhile finds, once it gets
            # the lock, that the file is gone, and takes a fresh one (see _take_lock).
            (self.path / LOCK_FILE).unlink(missing_ok=True)
            if not self._wrote:
                # Folders made for a run that never started (bad setup) are removed again.
                for folder in self._created:
                    try:
                        folder.rmdir()
                    except OSError:
                        break
            fh.close()  # releases the lock

    def _require_lock(self) -> None:
        if self._lock is None:
            raise RuntimeError(f"{self.path}: the run folder is not claimed (call claim() first)")

    def remove(self, *names: str) -> None:
        """Delete files of the run (stale ones of a replaced run); links are removed, not followed."""
        self._require_lock()
        for name in names:
            (self.path / name).unlink(missing_ok=True)

    # -- the manifest -----------------------------------------------------------------
    def write_manifest(self, manifest: RunManifest) -> RunManifest:
        """Write ``manifest`` (masked) atomically; returns what was written."""
        self._require_lock()
        manifest = self._mask_manifest(manifest)
        payload = (manifest.model_dump_json(indent=2) + "\n").encode()
        self._write(MANIFEST, payload)
        return manifest

    def _mask_manifest(self, manifest: RunManifest) -> RunManifest:
        if not self.secrets.hits(manifest.model_dump_json()):
            return manifest
        return RunManifest.model_validate(self.secrets.mask_value(manifest.model_dump(mode="json")))

    def check_suite(self, suite_hash: str) -> None:
        """Refuse to resume a run whose suite changed since it started (its conversations
        would mix two suites)."""
        old = self.previous
        if old is not None and old.suite_hash is not None and old.suite_hash != suite_hash:
            raise ConfigError(
                f"the suite changed since this run started (suite hash {suite_hash}, the run's is "
                f"{old.suite_hash}); start a new run with another --out",
                field="--resume",
            )

    # -- the journal ------------------------------------------------------------------
    def begin(self, manifest: RunManifest) -> list[ConversationResult]:
        """Write the manifest, then open the journal for appending; returns the conversations
        already in it (a resume). A torn last line is cut off; a line of another run or
        suite is refused."""
        self._require_lock()
        path = self.path / JOURNAL
        lines, good_end, note = self._scan(manifest.run_id)
        if self.previous is not None:
            remove_stale_temps(self.path)  # leftovers of writes a crash interrupted
        # Manifest first: a folder with a journal but no manifest could not be resumed.
        manifest = self.write_manifest(manifest)
        self._run_id, self._suite_hash = manifest.run_id, manifest.suite_hash
        try:
            fh = open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        except OSError as exc:
            raise RunFolderError(f"cannot open: {exc.strerror or exc}", file=str(path)) from None
        if note is not None:
            log.warning("%s", note)
            if "no newline" in note:
                fh.write(b"\n")
            else:
                fh.truncate(good_end)
        self._journal = fh
        return [r for _, r in lines]

    def journal_so_far(self, run_id: str) -> list[ConversationResult]:
        """The conversations already in the journal (a resume), every line checked to belong
        to run ``run_id`` and to the run's suite; nothing is written."""
        self._require_lock()
        return [r for _, r in self._scan(run_id)[0]]

    def _scan(self, run_id: str) -> tuple[list[tuple[int, ConversationResult]], int, str | None]:
        path = self.path / JOURNAL
        try:
            lines, good_end, note = scan_journal(path)
        except OSError as exc:
            raise RunFolderError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
        expected_hash = self.previous.suite_hash if self.previous is not None else None
        for lineno, r in lines:
            if r.run_id != run_id:
                raise RunFolderError(
                    f"journal line of another run ('{r.run_id}', this run is '{run_id}'); "
                    "remove it or start a new run",
                    file=str(path),
                    line=lineno,
                )
            if expected_hash is not None and r.suite_hash != expected_hash:
                raise RunFolderError(
                    f"journal line of another suite (suite hash {r.suite_hash}, this run's is "
                    f"{expected_hash}); remove it or start a new run",
                    file=str(path),
                    line=lineno,
                )
        return lines, good_end, note

    def append(self, result: ConversationResult) -> ConversationResult:
        """Append one finished conversation (stamped, masked), flushed and fsynced; returns
        what was written."""
        return self.append_many([result])[0]

    def append_many(self, results: Sequence[ConversationResult]) -> list[ConversationResult]:
        """Append finished conversations (stamped, masked) with one write and one fsync (a
        batch from a worker: the fsync, not the line, is what a journal append costs);
        returns what was written. Nothing is written if one of them cannot be serialised."""
        if self._journal is None:
            raise RuntimeError(f"{self.path}: the journal is not open (call begin() first)")
        prepared = [self._prepare(r) for r in results]
        try:
            self._journal.write(b"".join(line for _, line in prepared))
            self._journal.flush()
            os.fsync(self._journal.fileno())
        except OSError as exc:  # disk full: name the journal (a torn tail is cut on resume)
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path / JOURNAL)) from None
        return [r for r, _ in prepared]

    def write_journal(self, manifest: RunManifest, results: Sequence[ConversationResult]) -> list[ConversationResult]:
        """Write a whole journal at once, atomically (an import or a re-scoring, which cannot
        be cut short halfway); writes the manifest first. Returns what was written."""
        self._require_lock()
        manifest = self.write_manifest(manifest)
        self._run_id, self._suite_hash = manifest.run_id, manifest.suite_hash
        prepared = [self._prepare(r) for r in results]
        payload = b"".join(line for _, line in prepared)
        self._write(JOURNAL, payload)
        return [r for r, _ in prepared]

    def _prepare(self, result: ConversationResult) -> tuple[ConversationResult, bytes]:
        """The one masking point of a conversation: stamped with the run, PII masked when
        asked, every secret masked."""
        result = result.model_copy(update={"run_id": self._run_id or result.run_id, "suite_hash": self._suite_hash})
        if self.redact_pii:
            from evalkit.core.redact import redact_conversation  # the PII detectors load only when asked

            result = redact_conversation(result)
        line = result.model_dump_json()
        if self.secrets.hits(line):
            result = ConversationResult.model_validate(self.secrets.mask_value(result.model_dump(mode="json")))
            line = result.model_dump_json()
        return result, line.encode() + b"\n"

    # -- outputs ----------------------------------------------------------------------
    def finish(self, run: RunResult, renderers: Sequence[Renderer] = ()) -> RunResult:
        """Write every file derived from the journal (tables, ``summary.json``, then each
        renderer's file) and the manifest last, so ``status: complete`` only appears once
        everything is on disk. ``run.conversations`` are those :meth:`append` /
        :meth:`write_journal` returned. Returns the run as written."""
        self._require_lock()
        run = run.model_copy(update={"manifest": self._mask_manifest(run.manifest)})
        self.write_tables(run)
        for render in renderers:
            render(run, self.path)
        self.write_manifest(run.manifest)
        return run

    def write_tables(self, run: RunResult) -> list[Path]:
        """``results.parquet``, ``verdicts.parquet`` and ``summary.json``; returns them."""
        self._require_lock()
        table = conversation_table(run)  # built once: results.parquet and every metric of summary.json
        _write_parquet(self.path / RESULTS, table)
        _write_parquet(self.path / VERDICTS, verdicts_frame(run))
        write_json(self.path / SUMMARY, summary_dict(run, table))
        self._wrote = True
        return [self.path / RESULTS, self.path / VERDICTS, self.path / SUMMARY]

    def write_file(self, name: str, data: bytes) -> Path:
        """Write one more file of the run (``gate.json``, ``scenarios.yaml``...) atomically."""
        self._require_lock()
        return self._write(name, data)

    def write_json(self, name: str, data: Any) -> Path:
        """:meth:`write_file` of ``data`` as indented UTF-8 JSON (masked)."""
        payload = json.dumps(self.secrets.mask_value(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        return self.write_file(name, payload.encode())

    def _write(self, name: str, data: bytes) -> Path:
        # A temp file and a rename: a link at ``name`` is replaced, never followed.
        path = self.path / name
        atomic_write(path, lambda fh: fh.write(data))
        self._wrote = True
        return path


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda fh: frame.to_parquet(fh, index=False))


def _describe_holder(fh: IO[bytes]) -> str:
    try:
        fh.seek(0)
        info = json.loads(fh.read(4096) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "holder unknown"
    text = f"pid {info.get('pid')} on {info.get('host') or '?'} since {info.get('started') or '?'}"
    command = " ".join(str(info.get("command") or "").split())
    if command:
        text += f": {command[:120]}"
    return text

