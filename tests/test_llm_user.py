"""The LLM-simulated user against the fake server, including the premature goal_met guard."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from evalkit.core.errors import ConfigError
from evalkit.core.transcript import AgentTurn, Handoff, StopReason, ToolCall, Transcript, UserTurn
from evalkit.llm import LLMClient, ModelClients
from evalkit.scenarios.models import Scenario
from evalkit.simulators import make_simulator
from evalkit.simulators.base import SimulatorContext, Stop, UserMessage
from evalkit.simulators.llm import LLMUser
from evalkit.testing.fake_openai import FakeOpenAIServer, Reply


def scenario(opening=None, done_when=None):
    return Scenario.model_validate({
        "id": "cancel-1",
        "user": {"persona": {
            "name": "Dana",
            "traits": {"tone": "impatient"},
            "goal": {"description": "Get order A100 cancelled", "opening": opening,
                     "done_when": done_when or []},
            "facts": {"order_id": "A100", "email": "dana@example.com"},
            "unknown": ["phone number"],
            "instructions": "Mention you ordered by mistake.",
        }},
    })


def ctx(sc, turns, turn):
    return SimulatorContext(scenario=sc, transcript=Transcript(scenario_id=sc.id, turns=turns), turn=turn,
                            rng=random.Random(0), max_turns=10)


@pytest.fixture
def srv():
    with FakeOpenAIServer() as server:
        yield server


def play(user, c, client):
    async def go():
        try:
            return await user.next_turn(c)
        finally:
            await client.aclose()

    return asyncio.run(go())


def say(msg, end="continue"):
    return Reply(json={"message": msg, "end": end})


def test_needs_a_model():
    with pytest.raises(ConfigError) as err:
        LLMUser(scenario(), seed=1, llm=None)
    assert "--simulator llm needs a model" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        make_simulator(scenario(), kind="llm", llm=ModelClients(judge=None, simulator=None))


def test_prompt_and_roles(srv):
    srv.enqueue(say("Hi, I need to cancel an order."))
    client = LLMClient(srv.settings(), role="simulator")
    user = make_simulator(scenario(), kind="llm", seed=3, llm=ModelClients(simulator=client))
    assert isinstance(user, LLMUser)
    out = play(user, ctx(user.scenario, [], 1), client)
    assert out == UserMessage(content="Hi, I need to cancel an order.", act="llm")
    req = srv.chat_requests[0]
    system = req.messages[0]["content"]
    for needle in ("Dana", "impatient", "Get order A100 cancelled", "order_id: A100", "phone number",
                   "ordered by mistake", "ONLY when the agent asks", "Never invent"):
        assert needle in system, needle
    assert req.schema_name == "customer_turn" and req.body["seed"] == 3
    assert req.messages[-1]["role"] == "user"  # the chat-open cue


def test_opening_costs_no_call_and_roles_are_swapped(srv):
    client = LLMClient(srv.settings(), role="simulator")
    sc = scenario(opening="Cancel A100 please")
    user = LLMUser(sc, seed=0, llm=ModelClients(simulator=client))
    assert play(user, ctx(sc, [], 1), client).content == "Cancel A100 please"
    assert srv.chat_requests == []
    srv.enqueue(say("It's A100."))
    turns = [UserTurn(content="Cancel A100 please"), AgentTurn(content="Which order number?")]
    play(user, ctx(sc, turns, 2), client)
    msgs = srv.chat_requests[0].messages
    assert [m["role"] for m in msgs] == ["system", "assistant", "user"]
    assert json.loads(msgs[1]["content"])["message"] == "Cancel A100 please"
    assert msgs[2]["content"] == "Which order number?"


@pytest.mark.parametrize("end,reason", [("out_of_scope", StopReason.out_of_scope), ("gave_up", StopReason.gave_up),
                                        ("missing_info", StopReason.missing_info)])
def test_typed_endings(srv, end, reason):
    srv.enqueue(say("bye", end))
    client = LLMClient(srv.settings(), role="simulator")
    user = LLMUser(scenario(), llm=ModelClients(simulator=client))
    out = play(user, ctx(user.scenario, [UserTurn(content="x"), AgentTurn(content="y")], 2), client)
    assert out == Stop(reason=reason, detail="bye")


DONE_WHEN = [{"tool_called": {"name": "cancel_order"}}]


def test_premature_goal_met_is_rejected(srv):
    # The classic failure: the user says thanks right after confirming, before the change happened.
    srv.enqueue(say("Great, thanks, bye!", "goal_met"), say("Thanks!", "goal_met"))
    client = LLMClient(srv.settings(), role="simulator")
    sc = scenario(done_when=DONE_WHEN)
    user = LLMUser(sc, llm=ModelClients(simulator=client))
    turns = [UserTurn(content="cancel A100"), AgentTurn(content="Shall I cancel A100 for you?")]
    out = play(user, ctx(sc, turns, 2), client)
    assert isinstance(out, UserMessage) and out.act == "goal_claim_rejected"
    assert user.rejected_claims == 2
    assert len(srv.chat_requests) == 2
    feedback = srv.chat_requests[1].last_message["content"]
    assert "has NOT actually been done" in feedback
    # Only "not done yet": never the judges' reasons (they name the expected tool call).
    assert "cancel_order" not in feedback and "tool" not in feedback

    # After a rejection the model goes on talking: the message is sent, marked.
    srv.enqueue(say("Thanks, bye", "goal_met"), say("Yes please, cancel it now."))
    out = play(user, ctx(sc, turns, 2), LLMClient(srv.settings()))
    assert out == UserMessage(content="Yes please, cancel it now.", act="goal_claim_rejected")


def test_goal_met_accepted_once_done(srv):
    srv.enqueue(say("Thanks, bye", "goal_met"))
    client = LLMClient(srv.settings(), role="simulator")
    sc = scenario(done_when=DONE_WHEN)
    user = LLMUser(sc, llm=ModelClients(simulator=client))
    turns = [UserTurn(content="cancel A100"),
             AgentTurn(content="Cancelled.", tool_calls=[ToolCall(name="cancel_order", arguments={"order_id": "A100"},
                                                                  result={"ok": True})])]
    assert play(user, ctx(sc, turns, 2), client) == Stop(reason=StopReason.goal_met, detail="Thanks, bye")
    assert user.rejected_claims == 0


def test_transferred_only_after_a_real_handoff(srv):
    srv.enqueue(say("ok", "transferred"), say("ok", "transferred"))
    client = LLMClient(srv.settings(), role="simulator")
    user = LLMUser(scenario(), llm=ModelClients(simulator=client))
    turns = [UserTurn(content="human please"), AgentTurn(content="I will transfer you.")]
    out = play(user, ctx(user.scenario, turns, 2), client)
    assert isinstance(out, UserMessage) and out.act == "goal_claim_rejected"
    srv.enqueue(say("ok", "transferred"))
    turns[1] = AgentTurn(content="Transferring.", handoff=Handoff(ticket_id="T1"))
    out = play(user, ctx(user.scenario, turns, 2), LLMClient(srv.settings()))
    assert out == Stop(reason=StopReason.transferred, detail="ok")


def test_model_failure_propagates_as_model_call_error(srv):
    from evalkit.llm import ModelCallError

    srv.fail_on = {1: "500", 2: "500"}
    client = LLMClient(srv.settings(max_retries=1), role="simulator")
    user = LLMUser(scenario(), llm=ModelClients(simulator=client))
    with pytest.raises(ModelCallError):
        play(user, ctx(user.scenario, [], 1), client)


def test_without_done_when_goal_completion_checks_the_claim(srv):
    """A persona with no done_when: the claim is checked by goal_completion on the judge model
    (here it says the goal was not achieved), never taken on the user model's word."""
    srv.add_rule(lambda req: {"reason": "nothing was cancelled", "score": 1}, schema="goal_completion_verdict")
    srv.add_rule(say("Thanks, bye!", "goal_met"), schema="customer_turn", times=1)
    srv.add_rule(say("So, is it cancelled?"), schema="customer_turn")
    sim = LLMClient(srv.settings(), role="simulator")
    judge = LLMClient(srv.settings("judge-model"), role="judge")
    sc = scenario()
    user = LLMUser(sc, llm=ModelClients(simulator=sim, judge=judge))
    turns = [UserTurn(content="cancel A100"), AgentTurn(content="Sure, happy to help!")]
    out = play(user, ctx(sc, turns, 2), sim)
    assert out == UserMessage(content="So, is it cancelled?", act="goal_claim_rejected")
    checks = [r for r in srv.chat_requests if r.schema_name == "goal_completion_verdict"]
    assert len(checks) == 1 and checks[0].body["model"] == "judge-model" and user.goal_checks == 1


