"""What the commands print to a person: counted nouns, side names in a comparison, an
``--out`` that is a file, a fast ``evalkit --help`` and the benchmarks' missing-data line."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _results_factory import conv, run, write_run_folder

from evalkit.core._plural import plural
from evalkit.metrics.compare import compare_runs, render_comparison_markdown
from evalkit.metrics.gate import evaluate_gate, render_gate_markdown, render_gate_table
from evalkit.reports.markdown import render_summary_markdown
from evalkit.scenarios.models import GateConfig

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "openai", "deepeval", "plotly", "numpy", "httpx")


def _main(*args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    from evalkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    for key in list(os.environ):
        if key.startswith("EVALKIT_") or key == "GITHUB_STEP_SUMMARY":
            monkeypatch.delenv(key)
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    code = exc.value.code
    return code if isinstance(code, int) else 0, out.getvalue(), err.getvalue()


def test_plural_counts() -> None:
    assert plural(1, "check") == "1 check"
    assert plural(0, "check") == "0 checks"
    assert plural(2, "fix", "fixes") == "2 fixes"
    assert plural(1240, "conversation", thousands=True) == "1,240 conversations"


def test_one_of_everything_reads_in_the_singular() -> None:
    one = run([conv("s1", passed=False)], run_id="cand")
    base = run([conv("s1", passed=True)], run_id="base")
    gate = evaluate_gate(one, GateConfig(min={"task_completion_rate": 0.9}, no_new_failures=True), baseline=base)
    texts = [render_gate_table(gate), render_gate_markdown(gate), render_summary_markdown(one, gate=gate)]
    cmp = compare_runs(base, one, base_path="runs/main", cand_path="runs/pr")
    texts.append(render_comparison_markdown(cmp))
    joined = "\n".join(texts)
    for wrong in ("1 checks", "1 conversations", "1 scenarios", "1 paired conversations", "1 regressions"):
        assert wrong not in joined
    assert "of 2 checks" in render_gate_table(gate) and "1 conversation" in joined


def test_incomplete_run_detail_is_singular() -> None:
    r = run([conv("s1")])
    r.manifest.status = "interrupted"
    r.manifest.n_planned = 1
    gate = evaluate_gate(r, GateConfig())
    assert gate.checks[0].detail.endswith("1 of 1 conversation")


def test_two_runs_of_one_variant_are_named_by_their_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_run_folder(tmp_path / "main", run([conv("s1", passed=True)], run_id="r-main"))
    write_run_folder(tmp_path / "pr", run([conv("s1", passed=False)], run_id="r-pr"))
    monkeypatch.chdir(tmp_path)
    code, out, err = _main("compare", "main", "pr", "--out", "cmp", monkeypatch=monkeypatch)
    assert code == 0, err
    assert "main -> pr: 1 regression, 0 fixes;" in out
    assert "default -> default" not in out
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert md.startswith("## evalkit comparison: main → pr")


def test_out_that_is_a_file_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_run_folder(tmp_path / "main", run([conv("s1")], run_id="r-main"))
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    suite = ROOT / "datasets" / "support" / "faq.yaml"
    for args in (
        ("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--out", "afile"),
        ("score", "main", "--out", "afile"),
        ("import", "openai-messages", "x.jsonl", "--out", "afile"),
        ("compare", "main", "main", "--out", "afile"),
    ):
        code, out, err = _main(*args, monkeypatch=monkeypatch)
        assert code == 2, args
        assert err.count("\n") == 1 and "'afile' is a file, not a folder" in err, (args, err)
        assert "File exists" not in err
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_os_file_exists_error_says_file_not_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback for any command: mkdir over a file reads as 'is a file, not a folder'."""
    import evalkit.cli as cli_module

    (tmp_path / "afile").write_text("x")

    def boom(*args: object, **kwargs: object) -> None:
        os.mkdir(tmp_path / "afile")

    monkeypatch.setattr(cli_module.cli, "main", boom)
    code, _, err = _main("run", monkeypatch=monkeypatch)
    assert code == 2 and err == f"evalkit: error: {tmp_path / 'afile'}: is a file, not a folder\n"


