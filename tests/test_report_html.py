"""The HTML report: self-contained, KPIs with CIs, hostile text escaped, deterministic data."""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import re
from pathlib import Path

import pytest
from report_factory import HOSTILE_IMG, HOSTILE_SCRIPT, HOSTILE_TITLE, gate_result, make_run

from evalkit.metrics.summary import summarize_with_ci
from evalkit.reports import _embed
from evalkit.reports.html import build_report_data, load_gate, render_report, write_report

GOLDEN = Path(__file__).parent / "golden" / "report_data.json"


def _script_blocks(html: str) -> dict[str, str]:
    """id -> text of every <script type="application/json" id=...> block."""
    return dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.S))


def _store(html: str) -> list[dict]:
    """All transcripts embedded in a page, decoded whatever their encoding."""
    store = json.loads(_script_blocks(html)["evalkit-transcripts"])
    out = []
    for chunk in store["chunks"]:
        if store["encoding"] == "gzip+base64":
            chunk = json.loads(gzip.decompress(base64.b64decode(chunk)))
        out += chunk
    return out


@pytest.fixture(scope="module")
def hostile_html() -> str:
    return render_report(make_run(12, hostile_index=3))


def test_report_is_self_contained(hostile_html: str):
    # No external script/stylesheet/image/iframe: every src/href is inline or an anchor.
    assert not re.search(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=""", hostile_html, re.I)
    assert "<link" not in hostile_html
    # The CSP forbids any network fetch and allows only our scripts, by hash.
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', hostile_html).group(1))
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert csp.count("'sha256-") == 3
    # plotly.js is inlined from the installed package.
    assert "plotly.js v" in hostile_html and 'id="evalkit-plotly"' in hostile_html


def test_kpis_match_the_metrics_and_show_cis(hostile_html: str):
    run = make_run(12, hostile_index=3)
    m = summarize_with_ci(run.conversations, n_resamples=1000)
    auto = m["automation_rate"]
    assert f"{100 * auto.value:.1f}%" in hostile_html
    assert f"95% CI {100 * auto.ci_low:.1f}% – {100 * auto.ci_high:.1f}%" in hostile_html
    assert f"{m['csat_proxy_mean'].value:.2f}" in hostile_html
    for title in ("Automation rate", "Task completion", "CSAT proxy", "p95 latency", "Cost / conversation", "pass^k"):
        assert title in hostile_html
    # Offline: no model was called, so no fake "$0.00".
    assert "no model cost (offline)" in hostile_html and "$0.00" not in hostile_html


def test_priced_run_shows_cost_with_ci():
    page = render_report(make_run(8, priced=True))
    # 3 priced replies of $0.001 each per conversation.
    assert "$0.0030" in page and "no model cost" not in page


def test_hostile_text_is_escaped_everywhere(hostile_html: str):
    # Inside the JSON, "onerror=" is inert text: no "<" can open a tag there.
    for raw in (HOSTILE_SCRIPT, HOSTILE_IMG, HOSTILE_TITLE, "<img", "<script>window"):
        assert raw not in hostile_html
    # Exactly our own script elements exist: 2 JSON blocks, plotly (inert text), 2 of ours.
    assert len(re.findall(r"<script\b", hostile_html)) == 5
    # The manifest value is rendered by Jinja, escaped.
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in hostile_html
    # The JSON still carries the exact text (the browser shows it as text).
    blocks = _script_blocks(hostile_html)
    data = json.loads(blocks["evalkit-data"])
    titles = [r[data["columns"].index("title")] for r in data["rows"]]
    assert HOSTILE_TITLE in titles
    texts = [t["content"] for c in _store(hostile_html) for t in c["turns"]]
    assert f"{HOSTILE_SCRIPT} and {HOSTILE_IMG}" in texts


def test_script_json_cannot_break_out_and_round_trips():
    value = {"a": "</script><!-- \u2028\u2029 & <b>", "nan": float("nan"), "n": [1, 2.5]}
    text = str(_embed.script_json(value))
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == {"a": value["a"], "nan": None, "n": [1, 2.5]}


def test_large_transcript_stores_are_compressed_and_lossless():
    run = make_run(30)
    plain = _embed.transcript_store(run.conversations, compress=False)
    packed = _embed.transcript_store(run.conversations, compress=True)
    assert packed["encoding"] == "gzip+base64" and plain["encoding"] == "json"
    decoded = [c for chunk in packed["chunks"] for c in json.loads(gzip.decompress(base64.b64decode(chunk)))]
    assert decoded == [c for chunk in plain["chunks"] for c in chunk]
    # Automatic choice: small stays readable.
    assert _embed.transcript_store(run.conversations)["encoding"] == "json"


def test_verdicts_keep_their_turn_and_exchanges_are_numbered():
    c = _embed.transcript_payload(make_run(3).conversations[0])
    assert [t["x"] for t in c["turns"]] == [1, 1, 2, 2, 3, 3]
    failing = [v for v in c["verdicts"] if v.get("passed") is False]
    assert failing and failing[0]["turn"] == 2 and failing[0]["spec"] == "contains(refund)"
    assert c["turns"][1]["tools"][0]["name"] == "lookup_order"
    assert c["turns"][1]["latency_ms"] == 350.0 and c["turns"][1]["ttft_ms"] == 90.0


def test_multi_variant_run_shows_each_variant():
    run = make_run(6, variants=("A", "B"), trials=2)
    data = build_report_data(run)
    assert data["variants"] == ["A", "B"]
    for card in data["kpis"]:
        assert [r["variant"] for r in card["rows"]] == ["A", "B"]
    passk = next(c for c in data["kpis"] if c["key"] == "passk")
    assert passk["rows"][0]["note"].startswith("k = 2")
    assert set(data["charts"]["outcomes"]) == {"A", "B"}
    assert len(data["rows"]) == 24


def test_gate_status_is_shown_from_gate_json(tmp_path: Path):
    run = make_run(6)
    (tmp_path / "gate.json").write_text(json.dumps(gate_result(run, passed=False).model_dump(mode="json")))
    page = write_report(run, tmp_path / "report.html", gate=load_gate(tmp_path)).read_text()
    assert "CI gate: FAILED" in page
    assert "task_completion_rate ≥ 80.0%" in page and "1 of 2 checks passed" in page
    assert 'class="kpi-gate fail"' in page and 'class="kpi-gate pass"' in page
    # A gate.json of another run in the same folder is not shown.
    other = run.model_copy(deep=True)
    other.manifest.run_id = "another-run"
    assert "CI gate" not in render_report(other, gate=gate_result(run, passed=True))
    # No gate: no gate pill; an unreadable gate.json is ignored.
    assert "CI gate" not in render_report(run)
    (tmp_path / "gate.json").write_text("{not json")
    assert load_gate(tmp_path) is None and load_gate(tmp_path / "nowhere") is None


def test_empty_run_renders():
    run = make_run(0)
    page = render_report(run)
    assert "0 conversations" in page and "<main>" in page


def test_golden_data_section():
    """The data section of a small deterministic render (not the HTML, which embeds plotly)."""
    run = make_run(6, trials=2, hostile_index=1)
    actual = {
        "data": build_report_data(run),
        "transcripts": _embed.transcript_store(run.conversations[:2]),
    }
    actual = json.loads(json.dumps(actual))
    actual["data"].pop("generator")  # the evalkit version: not worth a golden update per release
    if os.environ.get("EVALKIT_UPDATE_GOLDEN") or not GOLDEN.exists():
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        if not os.environ.get("EVALKIT_UPDATE_GOLDEN"):
            pytest.fail(f"wrote a new golden file {GOLDEN}; check it in and re-run")
    assert actual == json.loads(GOLDEN.read_text())


def test_pass_rate_charts_fold_only_when_every_judged_conversation_passed():
    from _results_factory import conv, run

    # 40 tags, more than the 30 charted: the fold counts them all.
    convs = [conv(f"t{i}", tags=(f"topic-{i:02d}", "common"), passed=True) for i in range(40)]
    convs.append(conv("unjudged", tags=("topic-x",), passed=None))  # no verdict: not counted
    charts = build_report_data(run(convs))["charts"]
    assert charts["all_passed"] == {"by_tag": 41, "by_channel": 1}
    assert charts["n_tags_charted"] == 30
    # One failure on a tag beyond the charted 30 still unfolds the chart.
    convs[-2] = conv("t39", tags=("topic-39",), passed=False)
    charts = build_report_data(run(convs))["charts"]
    assert charts["all_passed"] == {"by_tag": None, "by_channel": None}
    # Nothing judged: no fold (the chart says there is nothing to show).
    charts = build_report_data(run([conv("u", passed=None)]))["charts"]
    assert charts["all_passed"] == {"by_tag": None, "by_channel": None}
