"""evalkit.metrics.compare: deltas with CIs, paired tests, flipped scenarios, Markdown."""

from __future__ import annotations

import json

import pytest
from _results_factory import conv, run

from evalkit.core.errors import ConfigError
from evalkit.metrics.compare import Comparison, compare_runs, compare_variants, render_comparison_markdown


def _side(variant: str, *, fail: set[int] = frozenset(), csat_shift: float = 0.0, lat: float = 100.0, n: int = 30):
    return [
        conv(
            f"s{i}",
            trial=t,
            variant=variant,
            passed=i not in fail,
            csat=3.0 + (i % 2) + csat_shift,
            latencies=(lat + i, lat * 2),
            title=f"Scenario {i}",
            reason=f"missing refund for s{i}",
        )
        for i in range(n)
        for t in range(2)
    ]


def test_identical_sides_show_no_significant_change():
    base = run(_side("A", fail={0, 5}))
    cand = run(_side("A", fail={0, 5}), run_id="run-2")
    cmp = compare_runs(base, cand)
    assert cmp.n_common_scenarios == 30 and cmp.n_pairs == 60
    for m in cmp.metrics:
        if m.delta is not None:
            assert m.delta == pytest.approx(0.0), m.metric
            assert not m.significant and m.verdict == "same", m.metric
    assert cmp.flipped == []


def test_regressions_are_detected_tested_and_listed_first():
    base = run(_side("A", fail={20}))
    cand = run(_side("A", fail={1, 2, 3, 4, 6, 7, 8, 9}, csat_shift=-1.0, lat=300.0), run_id="run-2")
    cmp = compare_runs(base, cand)
    tc = cmp.metric("task_completion_rate")
    assert tc.test == "mcnemar_exact"
    assert tc.delta == pytest.approx((44 / 60) - (58 / 60))
    assert tc.ci_high < 0 and tc.significant and tc.verdict == "worse"
    # 16 discordant regressions vs 2 fixes: exact binomial p.
    from evalkit.metrics.stats import binom_two_sided_p

    assert tc.p_value == pytest.approx(binom_two_sided_p(2, 18))
    csat = cmp.metric("csat_proxy_mean")
    assert csat.test == "wilcoxon" and csat.delta == pytest.approx(-1.0) and csat.verdict == "worse"
    p95 = cmp.metric("latency_p95_ms")
    assert p95.test == "paired_bootstrap" and p95.delta > 0 and p95.verdict == "worse"
    kinds = [f.kind for f in cmp.flipped]
    assert kinds == ["regression"] * 8 + ["fix"]
    reg = cmp.regressions[0]
    assert reg.base_key[1] == reg.cand_key[1] == reg.scenario_id
    assert reg.base_key[2] == reg.cand_key[2]  # same trial shown side by side
    assert reg.cand_reason.endswith(f"missing refund for {reg.scenario_id}")
    assert reg.base_reason is None
    assert cmp.fixes[0].scenario_id == "s20" and cmp.fixes[0].base_reason is not None


def test_improvement_is_better_for_lower_is_better_metrics():
    base = run(_side("A", lat=500.0))
    cand = run(_side("A", lat=100.0), run_id="run-2")
    assert compare_runs(base, cand).metric("latency_p50_ms").verdict == "better"


def test_compare_variants_inside_one_run_and_variant_errors():
    r = run(_side("A") + _side("B", fail={1, 2, 3}))
    cmp = compare_variants(r, "A", "B")
    assert (cmp.base.variant, cmp.cand.variant) == ("A", "B")
    assert len(cmp.regressions) == 3
    with pytest.raises(ConfigError, match="has variants A, B"):
        compare_runs(r, r)
    with pytest.raises(ConfigError, match="no variant 'C'"):
        compare_variants(r, "A", "C")
    with pytest.raises(ConfigError, match="same variant"):
        compare_variants(r, "A", "A")


def test_only_common_scenarios_are_compared():
    base = run(_side("A", n=10))
    cand = run([c for c in _side("A", n=12) if c.transcript.scenario_id != "s0"], run_id="run-2")
    cmp = compare_runs(base, cand)
    assert cmp.base_only_scenarios == ["s0"]
    assert cmp.cand_only_scenarios == ["s10", "s11"]
    assert cmp.n_common_scenarios == 9
    assert cmp.base.n_conversations == cmp.cand.n_conversations == 18
    with pytest.raises(ConfigError, match="no scenario in common"):
        compare_runs(run([conv("x")]), run([conv("y")]))


def test_majority_flip_rule_with_trials():
    # 2 of 3 trials pass in base (majority pass), 1 of 3 in candidate -> regression.
    base = run([conv("s", trial=t, passed=t != 2) for t in range(3)])
    cand = run([conv("s", trial=t, passed=t == 0) for t in range(3)], run_id="r2")
    (flip,) = compare_runs(base, cand).flipped
    assert flip.kind == "regression"
    assert flip.base_pass_rate == pytest.approx(2 / 3) and flip.cand_pass_rate == pytest.approx(1 / 3)
    assert flip.cand_key == ("default", "s", 1) and flip.base_key == ("default", "s", 1)
    # 2/3 -> 2/3 with different failing trials is not a flip.
    cand2 = run([conv("s", trial=t, passed=t != 0) for t in range(3)], run_id="r3")
    assert compare_runs(base, cand2).flipped == []


def test_comparison_round_trips_as_json_and_renders_markdown():
    base = run(_side("A"))
    cand = run(_side("A", fail={3}, csat_shift=0.5), run_id="run-2")
    cmp = compare_runs(base, cand)
    again = Comparison.model_validate_json(cmp.model_dump_json())
    assert again == cmp
    assert json.loads(cmp.model_dump_json())["flipped"][0]["base_key"] == ["A", "s3", 0]
    md = render_comparison_markdown(cmp)
    assert "| task_completion_rate |" in md
    assert "### Regressions (passed → failed)" in md
    assert "`s3`" in md and "missing refund for s3" in md
    assert "Fixes" not in md


def test_markdown_escapes_conversation_text():
    base = run(_side("A", n=3))
    cand = run(
        [conv("s0", passed=False, reason="<script>alert(1)</script> | pipe"), conv("s1"), conv("s2")],
        run_id="run-2",
    )
    md = render_comparison_markdown(compare_runs(base, cand))
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\\| pipe" in md


def test_scenario_gaps_are_left_out_of_the_paired_tests_as_of_every_metric():
    from evalkit.core.transcript import StopReason

    base = _side("A")
    cand = _side("B", fail={0, 1, 2, 3})
    for c in cand:
        if c.transcript.scenario_id in ("s0", "s1"):  # the LLM user lacked what the agent needed
            c.transcript.stop_reason = StopReason.missing_info
    cmp = compare_variants(run(base + cand), "A", "B")
    md = cmp.metric("task_completion_rate")
    assert md is not None and md.cand.n == 56  # 4 gap conversations left out of the value...
    assert md.n_pairs == 56 and cmp.n_pairs == 56  # ...and out of the McNemar pairs
    assert md.cand.value == pytest.approx(52 / 56)
