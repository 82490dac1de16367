"""evalkit gate: thresholds, the CI-based regression rule, exit codes, step summary."""

from __future__ import annotations

import json

import pytest
from _results_factory import conv, run, write_run_folder

from evalkit.core.errors import ConfigError
from evalkit.metrics.gate import evaluate_gate, parse_threshold, render_gate_markdown, render_gate_table
from evalkit.scenarios.models import GateConfig


def _convs(fail: set[int] = frozenset(), *, n: int = 40, variant: str = "default", lat: float = 100.0):
    return [
        conv(f"s{i}", variant=variant, passed=i not in fail, latencies=(lat, lat * 1.5), csat=4.0)
        for i in range(n)
    ]


def _invoke(args, monkeypatch, env=None):
    """Run `evalkit gate` through the real entry point; returns (exit code, stdout, stderr)."""
    import io
    import sys

    from evalkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as exc:
        main(["gate", *args])
    return exc.value.code, out.getvalue(), err.getvalue()


def test_parse_threshold_accepts_percent_and_rejects_unknown_metric():
    assert parse_threshold("task_completion_rate=85%") == ("task_completion_rate", pytest.approx(0.85))
    assert parse_threshold("pass_hat_3=0.5") == ("pass_hat_3", 0.5)
    with pytest.raises(ConfigError, match="unknown metric 'task_completion'.*valid: .*task_completion_rate"):
        parse_threshold("task_completion=0.8")
    with pytest.raises(ConfigError, match="METRIC=VALUE"):
        parse_threshold("task_completion_rate")
    with pytest.raises(ConfigError, match="not a number"):
        parse_threshold("latency_p95_ms=fast", kind="max")
    with pytest.raises(ConfigError, match="cannot have a max-drop"):
        parse_threshold("n_conversations=1", kind="max_drop")


def test_min_max_checks_use_point_values():
    r = run(_convs(fail={0, 1, 2, 3}))  # 90% pass
    res = evaluate_gate(r, GateConfig(min={"task_completion_rate": 0.85}, max={"latency_p95_ms": 200}))
    assert res.passed and [c.verdict for c in res.checks] == ["PASS", "PASS"]
    res = evaluate_gate(r, GateConfig(min={"task_completion_rate": 0.95}, max={"latency_p95_ms": 120}))
    assert not res.passed and res.n_failed == 2
    table = render_gate_table(res)
    assert "task_completion_rate" in table and "90.0% [" in table and ">= 95.0%" in table and "FAIL" in table


def test_unmeasured_metric_fails_but_offline_cost_is_skipped():
    r = run([conv(csat=None)])
    res = evaluate_gate(
        r, GateConfig(min={"csat_proxy_mean": 3.5}, max={"cost_per_conversation_usd": 0.05, "cost_usd_total": 1})
    )
    csat, cost, total = res.checks
    assert csat.passed is False and "not measured" in csat.detail
    assert cost.passed is None and "offline run: no model cost" in cost.detail
    assert total.passed is None and "$1.0000" in render_gate_table(res)
    assert not res.passed


def test_regression_rule_needs_drop_beyond_threshold_and_ci_excluding_zero():
    base = run(_convs(fail=set()))
    # Small noisy drop (2 of 40 = 5 pp): exceeds a 1 pp max-drop, but the CI includes 0.
    noisy = run(_convs(fail={3, 7}), run_id="run-2")
    res = evaluate_gate(noisy, GateConfig(max_drop={"task_completion_rate": 0.01}), baseline=base)
    (check,) = res.checks
    assert check.passed is True and "within noise" in check.detail
    assert check.delta == pytest.approx(-0.05) and check.delta_ci_low < 0 <= check.delta_ci_high
    # Big drop (30 pp): fails.
    bad = run(_convs(fail=set(range(12))), run_id="run-3")
    res = evaluate_gate(bad, GateConfig(max_drop={"task_completion_rate": 0.05}), baseline=base)
    assert not res.passed and res.checks[0].delta_ci_high < 0
    # Same big drop but a generous max-drop: passes.
    res = evaluate_gate(bad, GateConfig(max_drop={"task_completion_rate": 0.4}), baseline=base)
    assert res.passed
    # Lower-is-better metric: latency up 3x fails a 50 ms max-drop.
    slow = run(_convs(lat=300.0), run_id="run-4")
    res = evaluate_gate(slow, GateConfig(max_drop={"latency_p95_ms": 50}), baseline=base)
    assert not res.passed and res.checks[0].delta > 0


