"""The openai-chat agent adapter against the fake server: tool loop, bounds, streaming, cost."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from evalkit.agents.base import SessionInfo, TurnContext
from evalkit.agents.loader import load_agent
from evalkit.core.errors import AgentSpecError
from evalkit.testing.fake_openai import FakeOpenAIServer, Reply, Rule

TOOLS_MODULE = textwrap.dedent('''
    TOOLS = [
        {"type": "function", "function": {"name": "lookup_order", "description": "Find an order",
         "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                        "required": ["order_id"]}}},
        {"type": "function", "function": {"name": "transfer", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "broken", "parameters": {"type": "object", "properties": {}}}},
    ]

    def dispatch(name, arguments, session):
        if name == "lookup_order":
            session.state["looked_up"] = arguments["order_id"]
            return {"order_id": arguments["order_id"], "status": "shipped"}
        if name == "transfer":
            session.handoff("customer asked", ticket_id="T-1")
            return {"ok": True}
        raise RuntimeError("database down")
''')


@pytest.fixture
def tools_module(tmp_path, monkeypatch):
    (tmp_path / "my_shop_tools.py").write_text(TOOLS_MODULE)
    (tmp_path / "prompt.md").write_text("You are Acme's support agent.")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def srv():
    with FakeOpenAIServer(stream_delay_s=0.01) as server:
        yield server


def spec(srv, tmp, extra=""):
    return (f"openai-chat:gpt-4o-mini?system={tmp / 'prompt.md'}&tools=my_shop_tools:TOOLS"
            f"&base_url={srv.base_url}&max_retries=1{extra}")


def converse(provider, *messages, initial_state=None):
    info = SessionInfo(session_id="s1", scenario_id="sc", initial_state=initial_state)
    session = provider.new_session(info)
    ticks: list[int] = []

    async def go():
        try:
            replies = []
            for i, m in enumerate(messages, 1):
                ctx = TurnContext(session=info, message=m, turn=i, _on_first_token=lambda: ticks.append(1))
                replies.append(await session.respond(ctx))
            return replies
        finally:
            await provider.aclose()

    return asyncio.run(go()), session, ticks


def test_tool_loop_feeds_results_back(srv, tools_module, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    srv.rules = [
        Rule(Reply(tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "A100"}}]), after_tool=False),
        Rule(lambda req: f"Your order status: {req.last_message['content']}", after_tool=True),
    ]
    provider = load_agent(spec(srv, tools_module))
    (reply,), session, ticks = converse(provider, "Where is A100?", initial_state={"tier": "gold"})
    assert reply.tool_calls[0].name == "lookup_order"
    assert reply.tool_calls[0].result == {"order_id": "A100", "status": "shipped"}
    assert '"status": "shipped"' in reply.content
    assert session.end_state() == {"tier": "gold", "looked_up": "A100"}
    first, second = srv.chat_requests
    assert first.messages[0] == {"role": "system", "content": "You are Acme's support agent."}
    assert first.tool_names == ["lookup_order", "transfer", "broken"] and first.body["stream"] is True
    assert second.messages[-1]["role"] == "tool" and second.messages[-2]["tool_calls"]
    assert reply.usage.prompt_tokens == sum(
        len(__import__("json").dumps(r.messages)) // 4 for r in (first, second))
    assert reply.usage.cost_usd is not None and reply.usage.cost_usd > 0  # gpt-4o-mini is priced
    assert reply.metadata["model_calls"] == 2
    assert ticks == [1]  # time-to-first-token reported once per reply
    assert first.headers["authorization"] == "Bearer sk-test-secret-123"


def test_tool_iterations_are_bounded(srv, tools_module):
    srv.default = Reply("I keep calling", tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "X"}}])
    provider = load_agent(spec(srv, tools_module, "&max_tool_iterations=2&stream=0"))
    (reply,), _, _ = converse(provider, "hi")
    assert len(srv.chat_requests) == 3  # 2 rounds with tools, then one without
    assert "tools" not in srv.chat_requests[-1].body
    assert len(reply.tool_calls) == 2 and reply.metadata["tool_iterations_exhausted"] is True


def test_tool_errors_and_handoff(srv, tools_module):
    srv.script = [
        Reply(tool_calls=[{"name": "broken", "arguments": {}}, {"name": "nope", "arguments": {}}]),
        Reply("Sorry, something failed."),
        Reply(tool_calls=[{"name": "transfer", "arguments": {}}]),
        Reply("A colleague will take over."),
    ]
    provider = load_agent(spec(srv, tools_module))
    (r1, r2), _, _ = converse(provider, "check", "human please")
    assert r1.tool_calls[0].error == "RuntimeError: database down"
    assert r1.tool_calls[1].error == "unknown tool 'nope'"
    assert '{"error": "RuntimeError: database down"}' in [m.get("content") for m in srv.chat_requests[1].messages]
    assert r2.handoff.ticket_id == "T-1" and r2.end_conversation is True


def test_model_failure_raises_for_the_runner_to_record(srv, tools_module):
    from evalkit.llm import ModelCallError

    srv.fail_on = {1: "500", 2: "500"}
    provider = load_agent(spec(srv, tools_module))
    with pytest.raises(ModelCallError) as err:
        converse(provider, "hi")
    assert "server_error" in str(err.value)


def test_spec_errors(tools_module):
    for bad, needle in [
        ("openai-chat:", "needs a model"),
        ("openai-chat:m?tools=my_shop_tools:NOPE", "has no 'NOPE'"),
        ("openai-chat:m?system=/nonexistent.md", "cannot read system prompt"),
        ("openai-chat:m?colour=red", "unknown argument"),
        ("openai-chat:m?base_url=ftp://x", "not an http"),
        ("openai-chat:m?tools=my_shop_tools:TOOLS&dispatch=my_shop_tools:TOOLS", "not callable"),
    ]:
        with pytest.raises(AgentSpecError) as err:
            load_agent(bad)
        assert needle in str(err.value), bad
