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
    assert "ORD-10001" in text
    # The user's message is shown, the input is cleared, the tool chip is rendered.
    assert page.evaluate("document.querySelector('.msg.user .bubble').textContent") == "Where is my order ORD-10001?"
    assert page.evaluate("document.querySelector('#input').value") == ""
    assert "check_order_status" in page.evaluate("document.querySelector('.meta .tool').textContent")
    # The page's session really exists on the server with that conversation.
    sid = page.evaluate("window.acmeChat.sessionId")
    with urllib.request.urlopen(f"{base}/v1/sessions/{sid}/state", timeout=5) as resp:  # noqa: S310
        assert "end_state" in json.loads(resp.read())
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
    sid = page.evaluate("window.acmeChat.sessionId")
    rows = app.state.pool.get(sid).agent.store.all("SELECT rating, comment FROM feedback")
    assert [(r["rating"], r["comment"]) for r in rows] == [("down", "not what I asked")]
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
    assert page.console_errors == []