def test_no_new_failures_lists_scenarios():
    base = run(_convs(fail={1}))
    cand = run(_convs(fail={5, 6}), run_id="run-2")
    res = evaluate_gate(cand, GateConfig(no_new_failures=True), baseline=base)
    assert not res.passed and res.new_failures == ["s5", "s6"]
    assert "s5, s6" in res.checks[0].detail
    fixed_only = run(_convs(fail=set()), run_id="run-3")
    assert evaluate_gate(fixed_only, GateConfig(no_new_failures=True), baseline=base).passed


def test_baseline_checks_without_baseline():
    r = run(_convs())
    res = evaluate_gate(r, GateConfig(no_new_failures=True, max_drop={"csat_proxy_mean": 0.1}))
    assert res.passed and all(c.passed is None for c in res.checks)
    with pytest.raises(ConfigError, match="need --baseline"):
        evaluate_gate(r, GateConfig(no_new_failures=True), require_baseline=True)


def test_ab_in_one_run():
    r = run(_convs(variant="A") + _convs(fail=set(range(15)), variant="B"))
    res = evaluate_gate(r, GateConfig(max_drop={"task_completion_rate": 0.05}), variant="B", baseline=r, baseline_variant="A")
    assert not res.passed and res.baseline_variant == "A"
    with pytest.raises(ConfigError, match="has variants A, B"):
        evaluate_gate(r, GateConfig())


# --- the command ------------------------------------------------------------------------------


def test_cli_exit_codes_and_table(tmp_path, monkeypatch):
    good = write_run_folder(tmp_path / "good", run(_convs(fail={0})))
    code, out, _ = _invoke([str(good), "--min", "task_completion_rate=0.9", "--max", "latency_p95_ms=500"], monkeypatch)
    assert code == 0
    assert "gate PASSED" in out and "latency_p95_ms" in out
    saved = json.loads((good / "gate.json").read_text())
    assert saved["checks"][0]["passed"] is True
    code, out, _ = _invoke([str(good), "--min", "task_completion_rate=99%"], monkeypatch)
    assert code == 1 and "gate FAILED (1 of 1 check failed)" in out


def test_cli_gate_verdict_and_each_check_reach_report_html(tmp_path, monkeypatch):
    folder = write_run_folder(tmp_path / "r", run(_convs(fail={0, 1})))
    report = folder / "report.html"
    assert "CI gate" not in report.read_text()  # made by the run, before any gate
    code, _, _ = _invoke([str(folder), "--min", "task_completion_rate=0.99", "--max", "latency_p95_ms=500",
                          "--no-write"], monkeypatch)
    assert code == 1 and "CI gate" not in report.read_text()  # --no-write touches nothing
    code, _, _ = _invoke([str(folder), "--min", "task_completion_rate=0.99", "--max", "latency_p95_ms=500"],
                         monkeypatch)
    assert code == 1
    html = report.read_text()
    assert "CI gate: FAILED" in html and "CI gate failed: 1 of 2 checks passed" in html
    table = html[html.index('<table class="gate-table">'):]
    table = table[: table.index("</table>")]
    assert "task_completion_rate" in table and "latency_p95_ms" in table


