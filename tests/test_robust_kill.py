"""SIGKILL in the middle of a run: `--resume` finishes it exactly, files are never half-written,
and a torn journal line is survived (and reported)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from evalkit.run.runfiles import read_journal
from evalkit.run.runner import RunConfig, Runner

ROOT = Path(__file__).resolve().parents[1]
N_SCENARIOS, TRIALS = 250, 2
N = N_SCENARIOS * TRIALS
# Fields of summary.json that measure time (or name the run) and so differ between two runs.
TIMING = ("latency", "ttft", "slow_turn", "duration", "run_id")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "OPENAI_"))}
    e["PYTHONPATH"] = str(ROOT)
    return e


def evalkit(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, env=env(),
                          timeout=timeout)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 deterministic conversations: a scripted user, a rules agent, deterministic judges
    (a third pass, a third fail, a third escalate)."""
    folder = tmp_path_factory.mktemp("killsuite") / "suite"
    folder.mkdir()
    lines = ["scenarios:"]
    for i in range(N_SCENARIOS):
        say, expect = [
            ("cancel ORD-1", "tool_called: cancel_order"),
            ("refund ORD-9", "said: {contains: Done}"),
            ("I want a human", "outcome: escalated"),
        ][i % 3]
        lines.append(
            f"  - id: k{i:03d}\n    user:\n      script:\n        - say: hello {i}\n        - say: {say}\n"
            f"    expect:\n      - {expect}"
        )
    (folder / "scenarios.yaml").write_text("\n".join(lines) + "\n")
    (folder / "suite.yaml").write_text(f"trials: {TRIALS}\nagent: evalkit.testing.agents:StatefulAgent\n")
    return folder


