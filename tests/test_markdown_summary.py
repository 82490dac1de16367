"""summary.md: headline metrics with CIs, gate status, failures, regressions, escaping."""

from __future__ import annotations

from _results_factory import conv, run

from evalkit.core.transcript import Usage
from evalkit.metrics.compare import compare_runs
from evalkit.metrics.gate import evaluate_gate
from evalkit.reports.markdown import render_summary_markdown, write_summary_md
from evalkit.scenarios.models import GateConfig


def _convs(fail=(), n=20, variant="default"):
    return [conv(f"s{i}", variant=variant, passed=i not in fail, reason=f"wrong answer in s{i}") for i in range(n)]


def test_headline_table_failures_and_offline_cost():
    md = render_summary_markdown(run(_convs(fail={2, 5})))
    assert md.startswith("## ❌ evalkit run `run-1`")
    assert "20 conversations · 2 failed · 0 agent errors" in md
    assert "| Task completion | 90.0% [" in md
    assert "| Cost / conversation | n/a: offline run: no model cost |" in md
    assert "Failed conversations (2)" in md
    assert "`s2[0]`: tool\\_called(check\\_order\\_status): wrong answer in s2" in md
    assert len(md) < 4000


def test_multi_variant_columns_and_priced_cost():
    convs = _convs(variant="A") + [
        conv(f"s{i}", variant="B", usage=Usage(prompt_tokens=10, completion_tokens=5, cost_usd=0.002)) for i in range(20)
    ]
    md = render_summary_markdown(run(convs))
    assert "| Metric (95% CI) | `A` | `B` |" in md
    row = next(line for line in md.splitlines() if line.startswith("| Cost / conversation"))
    assert "n/a: offline run" in row and "$0.0020" in row


def test_gate_status_and_regressions():
    base = run(_convs())
    cand = run(_convs(fail={1, 2, 3}), run_id="run-2")
    gate = evaluate_gate(cand, GateConfig(min={"task_completion_rate": 0.9}, no_new_failures=True), baseline=base)
    md = render_summary_markdown(cand, gate=gate, comparison=gate.comparison)
    assert md.startswith("## ❌")
    assert "**Gate: failed** (2 of 2 checks)" in md and "3 new failures" in md
    assert "(min: &gt;= 90.0%)" in md
    assert "### Regressions vs `run-1` (3)" in md
    assert "- `s1` (100% → 0%)" in md
    passing = evaluate_gate(base, GateConfig(min={"task_completion_rate": 0.9}))
    assert "**Gate: passed** (1 check)" in render_summary_markdown(base, gate=passing)
    assert compare_runs(base, cand).regressions  # same data the summary used


def test_failure_list_is_capped_and_text_escaped():
    convs = [conv(f"s{i}", passed=False, reason="<img src=x onerror=alert(1)> | `x`") for i in range(40)]
    md = render_summary_markdown(run(convs), max_failures=5)
    assert "… and 35 more" in md
    assert "<img" not in md and "&lt;img" in md


def test_write_summary_md_evaluates_suite_gate(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "suite.yaml").write_text("gate:\n  min:\n    task_completion_rate: 0.99\n")
    r = run(_convs(fail={0}))
    r.manifest.suites = [str(suite)]
    text = write_summary_md(r, tmp_path / "summary.md").read_text()
    assert "**Gate: failed**" in text
    (suite / "suite.yaml").write_text("gate:\n  min:\n    nope: 0.99\n")
    text = write_summary_md(r, tmp_path / "summary.md").read_text()
    assert "suite gate section not evaluated" in text and "unknown metric 'nope'" in text


def test_ab_run_regressions_name_the_base_variant():
    r = run(_convs(variant="A") + _convs(fail={4}, variant="B"))
    gate = evaluate_gate(r, GateConfig(no_new_failures=True), variant="B", baseline=r, baseline_variant="A")
    md = render_summary_markdown(r, gate=gate, comparison=gate.comparison)
    assert "### Regressions vs variant `A` (1)" in md
    assert "`B` `s4[0]`" in md