def test_help_imports_no_heavy_library() -> None:
    """`evalkit --help` lists the commands without importing them (it took 1.8 s when it
    imported pandas, openai and plotly through every command module). Timing lives in
    benchmarks/cli_startup.py; this checks the cause."""
    code = (
        "import sys\n"
        "import evalkit.cli\n"
        f"assert not [m for m in {HEAVY!r} if m in sys.modules], 'import evalkit.cli'\n"
        "try:\n"
        "    evalkit.cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    *help_lines, last = proc.stdout.strip().splitlines()
    assert json.loads(last) == []
    listing = "\n".join(help_lines)
    for name in ("run", "gate", "compare", "report", "validate", "selftest"):
        assert f"\n  {name} " in listing


def test_run_help_does_not_load_the_model_client() -> None:
    """`evalkit run --help` (and an offline run's start-up) imported openai through the model
    options: 0.65 s of the command's start-up. The client loads when a model is configured."""
    code = (
        "import json, sys\n"
        "import evalkit.cli\n"
        "try:\n"
        "    evalkit.cli.main(['run', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in ('openai', 'evalkit.llm.client') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_help_lists_every_command_that_exists() -> None:
    from evalkit.cli import COMMANDS

    for name, entry in COMMANDS.items():
        assert importlib.util.find_spec(entry.module) is not None, name
        assert entry.help.endswith(".") and len(entry.help) <= 70, name


def _load_benchmark(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("name", "source"), [("csat_uss", "user-satisfaction-simulation"),
                                              ("tau_agreement", "sierra-research/tau-bench")])
def test_benchmark_without_shared_data_says_where_it_comes_from(
    name: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load_benchmark(name)
    monkeypatch.setattr(bench, "DATA", tmp_path / "no-such-data")
    assert bench.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and source in err and str(tmp_path / "no-such-data") in err


def _suite(folder: Path, n_failing: int) -> Path:
    folder.mkdir()
    lines = ["scenarios:"]
    for i in range(n_failing):
        lines.append(f"  - id: f{i:02d}\n    user: {{script: [hello]}}\n    expect:\n      - said: {{contains: refund}}")
    lines.append("  - id: ok\n    user: {script: [hello, again]}\n    expect:\n      - said: {contains: hello}")
    (folder / "scenarios.yaml").write_text("\n".join(lines) + "\n")
    return folder


def test_run_lists_failed_and_errored_conversations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like pytest's short summary: scenario, trial and the first failing check, one line each."""
    _suite(tmp_path / "suite", 2)
    monkeypatch.chdir(tmp_path)
    code, out, err = _main("run", "suite", "--agent", "evalkit.testing.agents:EchoAgent", "--out", "r",
                           "--trials", "2", "--no-progress", monkeypatch=monkeypatch)
    assert code == 0, err
    block = out.split("failed and errored conversations:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [ln.split(": ", 1)[0] for ln in block] == [
        "  FAILED f00 trial 0", "  FAILED f00 trial 1", "  FAILED f01 trial 0", "  FAILED f01 trial 1",
    ]
    assert block[0].startswith("  FAILED f00 trial 0: said(refund): expected the agent to say 'refund'")
    # An agent that raises (on a second turn: one that never answers at all is a configuration
    # error, exit 2): ERROR with its error; variants are named when there are several.
    code, out, err = _main("run", "suite", "--variant", "echo=evalkit.testing.agents:EchoAgent",
                           "--variant", "broken=evalkit.testing.agents:FlakyAgent?turns=2", "--out", "r2",
                           "--no-progress", monkeypatch=monkeypatch)
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith("  ERROR ") or ln.startswith("  FAILED ")]
    assert "  ERROR  broken ok trial 0: agent error: " in "\n".join(lines)
    assert "flaky agent failed on turn 2" in "\n".join(lines)
    assert "  FAILED echo f00 trial 0: said(refund): " in "\n".join(lines)


def test_run_caps_the_failure_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(tmp_path / "suite", 13)
    monkeypatch.chdir(tmp_path)
    code, out, err = _main("run", "suite", "--agent", "evalkit.testing.agents:EchoAgent", "--out", "r",
                           "--no-progress", monkeypatch=monkeypatch)
    assert code == 0, err
    lines = out.split("failed and errored conversations:\n", 1)[1].splitlines()
    assert sum(ln.startswith("  FAILED ") for ln in lines) == 10
    assert "  ... and 3 more (all of them: report.html in the run folder)" in lines
    # Nothing failed: no list at all.
    code, out, _ = _main("run", "suite", "--agent", "evalkit.testing.agents:EchoAgent", "--out", "r3",
                         "--tag", "none-such", "--no-progress", monkeypatch=monkeypatch)
    assert "failed and errored" not in out
