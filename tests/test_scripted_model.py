"""The reference agent's scripted model: a scenario's fixed model replies, through the real client."""

from __future__ import annotations

import pytest

from evalkit.agents.base import SessionInfo
from evalkit.core.errors import AgentSpecError
from reference_agent.adapter import create_agent
from reference_agent.agent import SupportAgent
from reference_agent.engine import EngineUnavailableError
from reference_agent.llm_engine import LLMEngine
from reference_agent.scripted_model import ModelScriptError, ScriptedModel

EMAIL = "ana.silva@example.com"


def agent(script, *, stream: bool = True, **kw) -> tuple[SupportAgent, ScriptedModel]:
    model = ScriptedModel(script)
    engine = LLMEngine(model="scripted", client=model.client(), stream=stream, **kw)
    return SupportAgent(session_id="s", customer_email=EMAIL, engine=engine), model


@pytest.mark.parametrize("stream", [True, False])
def test_tool_calls_then_words_run_the_real_tools(stream):
    a, model = agent([
        {"say": "Let me look.", "calls": [{"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}},
                                          {"name": "check_order_status", "arguments": {"order_id": "ORD-1"}}]},
        {"say": "Your order has shipped."},
    ], stream=stream)
    r = a.reply("where is ORD-10001?")
    assert r.text == "Your order has shipped."
    assert [c["arguments"]["order_id"] for c in r.tool_calls] == ["ORD-10001", "ORD-1"]
    assert r.tool_calls[0]["error"] is None and r.tool_calls[0]["result"]["status"] == "shipped"
    assert r.tool_calls[1]["error"].startswith("invalid_order_id")
    assert r.usage["model_calls"] == 2 and r.usage["completion_tokens"] > 0
    assert [b.get("stream", False) for b in model.requests] == [stream, stream]
    # the second request carries both tool results back to the model, in order
    tool_msgs = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert '"shipped"' in tool_msgs[0]["content"] and "invalid_order_id" in tool_msgs[1]["content"]


def test_raw_json_arguments_are_passed_on_as_the_model_sent_them():
    a, _ = agent([{"call": {"name": "check_order_status", "arguments": "{not json"}}, {"say": "Sorry."}])
    r = a.reply("where is my order?")
    assert r.tool_calls[0]["error"].startswith("invalid_arguments")


def test_exhausted_script_is_a_failed_turn_not_a_crash():
    a, model = agent([{"say": "Hello!"}])
    assert a.reply("hi").text == "Hello!"
    r = a.reply("again")
    assert r.outcome == "failed" and "trouble" in r.text
    assert len(model.requests) == 2 and model.used == 1


def test_a_tool_call_where_no_tools_are_offered_fails_like_a_hosted_model_would():
    a, model = agent([{"call": {"name": "lookup_faq", "arguments": {"question": "hours"}}}] * 2,
                     max_tool_iterations=1)
    r = a.reply("opening hours?")
    assert r.outcome == "failed" and len(r.tool_calls) == 1
    assert "tools" not in model.requests[1]


@pytest.mark.parametrize(("script", "message"), [
    (None, "initial_state.model_script: must be a non-empty list"),
    ([], "initial_state.model_script: must be a non-empty list"),
    (["hello"], "initial_state.model_script[0]: must be a mapping"),
    ([{"sey": "hi"}], "initial_state.model_script[0]: unknown key 'sey' (use say, call or calls)"),
    ([{"say": "ok"}, {}], "initial_state.model_script[1]: give 'say', 'call' or 'calls'"),
    ([{"say": 3}], "initial_state.model_script[0].say: must be text"),
    ([{"call": {"name": "x"}, "calls": []}], "give 'call' or 'calls', not both"),
    ([{"calls": []}], "initial_state.model_script[0].calls: must be a non-empty list"),
    ([{"call": {"arguments": {}}}], "initial_state.model_script[0].call.name: must be a tool name"),
    ([{"call": {"name": "x", "args": {}}}], "initial_state.model_script[0].call: unknown key 'args'"),
    ([{"calls": [{"name": "x", "arguments": [1]}]}], "initial_state.model_script[0].calls[0].arguments: must be a mapping"),
])
def test_bad_scripts_name_the_entry_and_the_field(script, message):
    with pytest.raises(ModelScriptError) as err:
        ScriptedModel(script)
    assert message in str(err.value)


def test_scripted_model_name_never_reaches_a_real_endpoint():
    with pytest.raises(EngineUnavailableError, match="initial_state.model_script"):
        LLMEngine(model="scripted", env={})


def session(script, scenario="sc") -> SessionInfo:
    state = {"model_script": script} if script is not None else None
    return SessionInfo(session_id="x", scenario_id=scenario, customer={"email": EMAIL}, initial_state=state)


def test_adapter_plays_the_scenarios_script_and_restarts_it_on_reset():
    adapter = create_agent(session([{"say": "First."}]))  # the rules engine's spec: the script wins
    assert adapter.agent is not None and adapter.agent.scripted is not None
    assert adapter.agent.reply("hi").text == "First."
    adapter.reset()
    assert adapter.agent.reply("hi").text == "First."


def test_script_keeps_the_specs_prompt_and_tool_budget_and_composes_with_faults():
    adapter = create_agent(session([{"say": "ok"}]), engine="llm", model="gpt-4o-mini", prompt="support_v1",
                           max_tool_iterations=2, faults="leak_email")
    assert adapter.agent is not None
    engine = adapter.agent.engine
    # By name: another test may have imported the agent's modules afresh.
    assert type(engine).__name__ == "LLMEngine" and engine.model == "scripted"
    assert engine.prompt_name == "support_v1" and engine.max_tool_iterations == 2
    assert EMAIL in adapter.agent.reply("hi").text  # the seeded fault still applies


def test_without_a_script_the_spec_decides():
    adapter = create_agent(session(None))
    assert adapter.agent is not None and adapter.agent.scripted is None
    assert type(adapter.agent.engine).__name__ == "RulesEngine"


def test_a_bad_script_is_a_one_line_agent_error_naming_the_field():
    with pytest.raises(AgentSpecError) as err:
        create_agent(session([{"sey": "x"}], scenario="bad"))
    assert "initial_state.model_script[0]: unknown key 'sey'" in str(err.value)


def test_model_name_scripted_without_a_script_is_refused_at_spec_time():
    with pytest.raises(AgentSpecError, match="initial_state.model_script"):
        create_agent(engine="llm", model="scripted")


def test_output_guardrail_holds_against_the_scripted_model():
    """The point of a script: the model misbehaves, the agent's own layers must not."""
    a, _ = agent([{"say": "Mail bob@gmail.com or see card 4111 1111 1111 1111."}])
    r = a.reply("hi")
    assert "bob@gmail.com" not in r.text and "4111" not in r.text
    assert r.text == "Mail [email removed] or see card [card removed]." and r.messages == [r.text]


@pytest.mark.parametrize("extra", ["name", "self", "ctx", "force"])
def test_an_unknown_argument_is_a_refusal_whatever_its_name(extra):
    """A model's extra argument called ``name`` once collided with the tool runner's own
    parameter (a TypeError that failed the turn); every unknown argument is now refused."""
    a, _ = agent([{"call": {"name": "escalate_to_human", "arguments": {"reason": "complaint", extra: "Ana"}}},
                  {"say": "Sorry."}])
    r = a.reply("I want a human")
    assert r.text == "Sorry." and r.tool_calls[0]["error"].startswith("invalid_arguments")
    assert extra in r.tool_calls[0]["error"] and r.handoff is None
