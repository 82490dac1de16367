"""Property tests: the agent never crashes, ids normalise, WhatsApp parts fit."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_agent.agent import SupportAgent
from reference_agent.channels import WHATSAPP_LIMIT, split_messages
from reference_agent.nlu import extract_entities

_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(st.text(max_size=300), st.sampled_from(["web", "whatsapp", "slack", "voice"]))
def test_any_message_gets_a_reply(message, channel):
    agent = SupportAgent(session_id="p", customer_email="ana.silva@example.com", channel=channel)
    r = agent.reply(message)
    assert isinstance(r.text, str) and r.text.strip()
    assert set(agent.end_state()) == {"orders", "returns", "refunds", "tickets"}


@_FAST
@given(st.integers(10000, 99999), st.sampled_from(["ORD-{}", "ord {}", "order #{}", "#{}", "ORD{}", "order number {}"]))
def test_order_id_spellings_normalise(n, template):
    assert extract_entities(f"please check {template.format(n)} thanks").order_ids == [f"ORD-{n}"]


@_FAST
@given(st.lists(st.text(min_size=1, max_size=3000), min_size=1, max_size=6))
def test_whatsapp_parts_fit(paragraphs):
    text = "\n\n".join(paragraphs)
    parts = split_messages(text)
    assert all(len(p) <= WHATSAPP_LIMIT for p in parts)
    assert "".join(parts).split() == text.split() or "".join("".join(parts).split()) == "".join(text.split())
