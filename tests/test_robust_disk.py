"""A full disk or a read-only output folder: one clear line, exit 2, no traceback, and the run
can be resumed once the problem is fixed.

Real filesystems where the machine allows it (a tiny tmpfs, a read-only tmpfs: needs root
and mount), and always an in-process variant that makes the writes fail with ENOSPC/EROFS.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _robust_helpers import cli3

from evalkit.run.runfiles import read_journal

ROOT = Path(__file__).resolve().parents[1]


def make_suite(folder: Path, n: int = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["scenarios:"]
    for i in range(n):
        lines.append(f"  - id: d{i:03d}\n    user:\n      script:\n        - say: cancel ORD-1 please {'x' * 200}")
    (folder / "scenarios.yaml").write_text("\n".join(lines) + "\n")
    (folder / "suite.yaml").write_text("agent: evalkit.testing.agents:StatefulAgent\n")
    return folder


def evalkit_proc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, env=env,
                          timeout=120)



def one_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("evalkit: error: "), lines[0]
    return lines[0]


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


# -- real filesystems ----------------------------------------------------------------------

def test_disk_full_on_a_tiny_tmpfs_then_resume(tmp_path: Path):
    suite = make_suite(tmp_path / "suite")
    with tmpfs(tmp_path / "small", "size=48k") as mnt:
        out = mnt / "run"
        full = evalkit_proc("run", str(suite), "--out", str(out), "--no-progress")
        assert full.returncode == 2
        line = one_line(full.stderr)
        assert f"{out}/conversations.jsonl: No space left on device" in line
        assert f"evalkit run --resume --out {out}" in line
        kept, _, _ = read_journal(out / "conversations.jsonl")  # whatever landed is whole
        assert 0 < len(kept) < 60
        # Make room, then resume: the run completes with every conversation once.
        subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)
        resumed = evalkit_proc("run", "--resume", "--out", str(out), "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        rows = (out / "conversations.jsonl").read_text().splitlines()
        assert len(rows) == 60 and len({json.loads(r)["transcript"]["scenario_id"] for r in rows}) == 60
        assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_read_only_folder_on_a_read_only_tmpfs(tmp_path: Path):
    suite = make_suite(tmp_path / "suite", n=3)
    good = tmp_path / "good"
    assert evalkit_proc("run", str(suite), "--out", str(good), "--no-progress").returncode == 0
    with tmpfs(tmp_path / "ro", "ro,size=48k") as mnt:
        r = evalkit_proc("run", str(suite), "--out", str(mnt / "run"), "--no-progress")
        assert r.returncode == 2 and one_line(r.stderr) == f"evalkit: error: {mnt / 'run'}: Read-only file system"
        r = evalkit_proc("report", str(good), "--out", str(mnt / "report.html"))
        assert r.returncode == 2 and one_line(r.stderr) == f"evalkit: error: {mnt / 'report.html'}: Read-only file system"
        r = evalkit_proc("compare", str(good), str(good), "--out", str(mnt / "cmp"))
        assert r.returncode == 2 and "Read-only file system" in one_line(r.stderr)


# -- in-process: the writes themselves fail --------------------------------------------------

def test_disk_full_mid_run_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """fsync starts failing with ENOSPC after 20 conversations: one line naming the journal and
    the resume command; the journal holds only whole conversations; resume completes."""
    suite = make_suite(tmp_path / "suite")
    out = tmp_path / "run"
    real_fsync = os.fsync
    calls = {"n": 0}

    def full_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 22:  # the manifest, then 20 conversations, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_fsync)
    code, _, err = cli3("run", str(suite), "--out", str(out), "--no-progress", "--concurrency", "1")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert code == 2
    line = one_line(err)
    assert f"{out / 'conversations.jsonl'}: No space left on device" in line and "--resume" in line
    kept, _, _ = read_journal(out / "conversations.jsonl")
    assert 15 <= len(kept) <= 22
    code, _, err = cli3("run", "--resume", "--out", str(out), "--no-progress")
    assert code == 0, err
    rows = (out / "conversations.jsonl").read_text().splitlines()
    assert len({json.loads(r)["transcript"]["scenario_id"] for r in rows}) == 60 == len(rows)


@pytest.mark.parametrize("err_no", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_output_files_that_cannot_be_written(err_no: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """report / compare / run's final outputs: the error names the file the user asked for."""
    import tempfile

    suite = make_suite(tmp_path / "suite", n=2)
    good = tmp_path / "good"
    assert cli3("run", str(suite), "--out", str(good), "--no-progress")[0] == 0

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(err_no, os.strerror(err_no), str(kwargs.get("dir", "?")) + "/.tmpXYZ")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = tmp_path / "out" / "report.html"
    code, _, err = cli3("report", str(good), "--out", str(target))
    assert code == 2 and one_line(err) == f"evalkit: error: {target}: {os.strerror(err_no)}"
    code, _, err = cli3("run", str(suite), "--out", str(tmp_path / "run2"), "--no-progress")
    assert code == 2 and os.strerror(err_no) in one_line(err)
    assert ".tmpXYZ" not in err