def test_cli_usage_errors_exit_2_with_one_line(tmp_path, monkeypatch):
    good = write_run_folder(tmp_path / "good", run(_convs()))
    code, _, err = _invoke([str(good), "--min", "completion=0.9"], monkeypatch)
    assert code == 2
    assert err.count("\n") == 1 and "unknown metric 'completion'" in err and "task_completion_rate" in err
    code, _, err = _invoke([str(tmp_path / "missing")], monkeypatch)
    assert code == 2 and "no such run folder" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    code, _, err = _invoke([str(broken)], monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "corrupt manifest" in err
    code, _, err = _invoke([str(good), "--no-new-failures"], monkeypatch)
    assert code == 2 and "--baseline" in err


def test_cli_baseline_and_step_summary(tmp_path, monkeypatch):
    base = write_run_folder(tmp_path / "base", run(_convs()))
    cand = write_run_folder(tmp_path / "cand", run(_convs(fail=set(range(10))), run_id="run-2"))
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    code, out, _ = _invoke(
        [str(cand), "--baseline", str(base), "--max-drop", "task_completion_rate=0.05", "--no-new-failures"],
        monkeypatch,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert code == 1
    assert "vs baseline run-1" in out and "newly failing: s0, s1" in out
    md = summary.read_text()
    assert md.startswith("earlier step\n")  # appended, not overwritten
    assert "### ❌ evalkit gate failed" in md and "| max_drop | task_completion_rate |" in md


def test_cli_reads_thresholds_from_suite_yaml(tmp_path, monkeypatch):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "suite.yaml").write_text("name: s\ngate:\n  min:\n    task_completion_rate: 0.95\n")
    r = run(_convs(fail={0, 1, 2, 3}))
    r.manifest.suites = [str(suite)]
    folder = write_run_folder(tmp_path / "run", r)
    code, out, err = _invoke([str(folder)], monkeypatch)
    assert code == 1 and "thresholds from" in err and ">= 95.0%" in out
    # A flag overrides the suite's value for the same metric.
    code, out, _ = _invoke([str(folder), "--min", "task_completion_rate=0.8"], monkeypatch)
    assert code == 0
    # --no-suite ignores it (leaving no check: that passes only with --allow-empty); --suite
    # reads another file; a bad metric in the suite is exit 2.
    assert _invoke([str(folder), "--no-suite", "--allow-empty"], monkeypatch)[0] == 0
    assert _invoke([str(folder), "--no-suite"], monkeypatch)[0] == 1
    other = tmp_path / "other.yaml"
    other.write_text("gate:\n  min:\n    task_completion: 0.5\n")
    code, _, err = _invoke([str(folder), "--suite", str(other)], monkeypatch)
    assert code == 2 and "unknown metric 'task_completion'" in err


def test_markdown_render_lists_every_check():
    r = run(_convs(fail={0}))
    res = evaluate_gate(r, GateConfig(min={"task_completion_rate": 0.9, "csat_proxy_mean": 3.0}))
    md = render_gate_markdown(res)
    assert "### ✅ evalkit gate passed" in md
    assert md.count("| min |") == 2


def test_incomplete_run_fails_unless_allowed():
    from evalkit.reports.markdown import render_summary_markdown

    r = run(_convs(n=5))
    r.manifest.status = "interrupted"
    r.manifest.n_planned = 8
    res = evaluate_gate(r, GateConfig(min={"task_completion_rate": 0.5}))
    assert not res.passed
    check = res.checks[0]
    assert check.kind == "complete" and "run is interrupted: 5 of 8 conversations" in check.detail
    assert "all planned conversations" in render_gate_table(res)
    assert "run is interrupted: 5 of 8" in render_summary_markdown(r, gate=res)
    assert evaluate_gate(r, GateConfig(), allow_incomplete=True, allow_empty=True).passed


def test_run_of_a_single_scenario_file_has_no_suite_gate(tmp_path):
    from evalkit.metrics.gate import suite_gate_config

    scenario = tmp_path / "one.yaml"
    scenario.write_text("id: x\nuser:\n  script: [hi]\n")
    r = run(_convs(n=2))
    r.manifest.suites = [str(scenario)]
    assert suite_gate_config(r) == (None, None)
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text("gate:\n  max:\n    n_errors: 0\n")
    r.manifest.suites = [str(suite_file)]
    config, source = suite_gate_config(r)
    assert config.max == {"n_errors": 0} and source == str(suite_file)