@pytest.fixture(scope="module")
def baseline(suite: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "run"
    Runner(RunConfig(suite=[suite], out=out, concurrency=4, progress=False, handle_signals=False)).run_sync()
    return out


def stable(summary: dict) -> dict:
    """summary.json without what measures time or names the run."""
    if isinstance(summary, dict):
        return {k: stable(v) for k, v in summary.items() if not any(t in k for t in TIMING)}
    return summary


def journal_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def assert_every_artifact_parses(run_dir: Path) -> list[str]:
    """Every file a reader would open is whole; returns the names checked."""
    checked = []
    for f in sorted(run_dir.iterdir()):
        if f.name.startswith("."):  # a temp file of an interrupted atomic write: never read
            continue
        if f.suffix == ".json":
            json.loads(f.read_text(encoding="utf-8"))
        elif f.suffix == ".parquet":
            pd.read_parquet(f)
        elif f.suffix == ".html":
            text = f.read_text(encoding="utf-8")
            assert text.rstrip().endswith("</html>"), f
        elif f.suffix == ".xml":
            ET.parse(f)
        elif f.suffix == ".md":
            assert f.read_text(encoding="utf-8").strip(), f
        elif f.name == "conversations.jsonl":
            read_journal(f)  # raises on corruption before the last line
        checked.append(f.name)
    return checked


def kill_mid_run(suite: Path, out: Path, at_lines: int) -> int:
    """Start `evalkit run`, SIGKILL it once the journal has ``at_lines`` conversations."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalkit", "run", str(suite), "--out", str(out), "--no-progress", "--concurrency", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
    )
    journal = out / "conversations.jsonl"
    deadline = time.monotonic() + 120
    try:
        while journal_lines(journal) < at_lines:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    return journal_lines(journal)


def test_sigkill_then_resume_equals_an_uninterrupted_run(suite: Path, baseline: Path, tmp_path: Path):
    out = tmp_path / "run"
    done = kill_mid_run(suite, out, at_lines=120)
    assert 120 <= done < N, done
    # After the kill: only whole files (manifest + journal so far); the run says it is unfinished.
    assert set(assert_every_artifact_parses(out)) >= {"manifest.json", "conversations.jsonl"}
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"

    resumed = evalkit("run", "--resume", "--out", str(out), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "complete" in resumed.stdout

    rows = [json.loads(x) for x in (out / "conversations.jsonl").read_text().splitlines()]
    keys = [(r["transcript"]["variant"], r["transcript"]["scenario_id"], r["transcript"]["trial"]) for r in rows]
    assert len(keys) == N and len(set(keys)) == N  # every scenario x trial exactly once
    assert {(s, t) for _, s, t in keys} == {(f"k{i:03d}", t) for i in range(N_SCENARIOS) for t in range(TRIALS)}

    want = json.loads((baseline / "summary.json").read_text())
    got = json.loads((out / "summary.json").read_text())
    assert stable(got) == stable(want)
    assert got["n_conversations"] == N and got["status"] == "complete"
    # Per conversation too, not just the aggregates.
    cols = ["scenario_id", "trial", "outcome", "stop_reason", "passed", "n_turns", "n_tool_calls", "csat_proxy"]
    a = pd.read_parquet(baseline / "results.parquet")[cols].sort_values(["scenario_id", "trial"]).reset_index(drop=True)
    b = pd.read_parquet(out / "results.parquet")[cols].sort_values(["scenario_id", "trial"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["extra"]["resumes"] == 1
    assert set(assert_every_artifact_parses(out)) >= {
        "manifest.json", "conversations.jsonl", "results.parquet", "verdicts.parquet", "summary.json",
        "report.html", "junit.xml", "summary.md",
    }
    print(f"\nkilled after {done}/{N} conversations; resume finished the other {N - done}")


def test_sigkill_while_writing_outputs_never_leaves_half_a_file(baseline: Path, tmp_path: Path):
    """Kill a process that rewrites every derived file in a loop, at random moments: after each
    kill every file is the old or the new one, whole."""
    run = tmp_path / "run"
    shutil.copytree(baseline, run)
    code = (
        "import sys\n"
        "from evalkit.reports.outputs import standard_outputs\n"
        "from evalkit.run.runfiles import load_run\n"
        "from evalkit.run.runfolder import Existing, RunFolder\n"
        "run = load_run(sys.argv[1])\n"
        "folder = RunFolder(sys.argv[1]).claim(Existing.update)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    folder.finish(run, standard_outputs())\n"
    )
    rng = random.Random(7)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, env=env())
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
        assert_every_artifact_parses(run)
    # A reader of the folder (report, gate) works on what the kills left; a resume also
    # sweeps the temp files the interrupted writes left behind.
    assert evalkit("report", str(run), "--no-charts").returncode == 0
    assert evalkit("run", "--resume", "--out", str(run), "--no-progress").returncode == 0
    assert not list(run.glob(".*.tmp"))
    assert_every_artifact_parses(run)


def test_torn_journal_line_is_survived_and_reported(baseline: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(baseline, run)
    journal = run / "conversations.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    # As if the machine died mid-append: 300 whole lines, then half a conversation, no newline.
    torn = lines[300][: len(lines[300]) // 2]
    journal.write_bytes(b"".join(lines[:300]) + torn)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(manifest))

    report = evalkit("report", str(run), "--no-charts")
    assert report.returncode == 0, report.stderr
    assert "conversations.jsonl:301: dropped a torn or corrupt last line" in report.stderr
    assert "Traceback" not in report.stderr
    gate = evalkit("gate", str(run), "--no-write", "--allow-incomplete", "--min", "n_conversations=1")
    assert gate.returncode == 0 and "torn" in gate.stderr, gate.stderr

    resumed = evalkit("run", "--resume", "--out", str(run), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "dropped a torn or corrupt last line" in resumed.stderr
    rows = journal.read_bytes().splitlines()
    assert len(rows) == N and all(json.loads(r) for r in rows)
    assert stable(json.loads((run / "summary.json").read_text())) == stable(
        json.loads((baseline / "summary.json").read_text())
    )


def test_whole_last_line_without_newline_is_kept(baseline: Path, tmp_path: Path):
    """The final write lost only its newline: the conversation is kept, not redone."""
    run = tmp_path / "run"
    shutil.copytree(baseline, run)
    journal = run / "conversations.jsonl"
    data = journal.read_bytes()
    lines = data.splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:400]).rstrip(b"\n"))
    results, _, note = read_journal(journal)
    assert len(results) == 400 and note is not None and "kept" in note
    resumed = evalkit("run", "--resume", "--out", str(run), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    rows = journal.read_bytes().splitlines()
    assert len(rows) == N and len({r for r in rows}) == N
    assert json.loads(rows[399])["transcript"]["scenario_id"] == json.loads(lines[399])["transcript"]["scenario_id"]