def test_without_done_when_or_judge_the_simulator_model_checks(srv):
    srv.add_rule(lambda req: {"reason": "cancelled, confirmed by the tool", "score": 5},
                 schema="goal_completion_verdict")
    srv.add_rule(say("Thanks, bye!", "goal_met"), schema="customer_turn")
    sim = LLMClient(srv.settings(), role="simulator")
    sc = scenario()
    user = LLMUser(sc, llm=ModelClients(simulator=sim))
    turns = [UserTurn(content="cancel A100"),
             AgentTurn(content="Cancelled.", tool_calls=[ToolCall(name="cancel_order", arguments={"order_id": "A100"},
                                                                  result={"ok": True})])]
    assert play(user, ctx(sc, turns, 2), sim) == Stop(reason=StopReason.goal_met, detail="Thanks, bye!")
    assert [r.schema_name for r in srv.chat_requests] == ["customer_turn", "goal_completion_verdict"]


def test_missing_info_is_a_scenario_gap_left_out_of_agent_metrics():
    from evalkit.core.results import ConversationResult
    from evalkit.metrics.summary import summarize, summarize_with_ci

    def conv(sid, stop, outcome):
        return ConversationResult(transcript=Transcript(
            scenario_id=sid, stop_reason=stop, outcome=outcome,
            turns=[UserTurn(content="hi"), AgentTurn(content="which order?", latency_ms=10)]))

    from evalkit.core.transcript import Outcome

    convs = [conv("a", StopReason.goal_met, Outcome.resolved), conv("b", StopReason.missing_info, Outcome.abandoned),
             conv("c", StopReason.out_of_scope, Outcome.abandoned)]
    s = summarize(convs)
    assert s["n_scenario_gaps"] == 1 and s["n_conversations"] == 2
    assert s["automation_rate"] == pytest.approx(0.5)  # out_of_scope counts against the agent; the gap does not
    ci = summarize_with_ci(convs, n_resamples=50)
    assert ci["n_scenario_gaps"].value == 1 and ci["automation_rate"].value == pytest.approx(0.5)
