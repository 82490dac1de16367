"""Confidence intervals, breakdowns and cost notes of evalkit.metrics.summary, and evalkit.metrics.stats."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _results_factory import conv, run

from evalkit.core.errors import ConfigError
from evalkit.core.transcript import Outcome, StopReason, Usage
from evalkit.metrics import stats
from evalkit.metrics.docs import check, metric_table_markdown
from evalkit.metrics.summary import (
    OFFLINE_COST_NOTE,
    PriceTable,
    apply_prices,
    breakdown,
    cost_note,
    metric_names,
    pass_hat_k,
    summarize,
    summarize_with_ci,
    summary_document,
)
from evalkit.metrics.table import TABLE_COLUMNS, conversation_table

DOCS_METRICS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"

# --- stats --------------------------------------------------------------------------------


def test_wilson_matches_textbook_values():
    iv = stats.wilson_interval(8, 10)
    assert iv.low == pytest.approx(0.4901624715, abs=1e-9)
    assert iv.high == pytest.approx(0.9433178485, abs=1e-9)
    assert stats.wilson_interval(0, 10).low == 0.0
    assert stats.wilson_interval(10, 10).high == 1.0
    assert stats.wilson_interval(0, 0) == stats.Interval(None, None)


def test_exact_binomial_and_mcnemar():
    # P(X<=2 | n=12, p=.5) = (1+12+66)/4096, two-sided doubles it.
    assert stats.binom_two_sided_p(2, 12) == pytest.approx(2 * 79 / 4096)
    assert stats.binom_two_sided_p(0, 0) == 1.0
    pairs = [(True, False)] * 9 + [(False, True)] * 1 + [(True, True)] * 30
    r = stats.mcnemar_exact(pairs)
    assert (r.base_only, r.cand_only, r.n_pairs) == (9, 1, 40)
    assert r.p_value == pytest.approx(2 * 11 / 1024)


def test_wilcoxon_exact_small_sample_by_enumeration():
    d = [1.5, -0.5, 2.0, 3.0, -1.0, 4.0]
    res = stats.wilcoxon_signed_rank(d)
    # Enumerate all sign patterns of ranks 1..6.
    ranks = [3, 1, 4, 5, 2, 6]
    w = 3 + 4 + 5 + 6
    import itertools

    sums = [sum(r for r, s in zip(ranks, signs, strict=True) if s) for signs in itertools.product([0, 1], repeat=6)]
    lo = min(w, 21 - w)
    expected = 2 * sum(1 for s in sums if s <= lo) / len(sums)
    assert res.method == "exact"
    assert res.statistic == w
    assert res.p_value == pytest.approx(expected)


def test_wilcoxon_is_scipys_exact_test_small_and_normal_approximation_otherwise():
    """The wiring: zeros dropped; exact up to 50 differences without ties, else the normal
    approximation with tie and continuity corrections; W+ as the statistic."""
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(3)
    small = rng.normal(0.4, 1, 25)
    res = stats.wilcoxon_signed_rank(np.concatenate([small, [0.0, 0.0]]))
    assert res.method == "exact" and res.n_nonzero == 25
    assert res.p_value == pytest.approx(float(scipy_stats.wilcoxon(small, method="exact").pvalue), rel=1e-9)
    assert res.statistic == pytest.approx(float(scipy_stats.wilcoxon(small, alternative="greater").statistic))
    tied = np.round(rng.normal(0.2, 1, 90), 1)
    res = stats.wilcoxon_signed_rank(tied)
    theirs = scipy_stats.wilcoxon(tied[tied != 0], correction=True, method="asymptotic")
    assert res.method == "normal" and res.n_nonzero == int((tied != 0).sum())
    assert res.p_value == pytest.approx(float(theirs.pvalue), rel=1e-9)
    assert stats.wilcoxon_signed_rank([0.0, 0.0]) == stats.WilcoxonResult(0.0, 0, 1.0, "exact")


def test_bootstrap_is_seeded_and_covers_the_mean():
    x = np.random.default_rng(0).normal(10, 2, 200)
    a = stats.bootstrap_ci(x, seed=1)
    b = stats.bootstrap_ci(x, seed=1)
    c = stats.bootstrap_ci(x, seed=2)
    assert a == b and a != c
    assert a.low < x.mean() < a.high
    # Width close to the normal theory 2 * 1.96 * sd / sqrt(n).
    assert (a.high - a.low) == pytest.approx(2 * 1.96 * x.std() / math.sqrt(200), rel=0.15)


def test_paired_bootstrap_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(5)
    base = rng.normal(3, 1, 60)
    est, iv, p = stats.paired_bootstrap_mean_diff(base, base + 0.5 + rng.normal(0, 0.1, 60))
    assert est == pytest.approx(0.5, abs=0.05) and iv.excludes_zero() and p < 0.01
    est, iv, p = stats.paired_bootstrap_mean_diff(base, base + rng.normal(0, 0.1, 60))
    assert not iv.excludes_zero() and p > 0.05


def test_weighted_quantiles_equal_expanded_data_percentiles():
    from evalkit.metrics.summary import percentile

    rng = np.random.default_rng(0)
    xs = np.sort(rng.normal(size=30))
    w = rng.integers(0, 4, (40, 30))
    got = stats.weighted_quantiles(xs, w, [50, 95, 99])
    for i in range(40):
        expanded = np.repeat(xs, w[i]).tolist()
        for j, q in enumerate([50, 95, 99]):
            assert got[j, i] == pytest.approx(percentile(expanded, q))
    assert stats.weighted_quantiles(np.arange(1.0, 11.0), np.ones((1, 10)), 95)[0] == pytest.approx(9.55)
    assert np.isnan(stats.weighted_quantiles(xs, np.zeros((1, 30)), 50)[0])


# --- metrics with CI --------------------------------------------------------------------------


def _mixed_run():
    convs = []
    for i in range(40):
        convs.append(
            conv(
                f"s{i % 10}",
                trial=i // 10,
                passed=i % 4 != 0,
                outcome=Outcome.escalated if i % 5 == 0 else Outcome.resolved,
                csat=float(1 + i % 5),
                latencies=(100.0 + i, 4000.0 if i % 8 == 0 else 200.0),
                tags=("billing",) if i % 2 else ("orders", "vip"),
                channel="whatsapp" if i % 3 == 0 else "web",
            )
        )
    return convs


def test_one_table_feeds_summary_and_intervals_with_the_same_point_values():
    convs = _mixed_run()
    table = conversation_table(convs)  # built once; every metric reads it
    plain = summarize(table)
    ci = summarize_with_ci(table)
    assert plain == summarize(convs)  # conversations are turned into the same table
    assert {k: v.model_dump() for k, v in ci.items()} == {k: v.model_dump() for k, v in summarize_with_ci(convs).items()}
    for name in (
        "automation_rate",
        "escalation_rate",
        "task_completion_rate",
        "csat_proxy_mean",
        "csat_proxy_pct_satisfied",
        "latency_p50_ms",
        "latency_p95_ms",
        "slow_turn_rate",
    ):
        mv = ci[name]
        assert mv.value == pytest.approx(plain[name]), name
        assert mv.value == plain[name], name  # one definition: the same number, not a close one
        assert mv.ci_low is not None and mv.ci_high is not None, name
        assert mv.ci_low <= mv.value + 1e-9 and mv.value - 1e-9 <= mv.ci_high, name
    assert ci["task_completion_rate"].method == "wilson"
    assert ci["task_completion_rate"].n == 40
    assert ci["slow_turn_rate"].n == 80  # turns, not conversations
    assert ci["pass_hat_4"].value == pytest.approx(plain["pass_hat_k"]["4"])
    assert ci["pass_hat_1"].method == "bootstrap_scenarios" and ci["pass_hat_1"].n == 10
    assert ci["n_conversations"].value == 40 and ci["n_conversations"].ci_low is None


def test_the_table_holds_each_conversations_facts_and_its_turns():
    convs = [
        conv("a", latencies=(100.0, 300.0), ttft=20.0, handoff=True, tags=("redteam", "jailbreak"), passed=False),
        conv("b", outcome=Outcome.escalated, latencies=()),
        conv("c", passed=None, csat=None),
    ]
    convs[2].transcript.stop_reason = StopReason.missing_info
    table = conversation_table(convs)
    assert list(table.columns) == list(TABLE_COLUMNS) and len(table) == 3
    assert list(table.automated) == [False, False, True]  # a handoff is not automation
    assert list(table.scenario_gap) == [False, False, True]
    assert table.attack_succeeded.iloc[0] and table.attack_succeeded.isna().tolist() == [False, True, True]
    assert list(table.turn_latency_ms.iloc[0]) == [100.0, 300.0] and list(table.turn_ttft_ms.iloc[0]) == [20.0, 20.0]
    assert list(table.turn_latency_ms.iloc[1]) == []
    s = summarize(table)
    # the gap is counted apart and left out of the rest; percentiles pool the turns of the rows
    assert (s["n_conversations"], s["n_scenario_gaps"]) == (2, 1)
    assert s["latency_p50_ms"] == 200.0 and s["escalation_rate"] == 0.5 and s["attack_success_rate"] == 1.0
    # a filtered table is a group: no conversation is read again
    assert summarize(table[table.scenario_id == "b"])["escalation_rate"] == 1.0


def test_pass_hat_k_keeps_the_order_of_the_rows_bit_for_bit():
    convs = [conv(f"s{i % 7}", trial=i // 7, passed=bool((i * 5) % 3)) for i in range(21)]
    by_scenario: dict[str, list[bool]] = {}
    for c in convs:
        by_scenario.setdefault(c.transcript.scenario_id, []).append(bool(c.passed))
    assert summarize(convs)["pass_hat_k"] == {str(k): v for k, v in pass_hat_k(by_scenario).items()}


def test_a_metric_added_to_the_registry_reaches_summary_intervals_compare_gate_and_the_docs_check(monkeypatch):
    from evalkit.metrics import summary as metrics
    from evalkit.metrics.compare import compare_runs
    from evalkit.metrics.gate import validate_metric

    turns = metrics.Metric(
        "agent_turns_mean", "mean number of agent replies per conversation", "turns", "lower",
        metrics.Mean(lambda r: r.table["n_agent_turns"].to_numpy(dtype=float)),
    )
    monkeypatch.setattr(metrics, "METRICS", (*metrics.METRICS, turns))
    base = [conv(f"s{i}", latencies=(100.0,) * (1 + i % 3)) for i in range(12)]
    cand = [conv(f"s{i}", latencies=(100.0,) * (2 + i % 3)) for i in range(12)]
    assert summarize(base)["agent_turns_mean"] == 2.0
    mv = summarize_with_ci(base)["agent_turns_mean"]
    assert mv.value == 2.0 and mv.method == "bootstrap" and mv.ci_low < 2.0 < mv.ci_high
    assert "agent_turns_mean" in metric_names() and validate_metric("agent_turns_mean", kind="max_drop")
    cmp = compare_runs(run(base), run(cand, run_id="run-2"))
    md = cmp.metric("agent_turns_mean")
    assert md is not None and md.delta == 1.0 and md.test == "wilcoxon" and md.verdict == "worse"
    # the docs page now lacks the metric: the check says so
    assert "agent_turns_mean" in metric_table_markdown()
    assert check(DOCS_METRICS) is not None


def test_docs_metric_table_is_the_registry():
    assert check(DOCS_METRICS) is None, "run: python -m evalkit.metrics.docs docs/metrics.md"
    page = DOCS_METRICS.read_text(encoding="utf-8")
    for name in metric_names():
        if not name.startswith("pass_hat_"):
            assert f"| `{name}` |" in page, name
    assert "| `tokens_total` |" in page and "| `attack_success_rate` |" in page


def test_registry_is_the_one_list_of_names_directions_and_compared_metrics():
    from evalkit.metrics.compare import COMPARED_METRICS
    from evalkit.metrics.summary import (
        HEADLINE_METRICS,
        HIGHER_IS_BETTER,
        METRICS,
        find_metric,
        higher_is_better,
    )

    names = [m.name for m in METRICS]
    assert len(set(names)) == len(names)
    assert list(HEADLINE_METRICS) == [m.name for m in METRICS if m.headline]
    assert set(HIGHER_IS_BETTER) == set(names) - {"pass_hat_k"}
    assert set(COMPARED_METRICS) <= set(names) and "n_conversations" not in COMPARED_METRICS
    assert higher_is_better("tokens_total") is False and higher_is_better("pass_hat_3") is True
    assert higher_is_better("n_conversations") is None and find_metric("nope") is None
    assert list(summarize([conv()]))[: len(HEADLINE_METRICS)] == list(HEADLINE_METRICS)


def test_slow_turn_threshold_is_configurable():
    convs = [conv(latencies=(1000.0, 2500.0, 5000.0))]
    assert summarize_with_ci(convs)["slow_turn_rate"].value == pytest.approx(1 / 3)
    assert summarize_with_ci(convs, slow_turn_ms=2000)["slow_turn_rate"].value == pytest.approx(2 / 3)
    assert summarize(convs, slow_turn_ms=500)["slow_turn_rate"] == 1.0


def test_empty_and_unmeasured_metrics_are_none_not_zero():
    ci = summarize_with_ci([])
    assert ci["task_completion_rate"].value is None
    assert ci["latency_p95_ms"].value is None
    ci = summarize_with_ci([conv(passed=None, csat=None, latencies=())])
    assert ci["task_completion_rate"].value is None
    assert ci["csat_proxy_mean"].value is None
    assert ci["cost_usd_total"].value is None


def test_cost_is_null_offline_with_a_note_and_measured_when_priced():
    offline = [conv(), conv("s2")]
    assert summarize(offline)["cost_usd_total"] is None
    assert cost_note(offline) == OFFLINE_COST_NOTE
    unpriced = [conv(usage=Usage(prompt_tokens=100, completion_tokens=20))]
    assert "not priced" in cost_note(unpriced)
    assert summarize_with_ci(unpriced)["tokens_total"].value == 120
    priced = [conv(usage=Usage(prompt_tokens=100, completion_tokens=20, cost_usd=0.01), latencies=(1.0, 2.0))]
    assert cost_note(priced) is None
    ci = summarize_with_ci(priced)
    assert ci["cost_usd_total"].value == pytest.approx(0.02)
    assert ci["cost_per_conversation_usd"].value == pytest.approx(0.02)


def test_price_table_prices_unpriced_usage():
    r = run([conv(usage=Usage(prompt_tokens=1_000_000, completion_tokens=500_000))])
    r.manifest.models["agent"] = "m1"
    table = PriceTable.from_mapping({"m1": {"input": 0.5, "output": 2.0}})
    priced = apply_prices(r, table)
    assert summarize(priced.conversations)["cost_usd_total"] == pytest.approx(1.5)
    # The original is untouched, and an unknown model stays unpriced.
    assert summarize(r.conversations)["cost_usd_total"] is None
    assert summarize(apply_prices(r, PriceTable.from_mapping({"other": [1, 1]})).conversations)["cost_usd_total"] is None
    with pytest.raises(ConfigError, match="prices.m1"):
        PriceTable.from_mapping({"m1": {"input": 1}})


def test_breakdown_by_tag_channel_scenario():
    convs = _mixed_run()
    by_tag = {g.key: g for g in breakdown(convs, "tag", n_resamples=200)}
    assert set(by_tag) == {"billing", "orders", "vip"}
    assert by_tag["billing"].n == 20 and by_tag["vip"].n == 20
    expected = sum(1 for i in range(40) if i % 2 and i % 4 != 0) / 20
    assert by_tag["billing"].metrics["task_completion_rate"].value == pytest.approx(expected)
    by_channel = {g.key: g.n for g in breakdown(convs, "channel", n_resamples=200)}
    assert by_channel == {"whatsapp": 14, "web": 26}
    by_scen = breakdown(convs, "scenario", n_resamples=200)
    assert [g.key for g in by_scen] == sorted(f"s{i}" for i in range(10))
    assert all(g.n == 4 for g in by_scen)
    untagged = breakdown([conv()], "tag")
    assert untagged[0].key == "(untagged)"
    with pytest.raises(ConfigError, match="unknown breakdown"):
        breakdown(convs, "colour")


def test_summary_document_keeps_headline_keys_and_adds_ci():
    convs = _mixed_run() + [conv("x", variant="B")]
    doc = summary_document(run(convs))
    for key in summarize(convs):
        assert key in doc
    assert doc["ci"]["task_completion_rate"]["ci_low"] is not None
    assert doc["cost_note"] == OFFLINE_COST_NOTE
    assert set(doc["by_variant"]) == {"default", "B"}
    assert doc["by_variant"]["B"]["n_conversations"] == 1
    import json

    json.dumps(doc)  # serialisable as is


def test_metric_names_lists_pass_hat_k_present():
    names = metric_names(summarize_with_ci(_mixed_run()))
    assert "task_completion_rate" in names and "pass_hat_4" in names and "pass_hat_k" not in names


def test_latency_ci_resamples_whole_conversations():
    # Conversations whose turns are all slow or all fast: resampling turns independently
    # would give a far narrower interval than resampling conversations.
    rng = np.random.default_rng(0)
    convs = [conv(f"s{i}", latencies=(5000.0,) * 5 if i % 2 else (100.0,) * 5, csat=None) for i in range(200)]
    mean_slow = summarize_with_ci(convs)["slow_turn_rate"]
    assert mean_slow.value == pytest.approx(0.5)
    # Binomial over 1000 independent turns would give about +-3 pp; 200 clusters give about +-7 pp.
    assert mean_slow.ci_high - mean_slow.ci_low > 0.1
    p95 = summarize_with_ci([conv(f"s{i}", latencies=tuple(rng.lognormal(6, 0.5, 5))) for i in range(300)])["latency_p95_ms"]
    assert p95.ci_low < p95.value < p95.ci_high


def test_satisfied_means_a_survey_answer_of_4_or_5_after_rounding():
    convs = [conv(f"s{i}", csat=v) for i, v in enumerate([3.4, 3.5, 3.6, 4.0, 5.0, 1.0])]
    assert summarize(convs)["csat_proxy_pct_satisfied"] == pytest.approx(4 / 6)
    assert summarize_with_ci(convs)["csat_proxy_pct_satisfied"].value == pytest.approx(4 / 6)


@pytest.mark.parametrize("window", [None, 0, 3])
def test_cluster_quantiles_equal_the_full_computation(window):
    rng = np.random.default_rng(11)
    for _ in range(20):
        n_clusters = int(rng.integers(1, 40))
        n = int(rng.integers(1, 300))
        values = np.round(rng.lognormal(5, 1, n), 1)
        order = np.argsort(values, kind="stable")
        xs, cs = values[order], rng.integers(0, n_clusters, n)[order]
        counts = rng.integers(0, 3, (30, n_clusters)).astype(float)
        got = stats.cluster_quantiles(xs, cs, counts, [50, 95, 99], window=window)
        want = stats.weighted_quantiles(xs, counts[:, cs], [50, 95, 99])
        np.testing.assert_allclose(got, want, equal_nan=True)


def test_cluster_bootstrap_many_shares_resamples():
    x = np.arange(50.0)
    d = stats.cluster_bootstrap_many(50, {"a": lambda c: c @ x, "b": lambda c: 2 * (c @ x)}, n_resamples=300, seed=4)
    np.testing.assert_allclose(d["b"], 2 * d["a"])
    np.testing.assert_allclose(d["a"], stats.cluster_bootstrap(50, lambda c: c @ x, n_resamples=300, seed=4))
