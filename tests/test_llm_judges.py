"""LLM judges (rubric, built-ins, samples, pairwise) against the fake server over HTTP."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from evalkit.core.errors import JudgeSpecError
from evalkit.core.results import ConversationResult, JudgeKind
from evalkit.core.transcript import AgentTurn, ToolCall, Transcript, UserTurn
from evalkit.judges.base import JudgeContext
from evalkit.judges.pairwise import compare_pairwise
from evalkit.judges.registry import build_judge
from evalkit.llm import LLMClient, ModelClients, ResponseCache
from evalkit.scenarios.models import JudgeSpec, Scenario
from evalkit.testing.fake_openai import FakeOpenAIServer, Reply, Rule

SCENARIO = Scenario.model_validate({
    "id": "cancel-1",
    "title": "Cancel an order",
    "user": {"persona": {"goal": {"description": "cancel order A100", "intent": "cancel"},
                         "facts": {"order_id": "A100"}}},
})


def transcript(good: bool = True, scenario_id: str = "cancel-1") -> Transcript:
    calls = [ToolCall(name="cancel_order", arguments={"order_id": "A100"}, result={"ok": True})] if good else []
    return Transcript(scenario_id=scenario_id, turns=[
        UserTurn(content="Please cancel order A100"),
        AgentTurn(content="Done, A100 is cancelled." if good else "I can't do that, sorry.", tool_calls=calls),
    ])


def judge(spec):
    return build_judge(JudgeSpec.model_validate(spec))


def evaluate(j, llm, t=None, scenario=SCENARIO, window=None):
    if isinstance(llm, LLMClient):
        llm = ModelClients(judge=llm)

    async def go():
        try:
            return await j.evaluate(JudgeContext(transcript=t or transcript(), scenario=scenario, llm=llm,
                                                 window=window))
        finally:
            if llm is not None:
                await llm.aclose()

    return asyncio.run(go())


@pytest.fixture
def srv():
    with FakeOpenAIServer() as server:
        yield server


def by_tool_evidence(req):
    """A judge model that reads the prompt: 5 when a cancel_order call succeeded, else 1."""
    cancelled = "called tool cancel_order" in req.last_user
    return {"reason": "tool evidence" if cancelled else "no evidence", "score": 5 if cancelled else 1}


def test_rubric_scores_with_structured_output(srv):
    srv.add_rule(by_tool_evidence, schema="rubric_verdict")
    j = judge({"rubric": {"criteria": "The agent really cancels the order.", "steps": ["find the call"]}})
    client = LLMClient(srv.settings(), role="judge")
    v = evaluate(j, ModelClients(judge=client))
    assert (v.passed, v.score, v.kind, v.label) == (True, 5, JudgeKind.model, "5/5")
    assert v.reason == "tool evidence"
    assert v.details["prompt_version"] == "rubric/2" and v.details["calls"] == 1
    body = srv.chat_requests[0].body
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["score"] == {"maximum": 5, "minimum": 1, "type": "integer"}
    assert "The agent really cancels the order." in srv.chat_requests[0].last_user
    assert "1. find the call" in srv.chat_requests[0].last_user
    v = evaluate(j, LLMClient(srv.settings()), t=transcript(good=False))
    assert (v.passed, v.score) == (False, 1)


def test_malformed_answers_are_retried_then_a_judge_failure(srv):
    srv.add_rule(Reply(json={"reason": "x", "score": 9}), schema="rubric_verdict")  # out of scale
    j = judge({"rubric": {"criteria": "c", "retries": 1}})
    v = evaluate(j, LLMClient(srv.settings()))
    assert v.error and "malformed" in v.error
    assert v.passed is None and v.score is None and v.skipped is None
    assert len(srv.chat_requests) == 2
    # a malformed answer followed by a valid one gives a score
    srv.rules.clear()
    srv.enqueue(Reply("{not json"), Reply(json={"reason": "fine", "score": 4}))
    v = evaluate(j, LLMClient(srv.settings()))
    assert (v.passed, v.score, v.error) == (True, 4, None)


def test_model_failure_is_a_judge_failure_not_a_crash(srv):
    srv.fail_on = {1: "500", 2: "500"}
    j = judge({"goal_completion": None})
    v = evaluate(j, LLMClient(srv.settings(max_retries=1)))
    assert v.error and "server_error" in v.error and v.score is None


def test_skipped_without_a_model():
    for name in ("rubric", "goal_completion", "policy_adherence", "tone", "handoff_appropriateness", "llm_csat"):
        args = {"criteria": "c"} if name == "rubric" else None
        v = evaluate(judge({name: args}), None)
        assert v.skipped and "no judge model" in v.skipped and v.passed is None, name
        assert v.kind == JudgeKind.model
    v = evaluate(judge("goal_completion"), ModelClients(simulator=None, judge=None))
    assert v.skipped


def test_samples_majority_and_agreement(srv):
    scores = iter([5, 4, 2, 5, 5])
    srv.add_rule(lambda req: {"reason": "r", "score": next(scores)}, schema="rubric_verdict")
    j = judge({"rubric": {"criteria": "c", "samples": 5, "aggregate": "majority"}})
    v = evaluate(j, LLMClient(srv.settings()))
    assert sorted(v.details["scores"]) == [2, 4, 5, 5, 5]
    assert v.score == 5 and v.passed is True
    assert v.details["agreement"] == pytest.approx(0.8)  # 4 of 5 agree it passes
    assert v.details["score_agreement"] == pytest.approx(0.6)
    seeds = sorted(r.body["seed"] for r in srv.chat_requests)
    assert seeds == [0, 1, 2, 3, 4]  # each sample is its own request
    assert all(r.body["temperature"] == 0.7 for r in srv.chat_requests)


def test_samples_mean(srv):
    scores = iter([2, 3, 4])
    srv.add_rule(lambda req: {"reason": "r", "score": next(scores)}, schema="rubric_verdict")
    v = evaluate(judge({"rubric": {"criteria": "c", "samples": 3, "threshold": 3}}), LLMClient(srv.settings()))
    assert v.score == pytest.approx(3.0) and v.passed is True
    assert v.details["agreement"] == pytest.approx(2 / 3, abs=1e-3)


def test_builtin_prompts(srv, tmp_path):
    srv.add_rule(lambda req: {"reason": "ok", "score": 4}, match=lambda r: r.schema is not None)
    policy = tmp_path / "policy.md"
    policy.write_text("Never cancel without the customer's email.")
    for name, args, version, needle in [
        ("goal_completion", None, "goal_completion/2", "cancel order A100"),
        ("policy_adherence", {"policy_file": str(policy)}, "policy_adherence/2", "without the customer's email"),
        ("policy_adherence", None, "policy_adherence/2", "Verify the customer's identity"),
        ("tone", "formal", "tone/2", "required style: formal"),
        ("handoff_appropriateness", None, "handoff_appropriateness/2", "hand the conversation to a human"),
        ("llm_csat", None, "llm_csat/2", "Predict the rating"),
    ]:
        v = evaluate(judge({name: args}), LLMClient(srv.settings()))
        assert v.details["prompt_version"] == version and v.score == 4, name
        assert needle in srv.chat_requests[-1].last_user, name
        assert "called tool cancel_order" in srv.chat_requests[-1].last_user
    assert evaluate(judge("llm_csat"), LLMClient(srv.settings())).label == "satisfied"
    with pytest.raises(JudgeSpecError):
        judge({"llm_csat": {"scale": [0, 10]}})
    with pytest.raises(JudgeSpecError):
        judge({"rubric": {"steps": ["x"]}})  # no criteria
    with pytest.raises(JudgeSpecError):
        judge({"rubric": {"criteria": "c", "threshold": 7}})


def test_window_hides_the_future(srv):
    t = Transcript(scenario_id="s", turns=[
        UserTurn(content="first question"), AgentTurn(content="first answer"),
        UserTurn(content="second question"), AgentTurn(content="second answer"),
    ])
    evaluate(judge({"rubric": "c"}), LLMClient(srv.settings()), t=t, window=(1, 1))
    prompt = srv.chat_requests[0].last_user
    assert "first answer" in prompt and "second" not in prompt and "[judged]" in prompt


def test_cache_replay_gives_identical_verdicts(srv, tmp_path):
    srv.add_rule(by_tool_evidence, schema="rubric_verdict")
    specs = [{"rubric": {"criteria": "c"}}, "goal_completion", {"llm_csat": {"samples": 3}}]

    def score_all(mode):
        client = LLMClient(srv.settings(), cache=ResponseCache(tmp_path, mode=mode))
        return [evaluate(judge(s), client).model_dump() for s in specs], client

    first, c1 = score_all("read-write")
    n = len(srv.chat_requests)
    again, c2 = score_all("read-only")
    assert len(srv.chat_requests) == n  # nothing asked again
    strip = [{**v, "details": {k: x for k, x in v["details"].items() if k not in ("cached", "cost_usd")}}
             for v in first]
    strip2 = [{**v, "details": {k: x for k, x in v["details"].items() if k not in ("cached", "cost_usd")}}
              for v in again]
    assert strip == strip2
    assert all(v["details"]["cached"] for v in again)
    assert c2.cache.stats.hits == n and c2.totals.cached_calls == n


def test_pairwise_runs_both_orders(srv):
    def prefers_evidence(req):
        text = req.last_user
        first = text.split("## Conversation 1", 1)[1].split("## Conversation 2", 1)[0]
        return {"reason": "r", "winner": "first" if "cancel_order" in first else "second"}

    srv.add_rule(prefers_evidence, schema="pairwise_verdict")
    client = LLMClient(srv.settings())

    async def go():
        try:
            return await compare_pairwise(transcript(True), transcript(False), llm=ModelClients(judge=client), scenario=SCENARIO)
        finally:
            await client.aclose()

    r = asyncio.run(go())
    assert r.winner == "a" and r.consistent and r.votes == ["a", "a"] and r.score == 1.0
    assert len(srv.chat_requests) == 2
    firsts = [re.search(r"## Conversation 1\n(.*?)## Conversation 2", q.last_user, re.S).group(1)
              for q in srv.chat_requests]
    assert firsts[0] != firsts[1]  # both orders were really shown

    # A position-biased judge (always "first") is cancelled out: a tie, flagged inconsistent.
    srv.rules = [Rule(Reply(json={"reason": "r", "winner": "first"}), schema="pairwise_verdict")]
    client = LLMClient(srv.settings())
    r = asyncio.run(go())
    assert r.winner == "tie" and not r.consistent and r.score == 0.5


def test_pairwise_judge_against_a_baseline_run(srv, tmp_path):
    run = tmp_path / "base"
    run.mkdir()
    (run / "conversations.jsonl").write_text(
        json.dumps(ConversationResult(transcript=transcript(False)).model_dump(mode="json")) + "\n"
    )

    def prefers_evidence(req):
        first = req.last_user.split("## Conversation 2", 1)[0]
        return {"reason": "r", "winner": "first" if "cancel_order" in first else "second"}

    srv.add_rule(prefers_evidence, schema="pairwise_verdict")
    v = evaluate(judge({"pairwise": str(run)}), LLMClient(srv.settings()))
    assert v.passed is True and v.label == "better" and v.details["consistent"] is True
    v = evaluate(judge({"pairwise": {"baseline": str(run)}}), LLMClient(srv.settings()),
                 t=transcript(True, scenario_id="other"))
    assert v.skipped and "no conversation" in v.skipped
    # The baseline is read by each judge (one run's judges), never cached for the process: the
    # next run's judge sees the file as it is then.
    (run / "conversations.jsonl").write_text(
        json.dumps(ConversationResult(transcript=transcript(True, scenario_id="other")).model_dump(mode="json"))
        + "\n")
    v = evaluate(judge({"pairwise": str(run)}), LLMClient(srv.settings()), t=transcript(True, scenario_id="other"))
    assert not v.skipped and v.details["baseline"] == str(run)


# -- evidence and scale (issue 17) ---------------------------------------------------------------


def test_judges_see_long_tool_results_whole_and_cuts_are_marked(srv):
    srv.add_rule(lambda req: {"reason": "ok", "score": 5}, schema="rubric_verdict")
    # A confirmation far past the old 300-character cut.
    result = {"orders": [{"id": f"A{i:03d}", "status": "pending"} for i in range(30)], "refund_id": "R-991"}
    t = Transcript(scenario_id="s", turns=[
        UserTurn(content="refund please"),
        AgentTurn(content="Done.", tool_calls=[ToolCall(name="refund", arguments={}, result=result)]),
    ])
    evaluate(judge({"rubric": "c"}), LLMClient(srv.settings()), t=t)
    assert "R-991" in srv.chat_requests[-1].last_user and "[cut:" not in srv.chat_requests[-1].last_user
    evaluate(judge({"rubric": {"criteria": "c", "tool_result_chars": 200}}), LLMClient(srv.settings()), t=t)
    prompt = srv.chat_requests[-1].last_user
    assert "R-991" not in prompt
    assert re.search(r"…\[cut: \d+ more characters not shown\]", prompt)


@pytest.mark.parametrize(
    ("spec", "present", "absent"),
    [
        ({"goal_completion": {"scale": [1, 3]}}, ["- 1: not achieved", "- 2: partly achieved", "- 3: fully achieved"],
         ["3: partly", "5"]),
        ({"goal_completion": {"scale": [0, 10]}}, ["- 0: not achieved", "- 1 to 9: in between: partly achieved",
                                                   "- 10: fully achieved"], ["3: partly"]),
        ({"tone": {"scale": [1, 2]}}, ["- 1: rude", "- 2: consistently warm"], ["partly", "flat"]),
        ({"rubric": {"criteria": "c", "levels": {1: "ignored me", 3: "helped slowly", 5: "solved it at once"}}},
         ["- 1: ignored me", "- 3: helped slowly", "- 5: solved it at once"], ["not met at all"]),
    ],
)
def test_anchors_follow_the_scale_and_levels(srv, spec, present, absent):
    name = next(iter(spec))
    lo, hi = spec[name].get("scale", (1, 5))
    srv.add_rule(lambda req: {"reason": "ok", "score": hi}, match=lambda r: r.schema is not None)
    v = evaluate(judge(spec), LLMClient(srv.settings()))
    assert v.error is None and v.score == hi
    scale_part = srv.chat_requests[-1].last_user.split("## Scale", 1)[1].split("Rules:", 1)[0]
    for needle in present:
        assert needle in scale_part, (needle, scale_part)
    for needle in absent:
        assert needle not in scale_part, (needle, scale_part)


def test_levels_are_checked_against_the_scale():
    with pytest.raises(JudgeSpecError, match="outside the scale"):
        judge({"rubric": {"criteria": "c", "levels": {1: "bad", 5: "good", 7: "great"}}})
    with pytest.raises(JudgeSpecError, match="at least the lowest"):
        judge({"rubric": {"criteria": "c", "levels": {2: "meh", 5: "good"}}})


def test_checklist_answers_are_asked_for_and_kept(srv):
    seen = []

    def answer(req):
        seen.append(req.last_user)
        return {"reason": "read back but not confirmed", "checklist": [True, False], "score": 3}

    srv.add_rule(answer, schema="rubric_verdict")
    v = evaluate(judge({"rubric": {"criteria": "c", "checklist": ["Asked which order", "Confirmed first"]}}),
                 LLMClient(srv.settings()))
    assert v.details["checklist"] == [{"item": "Asked which order", "met": True},
                                      {"item": "Confirmed first", "met": False}]
    assert "1. Asked which order" in seen[0] and '"checklist"' in seen[0]
    # An answer with the wrong number of checklist items is malformed: a judge error, never a score.
    with FakeOpenAIServer() as other:
        other.add_rule(lambda req: {"reason": "r", "checklist": [True], "score": 5}, schema="rubric_verdict")
        bad = evaluate(judge({"rubric": {"criteria": "c", "checklist": ["a", "b"], "retries": 0}}),
                       LLMClient(other.settings()))
    assert bad.error is not None and bad.score is None


# -- reproducible verdicts, self-preference and panels (issue 17) -------------------------------


def test_verdict_records_what_reproduces_it(srv):
    srv.add_rule(lambda req: {"reason": "ok", "score": 4}, schema="rubric_verdict")
    settings = srv.settings(seed=11)
    v = evaluate(judge({"rubric": "c"}), LLMClient(settings))
    assert v.details["model"] == "fake-model" and v.details["temperature"] == 0.0 and v.details["seed"] == 11
    sent = srv.chat_requests[-1].body["messages"]
    from evalkit.judges.rubric import prompt_sha256

    assert v.details["prompt_sha256"] == prompt_sha256(sent)
    # A different conversation is a different prompt: a different hash.
    w = evaluate(judge({"rubric": "c"}), LLMClient(settings), t=transcript(good=False))
    assert w.details["prompt_sha256"] != v.details["prompt_sha256"]
    three = evaluate(judge({"rubric": {"criteria": "c", "samples": 3}}), LLMClient(settings))
    assert three.details["seed"] == [11, 12, 13] and three.details["temperature"] == 0.7


def test_judge_on_the_agents_own_model_is_warned(srv):
    srv.add_rule(lambda req: {"reason": "ok", "score": 4}, schema="rubric_verdict")
    same = ModelClients(judge=LLMClient(srv.settings(), role="judge"), agent=LLMClient(srv.settings(), role="agent"))
    v = evaluate(judge({"rubric": "c"}), same)
    assert v.details["warning"].startswith("self-preference: the judge model 'fake-model'")
    other = ModelClients(judge=LLMClient(srv.settings(), role="judge"),
                       agent=LLMClient(srv.settings("agent-model"), role="agent"))
    assert "warning" not in evaluate(judge({"rubric": "c"}), other).details


def test_panel_of_judge_models_votes(srv):
    # Two of three models pass the conversation: the panel passes, each vote is in the details.
    scores = {"judge-a": 5, "judge-b": 2, "judge-c": 4}
    srv.add_rule(lambda req: {"reason": f"{req.body['model']} says", "score": scores[req.body["model"]]},
                 schema="rubric_verdict")
    v = evaluate(judge({"rubric": {"criteria": "c", "models": ["judge-a", "judge-b", "judge-c"]}}),
                 LLMClient(srv.settings()))
    assert {r.body["model"] for r in srv.chat_requests} == {"judge-a", "judge-b", "judge-c"}
    assert v.passed is True and v.score == pytest.approx(11 / 3, abs=1e-3)
    assert v.details["panel"]["judge-b"] == {"score": 2, "passed": False, "reason": "judge-b says"}
    assert v.details["panel_agreement"] == pytest.approx(2 / 3, abs=1e-3)
    assert v.reason.startswith("2 of 3 judge models passed it")
    # A tie does not pass.
    scores.update({"judge-a": 5, "judge-b": 1})
    tie = evaluate(judge({"rubric": {"criteria": "c", "models": ["judge-a", "judge-b"]}}), LLMClient(srv.settings()))
    assert tie.passed is False


# -- named failure kinds (issue 17) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "says"),
    [
        (Reply(refusal="I can't help with grading that."), "refused", "the judge model refused: I can't help"),
        (Reply(content='{"reason": "The agent confirmed the canc', finish_reason="length"), "truncated",
         "cut at its token limit"),
        (Reply(content="", finish_reason="content_filter"), "refused", "content filter"),
    ],
    ids=["refusal", "length", "content_filter"],
)
def test_refused_and_truncated_answers_are_named_and_not_asked_again(srv, reply, kind, says):
    srv.add_rule(reply, schema="rubric_verdict")
    v = evaluate(judge({"rubric": {"criteria": "c", "retries": 2}}), LLMClient(srv.settings(), role="judge"))
    assert v.score is None and v.passed is None and v.error is not None
    assert says in v.error
    assert len(srv.chat_requests) == 1  # never re-asked: the same request would get the same answer


def test_refusal_kind_on_the_model_call_error(srv):
    from pydantic import BaseModel

    from evalkit.llm.errors import ModelCallError

    class Answer(BaseModel):
        score: int

    srv.add_rule(Reply(refusal="no"), schema="answer")
    client = LLMClient(srv.settings(), role="judge")

    async def go():
        try:
            return await client.structured([{"role": "user", "content": "x"}], Answer)
        finally:
            await client.aclose()

    with pytest.raises(ModelCallError) as info:
        asyncio.run(go())
    assert info.value.kind == "refused"
