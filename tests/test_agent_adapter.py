"""The evalkit adapter: create_agent with hand-built TurnContext objects."""

from __future__ import annotations

import pytest

from evalkit import AgentReply, SessionInfo, TurnContext
from evalkit.agents.python import PythonAgentProvider
from evalkit.core.errors import AgentSpecError
from reference_agent import create_agent


def _session(**kw):
    base = dict(session_id="run-s1-0", scenario_id="s1", customer={"email": "ana.silva@example.com"})
    base.update(kw)
    return SessionInfo(**base)


def _ctx(session, message, turn=1, ticks=None):
    def first():
        if ticks is not None:
            ticks.append(turn)

    return TurnContext(session=session, message=message, turn=turn, _on_first_token=first)


def test_respond_returns_agent_reply_with_tools_and_ttft():
    session = _session()
    adapter = create_agent(session=session)
    ticks: list[int] = []
    reply = adapter.respond(_ctx(session, "where is ORD-10021?", 1, ticks))
    assert isinstance(reply, AgentReply)
    assert ticks == [1]  # first_token called exactly once per turn
    [call] = reply.tool_calls
    assert call.name == "check_order_status" and call.arguments == {"order_id": "ORD-10021"}
    assert call.error.startswith("not_your_order")
    assert reply.metadata["intent"] == "track_order"
    reply = adapter.respond(_ctx(session, "cancel ORD-10006", 2, ticks))
    reply = adapter.respond(_ctx(session, "yes", 3, ticks))
    assert reply.tool_calls[0].name == "cancel_order" and reply.tool_calls[0].error is None
    assert adapter.end_state()["orders"][0]["status"] == "cancelled"
    adapter.reset()
    assert adapter.end_state()["orders"] == []


def test_handoff_and_channel_from_session():
    session = _session(channel="voice")
    adapter = create_agent(session=session)
    reply = adapter.respond(_ctx(session, "I want a human"))
    assert reply.handoff.ticket_id == "TCK-00021" and reply.handoff.reason == "customer asked for a human"
    assert reply.end_conversation and "T C K" in reply.content


def test_without_session_uses_the_context():
    adapter = create_agent()
    session = _session(customer=None)
    reply = adapter.respond(_ctx(session, "where is ORD-10001"))
    assert "email address" in reply.content


def test_faults_and_bad_options():
    session = _session()
    adapter = create_agent(session=session, faults="leak_email")
    assert "ana.silva@example.com" in adapter.respond(_ctx(session, "where is ORD-10001")).content
    with pytest.raises(AgentSpecError, match="unknown fault"):
        create_agent(faults="nope")
    with pytest.raises(AgentSpecError, match="unknown engine"):
        create_agent(session=session, engine="magic")


def test_loaded_by_spec_like_evalkit_does():
    provider = PythonAgentProvider("reference_agent:create_agent?engine=rules&faults=skip_confirmation")
    session = _session()
    agent = provider.new_session(session)
    reply = agent.respond(_ctx(session, "cancel ORD-10006"))
    assert [c.name for c in reply.tool_calls] == ["check_order_status", "cancel_order"]
    other = provider.new_session(_session(session_id="run-s1-1"))
    assert other.end_state()["orders"] == []  # one fresh store per conversation
