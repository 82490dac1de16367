"""Every handoff trigger creates a ticket and marks the reply."""

from __future__ import annotations

import pytest
from _agent_helpers import agent, calls, chat

SENTENCE = "I'm connecting you with a human agent. Your ticket number is **TCK-00021**."


def _assert_handoff(a, r, reason):
    assert SENTENCE in r.text
    assert r.handoff == {"ticket_id": "TCK-00021", "reason": reason}
    assert r.end_conversation and r.outcome == "handoff"
    [ticket] = a.end_state()["tickets"]
    assert ticket["ticket_id"] == "TCK-00021" and ticket["reason"] == reason and ticket["status"] == "open"
    assert ticket["customer_id"] == "CUST-0001"
    return ticket


@pytest.mark.parametrize("text", [
    "I want to talk to a human", "Can I speak with a real person please?", "get me a representative",
    "transfer me to your manager",
])
def test_explicit_request(text):
    a = agent()
    r = a.reply(text)
    _assert_handoff(a, r, "customer asked for a human")
    assert calls([r], "escalate_to_human")[0]["arguments"]["reason"] == "customer asked for a human"


@pytest.mark.parametrize(("text", "order_id"), [
    ("I want to speak to a human about my order ORD-10010 right now", "ORD-10010"),
    ("get me a human agent, order ORD-10001", "ORD-10001"),
    ("Please call me back about ORD-10002.", "ORD-10002"),
])
def test_explicit_request_naming_an_order_puts_it_on_the_ticket(text, order_id):
    a = agent()
    r = a.reply(text)
    ticket = _assert_handoff(a, r, "customer asked for a human")
    assert ticket["order_id"] == order_id and f"order={order_id}" in ticket["summary"]
    assert not calls([r], "check_order_status")


def test_complaint():
    a = agent()
    _assert_handoff(a, a.reply("I want to file a complaint about your delivery service"), "complaint")


def test_frustration_keeps_the_order_context():
    a = agent()
    a.reply("where is ORD-10001")
    r = a.reply("This is RIDICULOUS, you are USELESS!!!")
    ticket = _assert_handoff(a, r, "customer frustrated")
    assert ticket["order_id"] == "ORD-10001" and ticket["priority"] == "high"
    assert "RIDICULOUS" in ticket["summary"]


def test_more_than_three_failures():
    a = agent()
    r = chat(a, "blah", "where is ORD-99999", "ORD-1234", "zzz")
    assert [x.handoff for x in r[:3]] == [None, None, None]
    _assert_handoff(a, r[3], "repeated failed attempts")


def test_refund_over_500_is_escalated_never_granted():
    a = agent()
    r = a.reply("I want a refund of $561.99 for ORD-10008")
    ticket = _assert_handoff(a, r, "refund over $500")
    assert r.text.startswith("Refunds over $500 need to be approved by a member of our team.")
    assert ticket["order_id"] == "ORD-10008"
    assert calls([r], "request_refund") == [] and a.end_state()["refunds"] == []


def test_full_refund_over_500_is_escalated():
    a = agent()
    _assert_handoff(a, a.reply("I want a full refund for ORD-10013"), "refund over $500")


def test_summary_is_redacted():
    a = agent()
    a.reply("my phone is +1 555 123 4567")
    r = a.reply("let me speak to a human")
    ticket = _assert_handoff(a, r, "customer asked for a human")
    assert "555 123 4567" not in ticket["summary"] and "[PHONE]" in ticket["summary"]


def test_after_handoff_the_agent_points_to_the_ticket():
    a = agent()
    a.reply("human please")
    r = a.reply("hello?")
    assert "TCK-00021" in r.text and r.end_conversation and r.handoff is None
    assert len(a.end_state()["tickets"]) == 1
