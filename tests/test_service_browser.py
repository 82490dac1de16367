"""The web chat page, driven in headless Chromium against a real uvicorn server."""

from __future__ import annotations

import json
import urllib.request

import pytest
from _service_server import serve

from evalkit.testing.browser import Browser

pytestmark = pytest.mark.browser

if not Browser.available():
    pytest.skip("headless Chromium (/usr/bin/chromium) is not installed", allow_module_level=True)

LAST_DONE = (
    "(() => { const b = document.querySelectorAll('.msg.agent:not(.intro) .bubble[data-state=done]');"
    " return b.length ? b[b.length - 1].textContent : null; })()"
)


@pytest.fixture(scope="module")
def server():
    with serve() as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with Browser.launch() as b:
        yield b


def test_typed_message_gets_a_streamed_agent_reply(server, browser):
    app, base = server
    page = browser.new_page()
    page.navigate(base + "/")
    page.wait_for("document.querySelector('#input') !== null")
    page.evaluate("document.querySelector('#email').value = 'ana.silva@example.com'")
    page.type_text("#input", "Where is my order ORD-10001?")
    page.press_enter()
    text = page.wait_for(LAST_DONE, timeout=15)
    assert "ZIP code" in text  # an email typed in the page is a claim: the agent asks for proof
    page.type_text("#input", "97201")
    page.press_enter()
    page.wait_for("document.querySelectorAll('.msg.agent:not(.intro) .bubble[data-state=done]').length === 2")
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
    page.drain()
    assert page.console_errors == []


def test_feedback_button_stores_a_rating(server, browser):
    app, base = server
    page = browser.new_page()
    page.navigate(base + "/")
    page.type_text("#input", "How long does shipping take?")
    page.click("#send")
    page.wait_for(LAST_DONE)
    page.click(".fb.down")
    page.type_text("input.comment", "not what I asked")
    page.click(".feedback button:not(.up):not(.down)")
    page.wait_for("document.querySelector('.thanks') !== null")
    sid, token = page.evaluate("[window.acmeChat.sessionId, window.acmeChat.sessionToken]")
    rows = app.state.pool.get(sid, token).agent.store.all("SELECT rating, comment FROM feedback")
    assert [(r["rating"], r["comment"]) for r in rows] == [("down", "not what I asked")]
    page.drain()
    assert page.console_errors == []


def test_handoff_notice_and_markdown_is_escaped(server, browser):
    app, base = server
    page = browser.new_page()
    page.navigate(base + "/")
    page.type_text("#input", "I want to talk to a human agent please")
    page.press_enter()
    page.wait_for(LAST_DONE)
    notice = page.wait_for("document.querySelector('.notice.handoff') && document.querySelector('.notice.handoff').textContent")
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
    page.drain()
    assert page.console_errors == []


# -- the CDP helper itself (evalkit.testing.browser), reused by other browser tests --------


def test_browser_helper_evaluate_wait_console_and_errors(browser):
    from evalkit.testing.browser import BrowserError

    page = browser.new_page()
    page.navigate(
        "data:text/html,<input id=q><button id=b onclick=\"document.title=document.getElementById('q').value;"
        "console.error('clicked '+document.title)\">go</button><script>console.log('ready')</script>"
    )
    page.type_text("#q", "héllo wörld")
    page.click("#b")
    assert page.wait_for("document.title") == "héllo wörld"
    assert page.evaluate("[1, {a: 2}, null]") == [1, {"a": 2}, None]
    assert page.evaluate("new Promise(r => setTimeout(() => r(42), 10))", await_promise=True) == 42
    page.evaluate("setTimeout(() => { throw new Error('late boom') }, 0)")
    page.drain()
    assert "clicked héllo wörld" in page.console_errors
    assert any("late boom" in e for e in page.console_errors)
    assert any(m.startswith("log: ready") for m in page.console_messages)
    with pytest.raises(BrowserError, match="JavaScript error"):
        page.evaluate("undefinedFunction()")
    with pytest.raises(BrowserError, match="timed out waiting"):
        page.wait_for("false", timeout=0.3)
    with pytest.raises(BrowserError, match="no element matches"):
        page.click("#missing")
    big = page.evaluate("'x'.repeat(300000)")  # a multi-frame-sized websocket message
    assert len(big) == 300000
