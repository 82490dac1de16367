"""The web chat page, driven in headless Chromium against a real uvicorn server."""

from __future__ import annotations

import json
import urllib.request

import pytest
from _service_server import serve

pytestmark = pytest.mark.browser

# Predicates are functions, not expressions: the page's CSP forbids eval, which Playwright
# would use to poll an expression string.
LAST_DONE = (
    "() => { const b = document.querySelectorAll('.msg.agent:not(.intro) .bubble[data-state=done]');"
    " return b.length ? b[b.length - 1].textContent : null; }"
)


@pytest.fixture(scope="module")
def server():
    with serve() as running:
        yield running


def test_typed_message_gets_a_streamed_agent_reply(server, page, console):
    app, base = server
    page.goto(base + "/")
    page.wait_for_function("() => document.querySelector('#input') !== null")
    page.evaluate("document.querySelector('#email').value = 'ana.silva@example.com'")
    page.locator("#input").fill("Where is my order ORD-10001?")
    page.keyboard.press("Enter")
    text = page.wait_for_function(LAST_DONE, timeout=15_000).json_value()
    assert "ZIP code" in text  # an email typed in the page is a claim: the agent asks for proof
    page.locator("#input").fill("97201")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('.msg.agent:not(.intro) .bubble[data-state=done]').length === 2",
        timeout=15_000,
    )
    text = page.evaluate(LAST_DONE)
    assert "ORD-10001" in text and "shipped" in text
    # The user's message is shown, the input is cleared, the tool chip is rendered.
    assert page.evaluate("document.querySelector('.msg.user .bubble').textContent") == "Where is my order ORD-10001?"
    assert page.evaluate("document.querySelector('#input').value") == ""
    assert "check_order_status" in page.evaluate("document.querySelector('.meta .tool').textContent")
    # The page's session really exists on the server with that conversation.
    sid, token = page.evaluate("[window.acmeChat.sessionId, window.acmeChat.sessionToken]")
    request = urllib.request.Request(f"{base}/v1/sessions/{sid}/state", headers={"Session-Token": token})
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
        assert "end_state" in json.loads(resp.read())
    assert console.settle(page).errors == []


def test_feedback_button_stores_a_rating(server, page, console):
    app, base = server
    page.goto(base + "/")
    page.locator("#input").fill("How long does shipping take?")
    page.click("#send")
    page.wait_for_function(LAST_DONE)
    page.click(".fb.down")
    page.locator("input.comment").fill("not what I asked")
    page.click(".feedback button:not(.up):not(.down)")
    page.wait_for_function("() => document.querySelector('.thanks') !== null")
    sid, token = page.evaluate("[window.acmeChat.sessionId, window.acmeChat.sessionToken]")
    rows = app.state.pool.get(sid, token).agent.store.all("SELECT rating, comment FROM feedback")
    assert [(r["rating"], r["comment"]) for r in rows] == [("down", "not what I asked")]
    assert console.settle(page).errors == []


def test_handoff_notice_and_markdown_is_escaped(server, page, console):
    app, base = server
    page.goto(base + "/")
    page.locator("#input").fill("I want to talk to a human agent please")
    page.keyboard.press("Enter")
    page.wait_for_function(LAST_DONE)
    notice = page.wait_for_function(
        "() => document.querySelector('.notice.handoff') && document.querySelector('.notice.handoff').textContent"
    ).json_value()
    assert "TCK-" in notice
    # The renderer turns Markdown into elements and never lets markup through.
    html = page.evaluate(
        "(() => { const d = document.createElement('div');"
        " window.acmeChat.renderMarkdown(d, '**Hi** <img src=x onerror=alert(1)> [x](javascript:alert(1))\\n- a\\n- b');"
        " return d.innerHTML; })()"
    )
    assert "<strong>Hi</strong>" in html and "&lt;img" in html and "<img" not in html
    assert 'href="javascript' not in html
    assert "<ul><li>a</li><li>b</li></ul>" in html
    assert console.settle(page).errors == []


# -- the browser fixtures themselves (tests/_browser.py, conftest.py), used by every browser test --


def test_browser_fixtures_evaluate_wait_console_and_errors(page, console):
    from playwright.sync_api import Error, TimeoutError

    page.goto(
        "data:text/html,<input id=q><button id=b onclick=\"document.title=document.getElementById('q').value;"
        "console.error('clicked '+document.title)\">go</button><script>console.log('ready')</script>"
    )
    page.locator("#q").fill("héllo wörld")
    page.click("#b")
    assert page.wait_for_function("() => document.title").json_value() == "héllo wörld"
    assert page.evaluate("[1, {a: 2}, null]") == [1, {"a": 2}, None]
    assert page.evaluate("new Promise(r => setTimeout(() => r(42), 10))") == 42
    page.evaluate("setTimeout(() => { throw new Error('late boom') }, 0)")
    console.settle(page)
    assert "clicked héllo wörld" in console.errors
    assert any("late boom" in e for e in console.errors)
    assert any(m.startswith("log: ready") for m in console.messages)
    with pytest.raises(Error, match="undefinedFunction is not defined"):
        page.evaluate("undefinedFunction()")
    with pytest.raises(TimeoutError):
        page.wait_for_function("() => false", timeout=300)
    with pytest.raises(TimeoutError):
        page.click("#missing", timeout=300)
    big = page.evaluate("'x'.repeat(300000)")  # a large message between Playwright and Chromium
    assert len(big) == 300000


def test_rect_gap():
    from _browser import rect_gap

    a = {"x": 0, "y": 0, "width": 10, "height": 10}
    assert rect_gap(a, {"x": 14, "y": 2, "width": 5, "height": 5}) == 4  # side by side
    assert rect_gap(a, {"x": 13, "y": 14, "width": 5, "height": 5}) == 5  # diagonal: 3-4-5
    assert rect_gap(a, {"x": 8, "y": 5, "width": 5, "height": 5}) == -2  # overlapping by 2 px
