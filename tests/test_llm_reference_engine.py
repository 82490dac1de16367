"""The reference agent's LLM engine against the fake server: tool loop, handoff, routing, prompts."""

from __future__ import annotations

import json

import pytest

from evalkit.agents.base import SessionInfo, TurnContext
from evalkit.core.errors import AgentSpecError
from evalkit.testing.fake_openai import FakeOpenAIServer, Reply, Rule
from reference_agent.adapter import create_agent
from reference_agent.agent import SupportAgent
from reference_agent.engine import EngineUnavailableError
from reference_agent.llm_engine import LLMEngine, prompt_names

EMAIL = "ana.silva@example.com"


@pytest.fixture
def srv():
    with FakeOpenAIServer() as server:
        yield server


def engine(srv, **kw):
    return LLMEngine(base_url=srv.base_url, env={"OPENAI_API_KEY": "sk-ref-test"}, **{"model": "gpt-4o-mini", **kw})


def test_tool_loop_with_real_tools_and_store(srv):
    srv.rules = [
        Rule(Reply(tool_calls=[{"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}}]),
             after_tool=False),
        Rule(lambda req: "Your order is " + json.loads(req.last_message["content"])["status"] + ".", after_tool=True),
    ]
    agent = SupportAgent(session_id="t1", customer_email=EMAIL, engine=engine(srv))
    r = agent.reply("Where is my order ORD-10001?")
    assert r.text.startswith("Your order is shipped")
    assert r.tool_calls[0]["name"] == "check_order_status" and r.tool_calls[0]["error"] is None
    assert r.usage["model"] == "gpt-4o-mini" and r.usage["model_calls"] == 2 and r.usage["cost_usd"] > 0
    assert r.usage["model_ttft_ms"] is not None
    first, second = srv.chat_requests
    system = first.messages[0]["content"]
    assert "ACME-SYS-7F3A" in system and f"signed in as {EMAIL}" in system and "Shall I go ahead" in system
    assert "check_order_status" in first.tool_names and "identify_customer" in first.tool_names
    assert second.messages[-1]["role"] == "tool" and '"status": "shipped"' in second.messages[-1]["content"]
    assert first.body["stream"] is True
    # the conversation continues with its history
    srv.rules = [Rule("Anything else?")]
    agent.reply("thanks")
    assert [m["role"] for m in srv.chat_requests[-1].messages][-3:] == ["tool", "assistant", "user"]


def test_bounded_tool_iterations(srv):
    srv.default = Reply(tool_calls=[{"name": "lookup_faq", "arguments": {"question": "hours"}}])
    agent = SupportAgent(session_id="t2", engine=engine(srv, max_tool_iterations=2))
    r = agent.reply("What are your opening hours?")
    assert len(srv.chat_requests) == 3 and "tools" not in srv.chat_requests[-1].body
    assert len(r.tool_calls) == 2


def test_handoff_through_escalate_tool(srv):
    srv.script = [
        Reply(tool_calls=[{"name": "escalate_to_human", "arguments": {"reason": "customer asked for a human",
                                                                      "summary": "wants a person"}}]),
        Reply("A colleague will contact you."),
    ]
    agent = SupportAgent(session_id="t3", customer_email=EMAIL, engine=engine(srv))
    r = agent.reply("I want to talk to a person")
    assert r.handoff["ticket_id"] and r.end_conversation and r.outcome == "handoff"
    assert agent.end_state()["tickets"]


def test_identification_and_business_rules_apply(srv):
    srv.script = [
        Reply(tool_calls=[{"name": "identify_customer", "arguments": {"email": EMAIL}}]),
        Reply(tool_calls=[{"name": "cancel_order", "arguments": {"order_id": "ORD-10001"}}]),
        Reply("I couldn't cancel it: it has shipped."),
    ]
    agent = SupportAgent(session_id="t4", engine=engine(srv))
    r = agent.reply(f"I'm {EMAIL}, cancel ORD-10001")
    names = [c["name"] for c in r.tool_calls]
    assert names == ["identify_customer", "cancel_order"]
    assert r.tool_calls[1]["error"]  # a shipped order cannot be cancelled: the tool refuses
    assert "not identified" in srv.chat_requests[0].messages[0]["content"]
    assert f"signed in as {EMAIL}" in srv.chat_requests[1].messages[0]["content"]


def test_cost_aware_routing(srv):
    srv.default = Reply("We are open 9-17.")
    agent = SupportAgent(session_id="t5", customer_email=EMAIL, engine=engine(srv, cheap_model="gpt-4.1-nano"))
    agent.reply("What are your opening hours?")
    agent.reply("I want to return order ORD-10002")
    assert [r.body["model"] for r in srv.chat_requests] == ["gpt-4.1-nano", "gpt-4o-mini"]


def test_model_failure_is_an_honest_reply(srv):
    srv.fail_on = {i: "401" for i in range(1, 5)}
    agent = SupportAgent(session_id="t6", engine=engine(srv))
    r = agent.reply("hello")
    assert r.outcome == "failed" and "trouble" in r.text
    assert "sk-ref-test" not in json.dumps(r.usage)


def test_prompt_variants_and_config_errors(srv):
    assert {"support_v1", "support_v2"} <= set(prompt_names())
    srv.default = Reply("hi")
    SupportAgent(session_id="t7", engine=engine(srv, prompt="support_v1")).reply("hello")
    assert "Be brief and friendly" in srv.chat_requests[-1].messages[0]["content"]
    with pytest.raises(EngineUnavailableError):
        LLMEngine(env={})  # no model anywhere
    with pytest.raises(EngineUnavailableError):
        engine(srv, prompt="nope")


def test_adapter_spec_options(srv, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ref-test")
    srv.default = Reply("Hello from the LLM engine")
    create_agent(engine="llm", model="m1", base_url=srv.base_url, prompt="support_v1")  # validates
    info = SessionInfo(session_id="s", scenario_id="x", customer={"email": EMAIL})
    adapter = create_agent(info, engine="llm", model="m1", base_url=srv.base_url, prompt="support_v1")
    reply = adapter.respond(TurnContext(session=info, message="hi", turn=1))
    assert reply.content.startswith("Hello from the LLM engine")
    assert srv.chat_requests[-1].body["model"] == "m1"
    assert reply.usage.prompt_tokens > 0
    with pytest.raises(AgentSpecError):
        create_agent(engine="rules", model="m1")
    with pytest.raises(AgentSpecError):
        create_agent(engine="llm", model="m1", prompt="does_not_exist")
