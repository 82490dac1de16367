"""The comparison page: deltas with CIs and p-values, flips in order, hostile text escaped."""

from __future__ import annotations

import json
import re

import pytest
from report_factory import HOSTILE_SCRIPT, HOSTILE_TITLE, conversation, make_run

from evalkit.metrics.compare import compare_runs
from evalkit.reports.compare_html import build_comparison_data, render_comparison_html


@pytest.fixture(scope="module")
def pair():
    base = make_run(9, hostile_index=1)
    cand = base.model_copy(deep=True)
    cand.manifest.run_id = "run-cand"
    # 1 (hostile) and 2 regress; 0 is fixed.
    cand.conversations[1] = conversation(1, fail_at=3, hostile=True, channel="whatsapp")
    cand.conversations[2] = conversation(2, fail_at=1, channel="slack")
    cand.conversations[0] = conversation(0, fail_at=None)
    return base, cand, compare_runs(base, cand, n_resamples=200)


def test_comparison_data_orders_flips_and_points_at_both_conversations(pair):
    base, cand, cmp = pair
    data, convs = build_comparison_data(cmp, base, cand)
    assert [(f["scenario_id"], f["kind"]) for f in data["flips"]] == [
        ("sc-001", "regression"), ("sc-002", "regression"), ("sc-000", "fix"),
    ]
    first = data["flips"][0]
    assert convs[first["base"]].passed is True and convs[first["cand"]].passed is False
    assert convs[first["cand"]].key == ("default", "sc-001", 0)
    assert first["reason"].startswith("contains(refund)")
    assert data["n_regressions"] == 2 and data["n_fixes"] == 1
    # Every compared metric with a value on either side has a row with CI and p-value text.
    rows = {m["metric"]: m for m in data["metrics"]}
    tc = rows["task_completion_rate"]
    assert tc["test"] == "exact McNemar" and tc["p"] != "n/a" and "pp" in tc["delta"]
    assert rows["csat_proxy_mean"]["test"] == "Wilcoxon signed-rank"
    assert "cost_per_conversation_usd" not in rows  # offline on both sides: nothing to compare


def test_missing_conversation_is_reported_not_crashed(pair):
    base, cand, cmp = pair
    thinner = cand.model_copy(update={"conversations": [c for c in cand.conversations if c.transcript.scenario_id != "sc-002"]})
    data, convs = build_comparison_data(cmp, base, thinner)
    flip = next(f for f in data["flips"] if f["scenario_id"] == "sc-002")
    assert flip["cand"] is None and convs[flip["base"]].transcript.scenario_id == "sc-002"


def test_comparison_page_is_self_contained_and_escaped(pair):
    base, cand, cmp = pair
    page = render_comparison_html(cmp, base, cand)
    assert "plotly.js v" not in page and len(page) < 500_000  # no charts, so no plotly.js
    assert not re.search(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=""", page, re.I)
    assert HOSTILE_TITLE not in page and HOSTILE_SCRIPT not in page
    assert "&lt;/script&gt;&lt;script&gt;window.__xss = 3&lt;/script&gt;&lt;!--" in page  # title, escaped
    assert len(re.findall(r"<script\b", page)) == 4
    blocks = dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, re.S))
    assert json.loads(blocks["evalkit-compare"])["flips"][0]["title"] == HOSTILE_TITLE
    assert "2 regressions · 1 fix" in page
    assert page.index("sc-001") < page.index("sc-000")  # regressions listed before fixes
