"""XSS: hostile text from every source a run records (transcripts, tool arguments and results,
scenario titles, descriptions and tags, judge reasons, manifest values) stays inert in the HTML
report and in the comparison page: in the raw HTML, and in headless Chromium (no script runs,
no console error, and the hostile text is shown as text)."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from _browser import ConsoleLog, off_loop

from evalkit.testing.agents import ScriptedAgent

if TYPE_CHECKING:
    from playwright.sync_api import Page

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=2">'
BREAKOUT = "</script><script>window.__xss=3</script><!--"
SVG = "<svg onload=window.__xss=4>"
JS_URL = "javascript:window.__xss=5"
LINK = f'<a href="{JS_URL}">click</a>'
TEMPLATE = "{{7*7}} {% raw %}${7*7}"
LS = "line\u2028separator\u2029para"
PAYLOADS = [SCRIPT, IMG, BREAKOUT, SVG, JS_URL, LINK, TEMPLATE, LS]
HOSTILE = " | ".join(PAYLOADS)
# The reply the failing variant gives; the passing variant leaves out SCRIPT (the never_said marker).
OK_MARK = "All fine <b>ok</b>"
# Literal strings that would execute if they reached the HTML outside a data block.
EXECUTABLE = ["<script>window.__xss", "<img src=x onerror", "<svg onload", 'href="javascript:']


def _reply(text: str) -> dict:
    return {
        "content": text,
        "tool": "lookup_order" + IMG,
        "args": {"order_id": "ORD-10001", "note": HOSTILE, IMG: SCRIPT},
        "result": {"html": HOSTILE, "tracking_url": JS_URL},
    }


def base_agent() -> ScriptedAgent:
    """Passes the checks, but still says hostile things (everything except SCRIPT)."""
    rest = " | ".join(p for p in PAYLOADS if p != SCRIPT)
    return ScriptedAgent(replies=[_reply(f"{OK_MARK} {rest}")])


def cand_agent() -> ScriptedAgent:
    """Fails both checks: says SCRIPT (never_said) and not OK_MARK (said); reasons quote both."""
    return ScriptedAgent(replies=[_reply(f"Sorry {HOSTILE}")])


def _suite(folder: Path) -> Path:
    scenarios = [
        {
            "id": f"xss-{i}",
            "title": f"{BREAKOUT} title {i} {IMG}",
            "description": HOSTILE,
            "tags": ["redteam", f"cat{IMG}", SCRIPT] if i == 0 else ["web", f"tag {LINK}"],
            "customer": {"email": "a@example.com", "name": IMG},
            "user": {"script": [{"say": f"hello {HOSTILE}"}, {"say": SCRIPT}]},
            "expect": [{"said": {"contains": OK_MARK}}, {"never_said": {"contains": SCRIPT}}],
        }
        for i in range(2)
    ]
    folder.mkdir(parents=True)
    (folder / "suite.yaml").write_text(yaml.safe_dump({"name": "xss", "max_turns": 4}), encoding="utf-8")
    (folder / "hostile.yaml").write_text(yaml.safe_dump({"scenarios": scenarios}, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> tuple[Path, object]:
    """A real run (runner, run folder, report.html) with two variants, base and cand."""
    from evalkit.run.runner import RunConfig, Runner

    root = tmp_path_factory.mktemp("xss")
    out = root / "run"
    # off_loop: the runner's asyncio.run cannot share this thread with Playwright's loop.
    run = off_loop(Runner(
        RunConfig(
            suite=[str(_suite(root / "suite"))],
            variants={"base": "test_security_xss:base_agent", "cand": "test_security_xss:cand_agent"},
            out=out,
            command=f"evalkit run {HOSTILE}",
            progress=False,
            handle_signals=False,
        )
    ).run_sync)
    return out, run


@pytest.fixture(scope="module")
def pages(hostile_run, tmp_path_factory) -> dict[str, Path]:
    """report.html as the runner wrote it, one with hostile manifest values, and the
    comparison page written by `evalkit compare --variants base,cand`."""
    from evalkit.cli import main
    from evalkit.reports.html import render_report

    out, run = hostile_run
    root = tmp_path_factory.mktemp("pages")
    edited = run.model_copy(deep=True)  # type: ignore[attr-defined]
    edited.manifest.agent = f"agent {IMG}"
    edited.manifest.extra = {"note": HOSTILE, "nested": {"k": SCRIPT}}
    edited.manifest.git_sha = BREAKOUT
    manifest_page = root / "manifest.html"
    manifest_page.write_text(render_report(edited), encoding="utf-8")
    compare_page = root / "compare.html"
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        with pytest.raises(SystemExit) as exc:
            main(["compare", str(out), "--variants", "base,cand", "--out", str(compare_page), "--resamples", "100"])
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    assert exc.value.code == 0
    return {"report": out / "report.html", "manifest": manifest_page, "compare": compare_page}


def test_the_run_really_carries_the_hostile_text(hostile_run):
    _, run = hostile_run
    convs = run.conversations  # type: ignore[attr-defined]
    assert len(convs) == 4
    by_variant = {c.transcript.variant: c for c in convs if c.transcript.scenario_id == "xss-0"}
    assert by_variant["base"].passed is True and by_variant["cand"].passed is False
    reasons = " ".join(v.reason for v in by_variant["cand"].verdicts)
    assert SCRIPT in reasons and OK_MARK in reasons
    call = by_variant["cand"].transcript.agent_turns[0].tool_calls[0]
    assert call.arguments["note"] == HOSTILE and call.result == {"html": HOSTILE, "tracking_url": JS_URL}
    assert IMG in by_variant["cand"].title and SCRIPT in by_variant["cand"].tags


def _outside_data_blocks(html: str) -> str:
    """The HTML with the bodies of <script> and <style> elements removed (what a parser
    treats as markup), keeping the tags themselves."""
    return re.sub(r"(<(script|style)\b[^>]*>).*?(</\2>)", r"\1\3", html, flags=re.S | re.I)


@pytest.mark.parametrize("name", ["report", "manifest", "compare"])
def test_raw_html_has_no_executable_injection(pages, name):
    html = pages[name].read_text(encoding="utf-8")
    markup = _outside_data_blocks(html)
    for needle in EXECUTABLE:
        assert needle not in markup, needle
    # Inside the script blocks the hostile text is escaped JSON: nothing can close the
    # element or open a comment, and U+2028/2029 are escaped.
    for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I):
        attrs, body = m.groups()
        if "application/json" in attrs:
            assert "<" not in body and "\u2028" not in body and "\u2029" not in body
            if "evalkit-data" in attrs:
                assert "\\u003cscript\\u003ewindow.__xss=1" in body
    # Exactly the page's own script elements: the same count as a benign page of this kind.
    own = {"report": 5, "manifest": 5, "compare": 4}[name]
    assert len(re.findall(r"<script\b", html, flags=re.I)) == own
    # Server-rendered text (titles, manifest, red-team categories) is entity-escaped.
    if name == "manifest":
        assert "&lt;img src=x onerror=" in markup and "&lt;/script&gt;&lt;script&gt;" in markup
    if name == "report":
        assert "cat&lt;img src=x onerror=" in markup  # the red-team category table
    # The template text stays literal (run text is never evaluated as a template).
    assert "{{7*7}} {% raw %}${7*7}" in html


# --- in headless Chromium -------------------------------------------------------------------------

def _open(page: Page, path: Path) -> Page:
    page.goto(path.as_uri())
    page.wait_for_function("() => document.documentElement.dataset.ready === '1'", timeout=20_000)
    return page


def _assert_inert(page: Page, console: ConsoleLog) -> None:
    console.settle(page)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert console.errors == []
    # No element the hostile text could have created.
    assert page.evaluate("document.querySelectorAll('img, svg[onload], a[href^=\"javascript\"], iframe').length") == 0


@pytest.mark.browser
@pytest.mark.parametrize("name", ["report", "manifest"])
def test_report_is_inert_in_chromium(page, console, pages, name):
    _open(page, pages[name])
    page.wait_for_function("() => document.documentElement.dataset.charts === '1'", timeout=30_000)
    n = page.evaluate("window.evalkitReport.rowCount()")
    assert n == 4
    texts = []
    for i in range(n):
        page.evaluate(f"window.evalkitReport.open({i})")
        page.wait_for_function(f"() => document.getElementById('drawer').dataset.loaded === '{i}'")
        texts.append(page.evaluate("document.getElementById('drawer').textContent"))
        _assert_inert(page, console)
    shown = "\n".join(texts)
    # The hostile text is on the page, as text: messages, tool arguments and results, reasons.
    for payload in (SCRIPT, IMG, BREAKOUT, SVG, JS_URL, TEMPLATE, LS):
        assert payload in shown, payload
    assert "never_said" in shown and OK_MARK in shown
    titles = page.evaluate("Array.from(document.querySelectorAll('.sc-title')).map(e => e.textContent)")
    assert f"{BREAKOUT} title 0 {IMG}" in titles
    tags = page.evaluate("Array.from(document.querySelectorAll('#f-tag option')).map(o => o.textContent)")
    assert SCRIPT in tags and f"tag {LINK}" in tags
    # The red-team section names the hostile category as text.
    assert f"cat{IMG}" in page.evaluate("document.getElementById('redteam').textContent")
    if name == "manifest":
        manifest = page.evaluate("document.getElementById('manifest').textContent")
        assert HOSTILE in manifest and f"agent {IMG}" in manifest and BREAKOUT in manifest
    else:
        assert f"evalkit run {HOSTILE}" in page.evaluate("document.getElementById('manifest').textContent")
    # Search and the tag filter with hostile input stay inert too.
    page.locator("#f-search").fill(IMG)
    page.wait_for_function("() => document.getElementById('row-count').dataset.count === '4'")
    _assert_inert(page, console)


@pytest.mark.browser
def test_comparison_page_is_inert_in_chromium(page, console, pages):
    _open(page, pages["compare"])
    n = page.evaluate("document.querySelectorAll('details.flip').length")
    assert n == 2  # both scenarios regressed from base to cand
    for i in range(n):
        page.evaluate(f"document.getElementById('flip-{i}').open = true")
        page.wait_for_function(f"() => document.getElementById('flip-{i}').dataset.loaded === '1'")
    _assert_inert(page, console)
    shown = page.evaluate("document.body.textContent")
    for payload in (SCRIPT, IMG, BREAKOUT, SVG, JS_URL, TEMPLATE, LS, OK_MARK):
        assert payload in shown, payload
