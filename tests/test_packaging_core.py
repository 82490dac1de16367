"""The core install (`pip install evalkit-support`, no extras) runs, reports, compares and gates.

Each check runs in a fresh interpreter whose import system refuses the extras' packages
(deepeval, fastapi/starlette/uvicorn, scikit-learn, cosmic-ray/coverage) as if they were not
installed: nothing is uninstalled. What needs an extra says which one, in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _recorded_helpers import one_file_suite

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("deepeval", "fastapi", "starlette", "uvicorn", "sklearn", "cosmic_ray", "coverage")

# Raising from find_spec makes `import deepeval` fail exactly like a missing package does.
BLOCKER = textwrap.dedent(f"""
    import sys

    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {EXTRAS!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, _NotInstalled())
""")


def core_only(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "core_only.py"
    script.write_text(BLOCKER + textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                            "PYTHONPATH": str(ROOT)})


def evalkit(*args: str) -> str:
    """A statement running ``evalkit ARGS`` in-process and printing its exit code."""
    return textwrap.dedent(f"""
        try:
            main({list(args)!r})
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        print("EXIT", {args[0]!r}, code, flush=True)
    """)


@pytest.fixture()
def suite(tmp_path: Path) -> Path:
    return one_file_suite(tmp_path / "suite", """
        scenarios:
          - id: shipping
            user: {script: ["How long does shipping take?"]}
            expect:
              - said: {contains: business days}
              - deepeval: {metric: turn_relevancy}
    """)


def test_run_report_compare_gate_work_without_the_extras(tmp_path: Path, suite: Path) -> None:
    agent = "reference_agent:create_agent"
    code = "from evalkit.cli import main\n"
    code += evalkit("run", str(suite), "--agent", agent, "--out", "a", "--no-progress")
    code += evalkit("run", str(suite), "--agent", agent, "--out", "b", "--no-progress")
    code += evalkit("report", "a")
    code += evalkit("compare", "a", "b", "--out", "cmp.html")
    code += evalkit("gate", "a", "--min", "task_completion_rate=0.5")
    code += f"print('LOADED', sorted({{m.partition('.')[0] for m in sys.modules}} & set({EXTRAS!r})))\n"
    out = core_only(tmp_path, code)
    assert [line for line in out.stdout.splitlines() if line.startswith("EXIT")] == [
        "EXIT run 0", "EXIT run 0", "EXIT report 0", "EXIT compare 0", "EXIT gate 0"], out.stderr[-3000:]
    assert "LOADED []" in out.stdout
    row = json.loads((tmp_path / "a" / "conversations.jsonl").read_text().splitlines()[0])
    verdicts = {v["judge"]: v for v in row["verdicts"]}
    assert verdicts["said"]["passed"] is True
    deepeval = verdicts["deepeval_turn_relevancy"]
    assert deepeval["skipped"] == "deepeval not installed (pip install 'evalkit-support[deepeval]')"
    assert deepeval["passed"] is None and deepeval["score"] is None
    assert (tmp_path / "a" / "report.html").is_file() and (tmp_path / "cmp.html").is_file()


def test_what_needs_an_extra_says_which(tmp_path: Path, suite: Path) -> None:
    code = "from evalkit.cli import main\n"
    code += evalkit("run", str(suite), "--agent", "reference_agent:create_agent", "--out", "a", "--no-progress")
    (tmp_path / "labels.csv").write_text("scenario_id,trial,judge,label\nshipping,0,passed,pass\n")
    code += evalkit("calibrate", "a", "--labels", str(tmp_path / "labels.csv"))
    code += textwrap.dedent("""
        from reference_agent.__main__ import main as ref
        try:
            ref(["serve", "--port", "0"], standalone_mode=True)
        except SystemExit as exc:
            print("EXIT serve", exc.code, flush=True)
    """)
    out = core_only(tmp_path, code)
    exits = [line for line in out.stdout.splitlines() if line.startswith("EXIT")]
    assert exits == ["EXIT run 0", "EXIT calibrate 2", "EXIT serve 2"], out.stderr[-3000:]
    assert "evalkit calibrate needs scikit-learn (pip install 'evalkit-support[calibrate]')" in out.stderr
    assert "the HTTP service needs uvicorn: pip install 'evalkit-support[service]'" in out.stderr
