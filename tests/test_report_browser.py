"""The report and the comparison page in headless Chromium: no console errors, hostile text
inert, filters work, transcripts open with the failing check at the right turn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _browser import ConsoleLog
from report_factory import (
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    HOSTILE_TITLE,
    conversation,
    make_run,
    odd_conversation,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

N = 12  # scenarios; every third (0, 3, 6, 9) fails at exchange 2; scenario 3 is hostile


def _open(page: Page, path: Path) -> Page:
    page.goto(path.as_uri())
    page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
    return page


def _count(page: Page) -> int:
    return int(page.evaluate("document.getElementById('row-count').dataset.count"))


def _visible_rows(page: Page) -> int:
    return page.evaluate("document.querySelectorAll('#grid-body tr[data-idx]').length")


# plotly.js takes seconds to compile in a cold headless browser: the charts are drawn once
# (plain JSON transcripts); the gzip-encoded variant is checked without them.
@pytest.mark.parametrize("compress", [False, True], ids=["json+charts", "gzip"])
def test_report_in_browser(page: Page, console: ConsoleLog, tmp_path: Path, compress: bool):
    from evalkit.reports.html import render_report

    path = tmp_path / "report.html"
    html = render_report(make_run(N, hostile_index=3), compress=compress, charts=not compress)
    path.write_text(html, encoding="utf-8")
    _open(page, path)
    page.wait_for_function("() => document.documentElement.dataset.charts === '1'", timeout=30_000)

    # Charts drew (one plotly SVG root per chart) and nothing logged an error.
    n_charts = page.evaluate("document.querySelectorAll('.chart .main-svg').length")
    assert n_charts >= 5 if not compress else n_charts == 0
    assert _count(page) == N and _visible_rows(page) == N

    # The hostile title is shown as text in the table.
    titles = page.evaluate("Array.from(document.querySelectorAll('.sc-title')).map(e => e.textContent)")
    assert HOSTILE_TITLE in titles

    # Search narrows the table; "failed only" keeps the 4 failing conversations.
    page.locator("#f-search").fill("sc-003")
    page.wait_for_function("() => document.getElementById('row-count').dataset.count === '1'")
    assert _visible_rows(page) == 1
    page.evaluate("const s = document.getElementById('f-search'); s.value = ''; s.dispatchEvent(new Event('input'))")
    page.wait_for_function(f"() => document.getElementById('row-count').dataset.count === '{N}'")
    page.click("#f-failed")
    assert _count(page) == 4 and _visible_rows(page) == 4
    # Channel filter on top: failing scenarios are 0, 3, 6, 9 -> channels web, voice, slack, whatsapp.
    page.evaluate(
        "const c = document.getElementById('f-channel'); c.value = 'voice'; c.dispatchEvent(new Event('change'))"
    )
    assert _count(page) == 1

    # Open the hostile, failing conversation: bubbles, tool call, failing check at turn 2.
    page.click("#grid-body tr[data-idx='3']")
    page.wait_for_function("() => document.getElementById('drawer').dataset.loaded === '3'")
    assert page.evaluate("document.querySelectorAll('#drawer-body .msg').length") == 6
    assert page.evaluate("document.querySelector('#drawer-body .chat').classList.contains('ch-voice')")
    fail_turns = page.evaluate(
        "Array.from(document.querySelectorAll('#drawer-body .at-turn-fail'))"
        ".map(e => e.closest('[data-exchange]').dataset.exchange)"
    )
    assert fail_turns == ["2"]
    bubble_texts = page.evaluate(
        "Array.from(document.querySelectorAll('#drawer-body .msg.user .msg-bubble')).map(e => e.textContent)"
    )
    assert f"{HOSTILE_SCRIPT} and {HOSTILE_IMG}" in bubble_texts
    # Tool arguments are shown (as text) when the call is expanded.
    page.evaluate("document.querySelector('#drawer-body details.tool').open = true")
    args = page.evaluate("document.querySelector('#drawer-body details.tool pre').textContent")
    assert "<img src=x onerror=" in args  # JSON-formatted, shown verbatim

    # No element came from the data, no script from it ran.
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    # Escape closes the drawer.
    page.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    assert page.evaluate("document.getElementById('drawer').hidden") is True
    assert console.settle(page).errors == []


def test_table_pages_and_sorts(page: Page, console: ConsoleLog, tmp_path: Path):
    from evalkit.reports.html import render_report

    path = tmp_path / "report.html"
    path.write_text(render_report(make_run(130), charts=False), encoding="utf-8")
    _open(page, path)
    assert _count(page) == 130 and _visible_rows(page) == 50
    page.click("#pg-next")
    page.click("#pg-next")
    assert _visible_rows(page) == 30
    # Sort by scenario descending: the first row is the last scenario.
    page.click("#grid th[data-sort='scenario_id']")
    page.click("#grid th[data-sort='scenario_id']")
    assert page.evaluate("document.querySelector('#grid-body .sc-id').textContent") == "sc-129"
    assert console.settle(page).errors == []


def test_comparison_page_opens_both_transcripts(page: Page, console: ConsoleLog, tmp_path: Path):
    from evalkit.metrics.compare import compare_runs
    from evalkit.reports.compare_html import render_comparison_html

    base = make_run(8, hostile_index=1)
    cand = base.model_copy(deep=True)
    cand.manifest.run_id = "run-cand"
    # Scenario 1 (passed, hostile) regresses; scenario 0 (failed) is fixed.
    cand.conversations[1] = conversation(1, fail_at=3, hostile=True, channel="whatsapp")
    cand.conversations[0] = conversation(0, fail_at=None)
    cmp = compare_runs(base, cand, n_resamples=200)
    assert [(f.scenario_id, f.kind) for f in cmp.flipped] == [("sc-001", "regression"), ("sc-000", "fix")]

    path = tmp_path / "compare.html"
    path.write_text(render_comparison_html(cmp, base, cand), encoding="utf-8")
    _open(page, path)
    assert page.evaluate("document.querySelectorAll('#metrics tbody tr').length") >= 10
    page.evaluate("document.getElementById('flip-0').open = true")
    page.wait_for_function("() => document.getElementById('flip-0').dataset.loaded === '1'")
    sides = page.evaluate(
        "Array.from(document.querySelectorAll('#flip-0 .flip-side')).map(s => "
        "[s.dataset.side, s.querySelectorAll('.msg').length, s.querySelectorAll('.at-turn-fail').length])"
    )
    # Base passed (no failing check), candidate failed at turn 3.
    assert sides == [["base", 6, 0], ["cand", 6, 1]]
    turn = page.evaluate("document.querySelector('#flip-0 .at-turn-fail').closest('[data-exchange]').dataset.exchange")
    assert turn == "3"
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert console.settle(page).errors == []


def test_unusual_conversation_and_empty_run(page: Page, console: ConsoleLog, tmp_path: Path):
    from evalkit.reports.html import render_report

    run = make_run(2)
    run.conversations.append(odd_conversation())
    path = tmp_path / "report.html"
    path.write_text(render_report(run, charts=False), encoding="utf-8")
    _open(page, path)
    page.evaluate("window.evalkitReport.open(2)")
    page.wait_for_function("() => document.getElementById('drawer').dataset.loaded === '2'")
    body = "document.getElementById('drawer-body')"
    assert page.evaluate(f"{body}.querySelector('.conv-error').textContent") == "Conversation error: agent raised TimeoutError"
    # The greeting is exchange 0 (no "Turn 0" heading), the recorded tool turn is shown.
    assert page.evaluate(f"{body}.querySelectorAll('[data-exchange=\"0\"] .msg.agent').length") == 1
    assert page.evaluate(f"{body}.querySelector('.msg.tool .msg-who').textContent") == "Tool · issue_refund"
    assert page.evaluate(f"{body}.querySelector('.msg-error').textContent") == "Agent error: agent raised TimeoutError"
    assert page.evaluate(f"{body}.querySelector('.tool-flag').textContent") == "failed"
    # Unknown channel: plain styling, its own name.
    assert page.evaluate(f"{body}.querySelector('.chat').className") == "chat ch-web"
    assert page.evaluate(f"{body}.querySelector('.chat-channel').textContent") == "sms"
    # A verdict pointing past the last turn is shown after the last exchange; the crashed judge is listed.
    assert page.evaluate(f"{body}.querySelector('.at-turn-fail').closest('[data-exchange]').dataset.exchange") == "1"
    assert "judge error: judge model returned invalid JSON" in page.evaluate(f"{body}.querySelector('.verdicts').textContent")
    # CSV export of the filtered rows: a formula in run text is neutralised and quoted.
    page.keyboard.press("Escape")  # the open drawer covers the filters (real clicks: Playwright)
    page.click("#f-failed")
    lines = page.evaluate("window.evalkitReport.csv()").rstrip("\r\n").split("\r\n")
    assert lines[0].startswith("scenario_id,trial,variant,channel,tags,outcome,passed")
    assert len(lines) == 1 + page.evaluate("window.evalkitReport.rowCount()")
    odd = next(line for line in lines if line.startswith("odd-1,"))
    assert odd.endswith('"\'=HYPERLINK(""http://127.0.0.1/x"", ""odd, one"")"')
    page.click("#f-csv")
    assert console.settle(page).errors == []

    empty = tmp_path / "empty.html"
    empty.write_text(render_report(make_run(0)), encoding="utf-8")
    _open(page, empty)
    page.wait_for_function("() => document.documentElement.dataset.charts === '1'", timeout=30_000)
    assert page.evaluate("document.querySelector('#grid-body .empty').textContent") == "This run has no conversations."
    assert page.evaluate("document.querySelectorAll('.chart-empty').length") == 5
    assert console.settle(page).errors == []
