"""CLI: run / validate / schema / list — output, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _core_helpers import script_suite, write

from evalkit.cli.schema import scenario_schema

ROOT = Path(__file__).resolve().parents[1]


def subprocess_evalkit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console entry in a fresh process (exit codes, stderr, no traceback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALKIT_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "evalkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture()
def evalkit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """``evalkit(*args, cwd=..., env=...)`` -> CompletedProcess, run in this process (fast)."""
    from evalkit.cli import main

    for key in list(os.environ):
        if key.startswith("EVALKIT_"):
            monkeypatch.delenv(key)

    def invoke(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            for key in env or {}:
                monkeypatch.delenv(key)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return invoke


def test_run_writes_the_folder_and_prints_a_summary(tmp_path: Path, evalkit) -> None:
    script_suite(tmp_path / "suite", 3, steps=2)
    write(
        tmp_path / "suite" / "more.yaml",
        "id: judged\nuser: {script: [hi]}\nexpect:\n  - said: {contains: nope}\n",
    )
    out = evalkit(
        "run",
        "suite",
        "--agent",
        "evalkit.testing.agents:EchoAgent",
        "--out",
        "r",
        "--trials",
        "2",
        "--no-progress",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # --no-progress: nothing on stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "variant",
        "n",
        "passed",
        "failed",
        "errors",
        "automation",
        "task",
        "compl.",
        "p95",
        "latency",
    ]
    assert lines[1].split()[:5] == ["default", "8", "0", "2", "0"]
    assert "complete, files in r/" in out.stdout
    for name in (
        "manifest.json",
        "conversations.jsonl",
        "results.parquet",
        "verdicts.parquet",
        "summary.json",
    ):
        assert (tmp_path / "r" / name).is_file(), name
    frame = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert len(frame) == 8 and set(frame.trial) == {0, 1}
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert (
        manifest["status"] == "complete"
        and manifest["trials"] == 2
        and manifest["command"].startswith("evalkit run")
    )


def test_run_agent_from_env_or_suite_and_variants(tmp_path: Path, evalkit) -> None:
    script_suite(tmp_path / "suite", 2, steps=1)
    env_run = evalkit(
        "run",
        "suite",
        "--out",
        "r1",
        "--no-progress",
        cwd=tmp_path,
        env={"EVALKIT_AGENT": "evalkit.testing.agents:EchoAgent"},
    )
    assert env_run.returncode == 0, env_run.stderr
    two = evalkit(
        "run",
        "suite",
        "--variant",
        "a=evalkit.testing.agents:EchoAgent",
        "--variant",
        "b=evalkit.testing.agents:SlowAgent?delay_ms=1",
        "--out",
        "r2",
        "--no-progress",
        cwd=tmp_path,
    )
    assert two.returncode == 0, two.stderr
    assert [line.split()[0] for line in two.stdout.splitlines()[1:3]] == ["a", "b"]
    assert set(pd.read_parquet(tmp_path / "r2" / "results.parquet").variant) == {"a", "b"}


def test_run_progress_lines_when_not_a_tty(tmp_path: Path, evalkit) -> None:
    script_suite(tmp_path / "suite", 2, steps=1)
    out = evalkit("run", "suite", "--agent", "evalkit.testing.agents:EchoAgent", "--out", "r", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stderr.strip().splitlines()[-1].startswith("evalkit: 2/2  passed 0  failed 0  errors 0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "suite", "--out", "r"],
            "evalkit: error: agent: no agent for scenario 's000': pass --agent SPEC",
        ),
        (
            ["run", "suite", "--agent", "nope_mod:make", "--out", "r"],
            "evalkit: error: nope_mod:make: no module named 'nope_mod'",
        ),
        (["run", "missing_dir", "--agent", "x:y"], "evalkit: error: missing_dir: no such file or folder"),
        (
            ["run", "suite", "--variant", "oops", "--out", "r"],
            "evalkit: error: --variant: 'oops' is not NAME=SPEC",
        ),
        (["run", "--resume"], "evalkit: error: --resume: --resume needs --out DIR"),
        (["run", "suite", "--agent", "x:y", "--concurrency", "0"], "Invalid value for '--concurrency'"),
        (["list", "bad.yaml"], "evalkit: error: bad.yaml:2: colour: unknown field 'colour'"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path: Path, evalkit, args: list[str], message: str) -> None:
    script_suite(tmp_path / "suite", 1, steps=1)
    write(tmp_path / "bad.yaml", "id: a\ncolour: red\nuser: {script: [hi]}\n")
    out = evalkit(*args, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_run_agent_failures_do_not_fail_the_command(tmp_path: Path, evalkit) -> None:
    script_suite(tmp_path / "suite", 2, steps=2)
    out = evalkit(
        "run",
        "suite",
        "--agent",
        "evalkit.testing.agents:FlakyAgent?mode=raise&turns=2",
        "--out",
        "r",
        "--no-progress",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split()[:5] == ["default", "2", "0", "0", "2"]
    # An agent that never answered once, failing every conversation alike, measured nothing.
    out = evalkit(
        "run",
        "suite",
        "--agent",
        "evalkit.testing.agents:FlakyAgent?mode=raise&turns=1",
        "--out",
        "r1",
        "--no-progress",
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "evalkit: error: all 2 conversations failed the same way before the agent answered once, so nothing "
        "was measured (a configuration problem, not a result): turn 1: agent raised RuntimeError: flaky agent "
        "failed on turn 1"
    )
    assert (tmp_path / "r1" / "conversations.jsonl").read_text().count("\n") == 2


def test_run_refuses_to_overwrite_and_resume_continues(tmp_path: Path, evalkit) -> None:
    script_suite(tmp_path / "suite", 2, steps=1)
    first = evalkit(
        "run",
        "suite",
        "--agent",
        "evalkit.testing.agents:EchoAgent",
        "--out",
        "r",
        "--no-progress",
        cwd=tmp_path,
    )
    assert first.returncode == 0
    again = evalkit("run", "suite", "--agent", "evalkit.testing.agents:EchoAgent", "--out", "r", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run; pass --resume" in again.stderr
    resumed = evalkit("run", "--resume", "--out", "r", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "r" / "conversations.jsonl").read_text().count("\n") == 2


def test_validate_prints_every_problem_or_nothing(tmp_path: Path, evalkit) -> None:
    write(tmp_path / "good" / "a.yaml", "id: a\nuser: {script: [hi]}\nexpect: [no_pii_leak]\n")
    ok = evalkit("validate", "good", cwd=tmp_path)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    write(tmp_path / "bad" / "a.yaml", "id: a\nuser: {script: [hi]}\nexpect: [nope]\nmax_turns: x\n")
    write(tmp_path / "bad" / "b.yaml", "id: c\nuser: {script: [hi]}\n")
    write(tmp_path / "bad" / "c.yaml", "id: c\nuser: {script: [hi]}\n")
    bad = evalkit("validate", "bad", cwd=tmp_path)
    assert bad.returncode == 2
    lines = bad.stdout.splitlines()
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in lines] == [
        "bad/a.yaml:3",
        "bad/a.yaml:4",
        "bad/c.yaml:1",
    ]
    assert "unknown judge 'nope'" in lines[0] and "duplicate scenario id 'c'" in lines[2]


def test_list_table_and_json(tmp_path: Path, evalkit) -> None:
    write(
        tmp_path / "s" / "a.yaml",
        "id: a\ntags: [x, y]\nchannel: slack\nuser:\n  script:\n    - say: hi\n      expect: [{said: {contains: hi}}]\nexpect:\n  - outcome: resolved\n",
    )
    write(tmp_path / "s" / "b.yaml", "id: b\nuser: {persona: {goal: {description: help}}}\n")
    table = evalkit("list", "s", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == ["id", "kind", "channel", "tags", "judges"]
    assert rows[1][:4] == ["a", "script", "slack", "x,y"] and "said(hi)@1" in table.stdout
    assert rows[2][:4] == ["b", "persona", "web", "-"]
    data = json.loads(evalkit("list", "s", "--json", "--tag", "x", cwd=tmp_path).stdout)
    assert [r["id"] for r in data] == ["a"] and data[0]["judges"] == ["outcome", "said(hi)@1"]


def test_schema_validates_real_files(tmp_path: Path, evalkit) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    out = evalkit("schema", "--out", "schema.json", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == ""
    schema = json.loads((tmp_path / "schema.json").read_text())
    assert schema == scenario_schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = [
        {
            "id": "a",
            "user": {"script": ["hi", {"say": "x", "expect": [{"said": {"contains": "x"}}]}]},
            "expect": [
                "no_pii_leak",
                {"outcome": "resolved"},
                {"tool_called": {"name": "t"}},
                {"my.mod:Judge": {"k": 1}},
            ],
        },
        {"scenarios": [{"id": "b", "user": {"persona": {"goal": {"description": "g"}}}}]},
    ]
    for doc in good:
        assert not list(validator.iter_errors(doc)), doc
    bad = [
        {"id": "a", "user": {"script": ["hi"]}, "colour": 1},
        {"id": "a", "user": {"script": ["hi"]}, "expect": ["not_a_judge"]},
        {"id": "a", "user": {"script": ["hi"]}, "expect": [{"tool_called": {"name": "t", "bogus": 1}}]},
        {"id": "a", "user": {"script": ["hi"]}, "expect": [{"said": {}, "handoff": True}]},
    ]
    for doc in bad:
        assert list(validator.iter_errors(doc)), doc
    suite = json.loads(evalkit("schema", "--suite", cwd=tmp_path).stdout)
    assert suite["title"] == "evalkit suite.yaml"
    assert not list(
        jsonschema.Draft202012Validator(suite).iter_errors(
            {"agent": "x:y", "judges": ["no_pii_leak"], "trials": 2}
        )
    )


def test_real_process_errors_have_no_traceback(tmp_path: Path) -> None:
    write(tmp_path / "bad.yaml", "id: a\ncolour: red\nuser: {script: [hi]}\n")
    out = subprocess_evalkit("run", "bad.yaml", "--agent", "x:y", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(
        "evalkit: error: bad.yaml:2: colour: unknown field 'colour' (known: id, title"
    )
    assert out.stderr.count("\n") == 1
    bad = subprocess_evalkit("validate", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout.startswith("bad.yaml:2: colour: unknown field 'colour'")


def test_real_process_sigint_exits_130_with_resume_hint(tmp_path: Path) -> None:
    import signal
    import time

    script_suite(tmp_path / "suite", 40, steps=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALKIT_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalkit",
            "run",
            "suite",
            "--out",
            "r",
            "--concurrency",
            "2",
            "--no-progress",
            "--agent",
            "evalkit.testing.agents:SlowAgent?delay_ms=100",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = tmp_path / "r" / "conversations.jsonl"
    deadline = time.monotonic() + 60
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted, files in r/" in stdout and "continue with: evalkit run --resume --out r" in stdout
    assert "Traceback" not in stderr
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["status"] == "interrupted"
