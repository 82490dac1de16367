"""The run folder's files: their names, how each is written safely, and how they are read back.

Writing a run folder (lock, manifest, journal, outputs) is :class:`evalkit.run.runfolder.RunFolder`'s
job; this module holds the file formats it and every reader share.

``conversations.jsonl`` is the journal (one finished conversation per line, flushed and
fsynced as it is written): it is the resume point and the source every other file is
derived from. ``manifest.json``, ``results.parquet``, ``verdicts.parquet`` and
``summary.json`` are written atomically (temp file + fsync + rename), so a reader never
sees half a file, even after a crash.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, Any

import pandas as pd
from pydantic import ValidationError

from evalkit.core.errors import RunFolderError
from evalkit.core.files import atomic_write
from evalkit.core.results import ConversationResult, RunManifest, RunResult
from evalkit.core.untrusted import clean_value

__all__ = [
    "MANIFEST",
    "JOURNAL",
    "RESULTS",
    "VERDICTS",
    "SUMMARY",
    "SCENARIOS_FILE",
    "VERDICT_COLUMNS",
    "write_json",
    "open_nofollow",
    "read_manifest",
    "scan_journal",
    "read_journal",
    "load_run",
    "verdicts_frame",
    "summary_dict",
]

log = logging.getLogger("evalkit")

MANIFEST = "manifest.json"
JOURNAL = "conversations.jsonl"
RESULTS = "results.parquet"
VERDICTS = "verdicts.parquet"
SUMMARY = "summary.json"
# The scenarios an imported run was scored against (evalkit import writes it; score reads it).
SCENARIOS_FILE = "scenarios.yaml"


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented UTF-8 JSON."""
    payload = (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()
    atomic_write(path, lambda fh: fh.write(payload))


def read_manifest(run_dir: Path) -> RunManifest:
    path = Path(run_dir) / MANIFEST
    if not Path(run_dir).is_dir():
        problem = "is a file, not a run folder" if Path(run_dir).exists() else "no such run folder"
        raise RunFolderError(problem, file=str(run_dir))
    if not path.is_file():
        raise RunFolderError(f"not a run folder (no {MANIFEST})", file=str(run_dir))
    try:
        return RunManifest.model_validate_json(_read_nofollow(path))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        raise RunFolderError(f"corrupt manifest: {err['msg']}", file=str(path), field=loc) from None
    except OSError as exc:
        raise RunFolderError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None


def open_nofollow(path: Path, flags: int = os.O_RDONLY) -> IO[bytes]:
    """Open ``path`` as a binary file, refusing a symbolic link (``O_NOFOLLOW``): nothing in
    a run folder is ever followed to somewhere else. ``flags`` as for :func:`os.open`."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | nofollow | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        if nofollow and os.path.islink(path):
            raise OSError(exc.errno, "is a symbolic link (evalkit never follows links inside a run folder)",
                          str(path)) from None
        raise
    if not flags & (os.O_WRONLY | os.O_RDWR):
        mode = "rb"
    elif flags & os.O_APPEND:
        mode = "a+b" if flags & os.O_RDWR else "ab"
    else:
        mode = "r+b" if flags & os.O_RDWR else "wb"
    return os.fdopen(fd, mode)


def _read_nofollow(path: Path) -> bytes:
    with open_nofollow(path) as fh:
        return fh.read()


# -- the journal -----------------------------------------------------------------------


def read_journal(path: Path) -> tuple[list[ConversationResult], int, str | None]:
    """Conversations in the journal, the byte length of its valid part, and a note when a
    torn last line was dropped (a crash mid-write). Corruption elsewhere raises."""
    lines, good_end, note = scan_journal(path)
    return [r for _, r in lines], good_end, note


def scan_journal(path: Path) -> tuple[list[tuple[int, ConversationResult]], int, str | None]:
    """:func:`read_journal` with each conversation's line number. A symbolic link is refused."""
    path = Path(path)
    if not os.path.lexists(path):
        return [], 0, None
    data = _read_nofollow(path)
    results: list[tuple[int, ConversationResult]] = []
    good_end = 0
    pos = 0
    lineno = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        raw = data[pos:end]
        lineno += 1
        is_last = end >= len(data)
        if raw.strip():
            try:
                results.append((lineno, _parse_line(raw)))
            except ValidationError as exc:
                if is_last:
                    note = f"{path}:{lineno}: dropped a torn or corrupt last line ({len(raw)} bytes)"
                    return results, good_end, note
                first = exc.errors(include_url=False)[0]
                problem = (
                    "not valid JSON"
                    if first["type"] == "json_invalid"
                    else f"not a conversation: {first['msg']}"
                )
                raise RunFolderError(
                    f"corrupt journal line: {problem}", file=str(path), line=lineno
                ) from None
            if nl < 0:  # valid JSON but no newline: the final write was cut before "\n"
                return results, good_end, f"{path}:{lineno}: last line had no newline; kept"
        good_end = end
        pos = end
    return results, good_end, None


def _parse_line(raw: bytes) -> ConversationResult:
    """One journal line. A ``\\ud800`` escape (a lone surrogate: valid JSON, not valid
    Unicode) is read with U+FFFD in its place, so such a line can never block a resume."""
    try:
        return ConversationResult.model_validate_json(raw)
    except ValidationError as exc:
        if b"\\u" not in raw or exc.errors(include_url=False)[0]["type"] != "json_invalid":
            raise
        try:
            data = json.loads(raw)  # the standard parser keeps lone surrogates; cleaned next
        except ValueError:
            raise exc from None
        return ConversationResult.model_validate(clean_value(data)[0])


def load_run(run_dir: str | Path) -> RunResult:
    """Read a run folder back (manifest + journal); one-line :class:`RunFolderError` if broken."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    journal = run_dir / JOURNAL
    if not journal.is_file():
        raise RunFolderError(f"run folder has no {JOURNAL}", file=str(run_dir))
    try:
        results, _, note = read_journal(journal)
    except OSError as exc:
        raise RunFolderError(f"cannot read: {exc.strerror or exc}", file=str(journal)) from None
    if note is not None:
        log.warning("%s", note)
    # The same key twice can only come from hand-edited or concatenated journals: last wins.
    by_key: dict[tuple[str, str, int], ConversationResult] = {}
    for r in results:
        by_key[r.key] = r
    return RunResult(manifest=manifest, conversations=list(by_key.values()))


# -- flat tables -----------------------------------------------------------------------

VERDICT_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "variant": "string",
    "scenario_id": "string",
    "trial": "Int64",
    "judge": "string",
    "spec": "string",
    "kind": "string",
    "passed": "boolean",
    "score": "Float64",
    "label": "string",
    "reason": "string",
    "skipped": "string",
    "error": "string",
    "turn": "Int64",
    "details": "string",
}


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(columns)


def verdicts_frame(run: RunResult) -> pd.DataFrame:
    """One row per verdict (columns: :data:`VERDICT_COLUMNS`)."""
    rows = []
    for c in run.conversations:
        t = c.transcript
        for v in c.verdicts:
            rows.append(
                {
                    "run_id": c.run_id or run.manifest.run_id,
                    "variant": t.variant,
                    "scenario_id": t.scenario_id,
                    "trial": t.trial,
                    "judge": v.judge,
                    "spec": v.spec,
                    "kind": v.kind.value,
                    "passed": v.passed,
                    "score": v.score,
                    "label": v.label,
                    "reason": v.reason,
                    "skipped": v.skipped,
                    "error": v.error,
                    "turn": v.turn,
                    "details": json.dumps(v.details, ensure_ascii=False, sort_keys=True)
                    if v.details
                    else None,
                }
            )
    return _frame(rows, VERDICT_COLUMNS)


def summary_dict(run: RunResult, table: pd.DataFrame | None = None) -> dict[str, Any]:
    """``summary.json``: the whole run's headline metrics at the top, then per variant.

    ``table`` is the run's conversation table when the caller built it already (the rows
    of ``results.parquet``); the metrics read only it."""
    from evalkit import __version__
    from evalkit.metrics.summary import (
        cost_note,
        evaluation_spend,
        scaled_resamples,
        summarize,
        summarize_with_ci,
    )
    from evalkit.metrics.table import conversation_table

    m = run.manifest
    table = conversation_table(run) if table is None else table
    spend = evaluation_spend(m)
    variants = list(dict.fromkeys([*m.variants, *table["variant"]]))
    return {
        "run_id": m.run_id,
        "status": m.status,
        "evalkit_version": __version__,
        "n_planned": m.n_planned,
        **summarize(table),
        # 95% CIs of the headline metrics (Wilson for rates, bootstrap otherwise).
        "ci": {k: v.model_dump() for k, v in summarize_with_ci(table, n_resamples=scaled_resamples(len(table))).items()},
        # cost_* above is the agent's; the evaluation's own spend (simulated users, judges) is here.
        "cost_note": cost_note(table, spend),
        "eval_cost_usd_total": spend["total"].cost_usd if spend else None,
        "eval_spend": {role: r.model_dump() for role, r in spend.items()},
        "variants": {name: summarize(table[(table["variant"] == name).to_numpy(dtype=bool)]) for name in variants},
    }
