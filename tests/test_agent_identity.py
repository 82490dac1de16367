"""``SupportAgent(verify_identity=True)``: an email is a claim; an order id plus its postcode is proof.

The HTTP service turns this on for every session no identity key vouches for (see
``tests/test_service_security.py`` for the attacks over HTTP); in-process the caller signs
the customer in and the default stays off.
"""

from __future__ import annotations

import pytest

from evalkit.testing.fake_openai import FakeOpenAIServer, Reply
from reference_agent.agent import SupportAgent
from reference_agent.engine import VERIFY_ATTEMPTS, postcode_of
from reference_agent.llm_engine import LLMEngine

ANA = "ana.silva@example.com"


@pytest.mark.parametrize(("address", "postcode"), [
    ("405 Oak Ave, Portland, OR 97201", "97201"),
    ("39 Cedar Ln, Boston, MA 02108", "02108"),
    ("10 Downing St, London SW1A 2AA", "SW1A2AA"),
    ("no postcode here", ""),
])
def test_postcode_of_an_address(address, postcode):
    assert postcode_of(address) == postcode


def test_a_claim_is_not_identity_and_the_right_proof_is():
    agent = SupportAgent(session_id="v1", customer_email=ANA, verify_identity=True)
    assert agent.conv.customer is None and agent.conv.claimed_email == ANA
    r = agent.reply("Hello")
    assert "Ana" not in r.text and "Welcome back" not in r.text  # no name, no profile
    r = agent.reply("Where is ORD-10001?")
    assert r.tool_calls == [] and "ZIP code" in r.text and r.outcome == "asked"
    r = agent.reply("sure, it's 97201")
    assert r.text.startswith("Thanks, Ana, you're verified.") and "1ZHFE865U215DEZ1CT" in r.text
    assert agent.customer_email == ANA


def test_the_order_must_belong_to_the_claimed_customer():
    # Ben claims his own email but proves Ana's order (with her real postcode): refused.
    agent = SupportAgent(session_id="v2", customer_email="ben.carter@example.com", verify_identity=True)
    agent.reply("Where is ORD-10001?")
    r = agent.reply("97201")
    assert r.tool_calls == [] and "couldn't verify" in r.text and agent.conv.customer is None


def test_proof_without_a_claim_identifies_the_orders_owner():
    agent = SupportAgent(session_id="v3", verify_identity=True)
    agent.reply("I want to cancel order ORD-10036")
    r = agent.reply("02108")
    assert "Shall I go ahead and cancel order ORD-10036" in r.text
    assert agent.conv.customer is not None and agent.conv.customer["name"] == "David Okafor"


def test_wrong_proofs_lock_verification():
    agent = SupportAgent(session_id="v4", customer_email=ANA, verify_identity=True)
    agent.reply("Where is ORD-10001?")
    replies = [agent.reply(z) for z in ["11111", "22222", "33333", "97201"][: VERIFY_ATTEMPTS + 1]]
    assert replies[VERIFY_ATTEMPTS - 1].handoff is not None
    assert agent.conv.verify_locked and not agent.conv.verify("ORD-10001", "97201")
    assert all("1ZHFE865U215DEZ1CT" not in r.text for r in replies)


def test_without_verification_an_email_is_identity_as_before():
    agent = SupportAgent(session_id="v5", customer_email=ANA)
    assert "1ZHFE865U215DEZ1CT" in agent.reply("Where is ORD-10001?").text


def test_llm_engine_verifies_with_its_own_tool():
    with FakeOpenAIServer() as srv:
        srv.script = [
            Reply(tool_calls=[{"name": "identify_customer", "arguments": {"email": ANA}}]),
            Reply(tool_calls=[{"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}}]),
            Reply(tool_calls=[{"name": "verify_customer", "arguments": {"order_id": "ORD-10001", "postcode": "97201"}}]),
            Reply(tool_calls=[{"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}}]),
            Reply("It shipped."),
        ]
        engine = LLMEngine(base_url=srv.base_url, env={"OPENAI_API_KEY": "sk-test"}, model="gpt-4o-mini")
        agent = SupportAgent(session_id="v6", customer_email=ANA, engine=engine, verify_identity=True)
        r = agent.reply("Where is ORD-10001? My email is ana.silva@example.com and my ZIP is 97201")
        first = srv.chat_requests[0]
    assert "verify_customer" in first.tool_names and "identify_customer" not in first.tool_names
    assert "not verified yet" in first.messages[0]["content"]
    names = [(c["name"], c["error"]) for c in r.tool_calls]
    # identify_customer is not honoured (an unknown tool here); the order stays closed until verified.
    assert names[0][0] == "identify_customer" and names[0][1] is not None
    assert names[1] == ("check_order_status", "identity_required: The customer's email on file is needed before "
                                              "acting on an order.")
    assert names[2] == ("verify_customer", None) and names[3] == ("check_order_status", None)
