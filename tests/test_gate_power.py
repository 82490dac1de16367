"""The max-drop check says when its sample is too small to show a drop of the allowed size
("underpowered"), and fails on it only when asked (``--fail-underpowered``)."""

from __future__ import annotations

import io
import sys

import pytest
from _results_factory import conv, run, write_run_folder

from evalkit.metrics.compare import compare_runs
from evalkit.metrics.gate import (
    detectable_drop,
    evaluate_gate,
    render_gate_markdown,
    render_gate_table,
    scenarios_needed,
)
from evalkit.scenarios.models import GateConfig

DROP = GateConfig(max_drop={"task_completion_rate": 0.05})


def _runs(n_scenarios: int, trials: int, broken: int = 1):
    """A baseline that passes everything and a candidate whose first ``broken`` scenarios
    fail every trial."""
    base = run([conv(f"s{s}", trial=t) for s in range(n_scenarios) for t in range(trials)], run_id="base")
    cand = run(
        [conv(f"s{s}", trial=t, passed=s >= broken) for s in range(n_scenarios) for t in range(trials)],
        run_id="cand",
    )
    return base, cand


def test_one_broken_scenario_in_a_small_suite_is_reported_underpowered() -> None:
    """The issue's case: 100% -> 0% on one scenario over 5 trials passed --max-drop 5 pp
    without a word (the CI over scenarios includes 0)."""
    base, cand = _runs(13, 5)
    result = evaluate_gate(cand, DROP, baseline=base)
    check = result.checks[0]
    assert check.passed is True and check.delta == pytest.approx(-5 / 65)
    assert check.underpowered is not None and check.underpowered.startswith("underpowered: ")
    table = render_gate_table(result)
    assert "PASS (dropped more than allowed, but within noise (CI includes 0); underpowered: " in table
    assert "gate PASSED (1 check underpowered" in table and "--fail-underpowered" in table
    assert "underpowered: " in render_gate_markdown(result)
    failing = evaluate_gate(cand, DROP, baseline=base, fail_underpowered=True)
    assert not failing.passed and failing.checks[0].passed is False
    assert "FAIL (dropped more than allowed, but within noise (CI includes 0); underpowered: " in render_gate_table(failing)


def test_the_note_does_not_depend_on_a_drop_being_seen() -> None:
    """Power is about what the sample *could* show: an unchanged candidate on 2 scenarios x 5
    trials could not show a 5 pp drop either (the CI can exclude 0 only if both scenarios got
    worse: 2 of 10 conversations, 20 pp)."""
    base, _ = _runs(2, 5)
    same = run([conv(f"s{s}", trial=t) for s in range(2) for t in range(5)], run_id="same")
    check = evaluate_gate(same, DROP, baseline=base).checks[0]
    assert check.passed is True and check.delta == 0
    assert check.underpowered is not None and "about 20.0 pp" in check.underpowered
    assert "2 or more of them got worse" in check.underpowered


def test_a_large_enough_suite_is_not_underpowered() -> None:
    base, cand = _runs(100, 5)
    result = evaluate_gate(cand, DROP, baseline=base)
    assert result.checks[0].passed is True and result.checks[0].underpowered is None
    assert "underpowered" not in render_gate_table(result)
    assert evaluate_gate(cand, DROP, baseline=base, fail_underpowered=True).passed


def test_a_failed_check_is_never_called_underpowered() -> None:
    base, cand = _runs(40, 5, broken=20)
    check = evaluate_gate(cand, DROP, baseline=base, fail_underpowered=True).checks[0]
    assert check.passed is False and check.underpowered is None


def test_one_scenario_in_common_cannot_show_a_drop() -> None:
    base, _ = _runs(1, 5)
    same = run([conv("s0", trial=t) for t in range(5)], run_id="same")
    check = evaluate_gate(same, DROP, baseline=base).checks[0]
    assert check.underpowered == (
        "underpowered: 1 scenario in common: a CI over scenarios has no spread, so this test cannot tell a "
        "drop from noise; add scenarios"
    )


@pytest.mark.parametrize(("k", "m"), [(2, 2), (3, 3), (5, 3), (13, 4), (40, 4), (200, 4)])
def test_scenarios_needed_for_the_bootstrap_ci_to_exclude_zero(k: int, m: int) -> None:
    """The smallest number of scenarios that must get worse, checked against the gate's own
    bootstrap: m of them (one conversation each) can be shown, m - 1 cannot."""
    def case(n_worse: int):  # noqa: ANN202
        base = run([conv(f"s{s}") for s in range(k)], run_id="base")
        cand = run([conv(f"s{s}", passed=s >= n_worse) for s in range(k)], run_id="cand")
        return compare_runs(base, cand).metric("task_completion_rate")

    assert scenarios_needed(k, 0.95) == m
    assert case(m).ci_excludes_zero()
    assert not case(m - 1).ci_excludes_zero()
    smallest, why = detectable_drop(case(0), n_scenarios=k, confidence=0.95)  # nothing changed: no spread
    assert smallest == pytest.approx(m / k) and f"only when {m} or more" in why


def test_cli_flag(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.cli import main

    base, cand = _runs(13, 5)
    write_run_folder(tmp_path / "base", base)
    write_run_folder(tmp_path / "cand", cand)

    def gate(*extra: str) -> tuple[int, str]:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", io.StringIO())
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        with pytest.raises(SystemExit) as exc:
            main(["gate", str(tmp_path / "cand"), "--baseline", str(tmp_path / "base"), "--no-suite",
                  "--max-drop", "task_completion_rate=0.05", *extra])
        return int(exc.value.code or 0), out.getvalue()

    code, out = gate()
    assert code == 0 and "underpowered: " in out
    code, out = gate("--fail-underpowered")
    assert code == 1 and "gate FAILED (1 of 1 check failed)" in out
    assert "underpowered" in (tmp_path / "cand" / "summary.md").read_text()
