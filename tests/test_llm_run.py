"""A whole run with an LLM user, LLM judges and the response cache, against the fake server."""

from __future__ import annotations

import json
import textwrap

import pytest

from evalkit.cli._model_options import build_llm_for_run, build_model_roles
from evalkit.run.runner import RunConfig, Runner
from evalkit.testing.fake_openai import FakeOpenAIServer, Rule

SCENARIO = textwrap.dedent("""
    id: hours-llm
    user:
      persona:
        goal: {description: Find out the shop's opening hours, intent: faq}
        facts: {name: Sam}
        max_turns: 4
    expect:
      - rubric: {criteria: The agent answers the question asked.}
      - llm_csat
""")

AGENT = textwrap.dedent("""
    def respond(ctx):
        return "We are open 9 to 5, Monday to Friday."

    def create(session=None):
        class A:
            def respond(self, ctx):
                return respond(ctx)
        return A()
""")


def customer(req):
    said = [m for m in req.messages if m["role"] == "assistant"]
    if not said:
        return {"message": "Hi, when are you open?", "end": "continue"}
    return {"message": "Great, thanks!", "end": "goal_met"}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "hours.yaml").write_text(SCENARIO)
    (tmp_path / "hours_agent.py").write_text(AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    for var in ("EVALKIT_MODEL", "EVALKIT_JUDGE_MODEL", "EVALKIT_SIMULATOR_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-run-secret-999")
    return tmp_path, suite


def run_once(tmp_path, suite, srv, out, cache):
    roles = build_model_roles(model="fake-model", base_url=srv.base_url)
    llm = build_llm_for_run(roles, cache=cache, cache_dir=tmp_path / "cache")
    cfg = RunConfig(suite=[suite], agent="hours_agent:create", out=tmp_path / out, simulator="llm", llm=llm,
                    progress=False, handle_signals=False, seed=1)
    return Runner(cfg).run_sync(), llm


def test_llm_run_and_cached_replay(setup):
    tmp_path, suite = setup
    with FakeOpenAIServer(rules=[
        Rule(customer, schema="customer_turn"),
        Rule(lambda req: {"reason": "answered", "score": 5}, schema="rubric_verdict"),
        Rule(lambda req: {"reason": "happy", "score": 4}, schema="llm_csat_verdict"),
        # The persona has no done_when: goal_completion checks the user's "goal met" claim.
        Rule(lambda req: {"reason": "the opening hours were given", "score": 5}, schema="goal_completion_verdict"),
    ]) as srv:
        first, llm = run_once(tmp_path, suite, srv, "run1", "read-write")
        conv = first.conversations[0]
        t = conv.transcript
        assert [turn.role for turn in t.turns] == ["user", "agent"]
        assert t.stop_reason == "goal_met" and t.turns[0].content == "Hi, when are you open?"
        verdicts = {v.judge: v for v in conv.verdicts}
        assert verdicts["rubric"].score == 5 and verdicts["llm_csat"].label == "satisfied"
        manifest = first.manifest
        assert manifest.models["judge"].startswith("fake-model @ http://127.0.0.1")
        assert manifest.cache["writes"] >= 3
        calls = len(srv.chat_requests)
        assert [r.schema_name for r in srv.chat_requests].count("goal_completion_verdict") == 1

        again, _ = run_once(tmp_path, suite, srv, "run2", "read-only")
        assert len(srv.chat_requests) == calls  # everything came from the cache
        same = again.conversations[0]
        assert [(v.judge, v.passed, v.score, v.reason) for v in same.verdicts] == \
               [(v.judge, v.passed, v.score, v.reason) for v in conv.verdicts]
        assert [x.content for x in same.transcript.turns] == [x.content for x in t.turns]
        assert again.manifest.cache["hits"] == calls and again.manifest.cache["misses"] == 0

    for f in (tmp_path / "run1").rglob("*"):
        if f.is_file():
            assert b"sk-run-secret-999" not in f.read_bytes(), f
    for f in (tmp_path / "cache").rglob("*.json"):
        assert "sk-run-secret-999" not in f.read_text()
        assert json.loads(f.read_text())["request"]["model"] == "fake-model"


PII_SCENARIO = textwrap.dedent("""
    id: contact-llm
    user:
      persona:
        goal: {description: Update my contact email, intent: account}
        max_turns: 4
    expect:
      - rubric: {criteria: The agent confirms the new email.}
""")


def pii_customer(req):
    said = [m for m in req.messages if m["role"] == "assistant"]
    if not said:
        return {"message": "Please change my email to ana.silva@example.com", "end": "continue"}
    return {"message": "Thanks, bye", "end": "goal_met"}


def test_redact_pii_run_writes_no_pii_to_the_response_cache(setup):
    tmp_path, suite = setup
    (suite / "hours.yaml").unlink()
    (suite / "contact.yaml").write_text(PII_SCENARIO)
    with FakeOpenAIServer(rules=[
        Rule(pii_customer, schema="customer_turn"),  # the simulator's answer holds an email: withheld
        Rule(lambda req: {"reason": "confirmed", "score": 5}, schema="rubric_verdict"),
    ]) as srv:
        roles = build_model_roles(model="fake-model", base_url=srv.base_url)
        llm = build_llm_for_run(roles, cache="read-write", cache_dir=tmp_path / "cache")
        cfg = RunConfig(suite=[suite], agent="hours_agent:create", out=tmp_path / "run", simulator="llm", llm=llm,
                        progress=False, handle_signals=False, seed=1, redact_pii=True)
        run = Runner(cfg).run_sync()
    conv = run.conversations[0]
    assert {v.judge: v.score for v in conv.verdicts}["rubric"] == 5  # judged on the raw transcript
    stats = run.manifest.cache
    assert stats["withheld"] == 1  # the first customer message (with the email) was not cached
    assert stats["writes"] >= 2  # the clean second message and the judge's answer were
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == stats["writes"]
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    assert "ana.silva@example.com" not in text and "ana.silva" not in text
    assert "@example.com" in text  # the judge's prompt is kept, with the address masked
    # Without --redact-pii the same answer is cached as the model gave it.
    llm2 = build_llm_for_run(roles, cache="read-write", cache_dir=tmp_path / "cache2")
    assert llm2.cache is not None and not llm2.cache.redact_pii


def test_cache_withholds_answers_with_pii_and_masks_requests(tmp_path):
    from evalkit.llm.cache import ResponseCache, request_key

    cache = ResponseCache(tmp_path, redact_pii=True)
    request = {"model": "m", "messages": [{"role": "user", "content": "call me on +44 20 7946 0958"}]}
    cache.put(request_key(request), request, {"content": "Noted: +44 20 7946 0958"})
    assert cache.stats.withheld == 1 and cache.stats.writes == 0 and not list(tmp_path.rglob("*.json"))
    key = request_key(request)
    cache.put(key, request, {"content": "Noted, thank you."})
    assert cache.get(key) == {"content": "Noted, thank you."}  # keyed by the raw request
    stored = json.loads(next(tmp_path.rglob("*.json")).read_text(encoding="utf-8"))
    assert "7946 0958" not in json.dumps(stored) and stored["request"]["model"] == "m"
    assert cache.stats.as_dict() == {"hits": 1, "misses": 0, "writes": 1, "withheld": 1}


def test_the_evaluation_spend_is_reported_apart_from_the_agent_cost(setup):
    """An LLM user and LLM judges against a rules-like agent: the report, summary.json and
    summary.md used to say "no model was called"; they now give the evaluation's own spend
    (simulated users, judges) and say the agent's cost separately."""
    tmp_path, suite = setup
    prices = tmp_path / "prices.yaml"
    prices.write_text("fake-model: {input: 1000, output: 2000}\n")  # USD per 1M tokens
    with FakeOpenAIServer(rules=[
        Rule(customer, schema="customer_turn"),
        Rule(lambda req: {"reason": "answered", "score": 5}, schema="rubric_verdict"),
        Rule(lambda req: {"reason": "happy", "score": 4}, schema="llm_csat_verdict"),
        # The persona has no done_when: goal_completion checks the user's "goal met" (a judge call).
        Rule(lambda req: {"reason": "the opening hours were given", "score": 5}, schema="goal_completion_verdict"),
    ]) as srv:
        roles = build_model_roles(model="fake-model", base_url=srv.base_url)
        llm = build_llm_for_run(roles, cache="off", prices=prices)
        cfg = RunConfig(suite=[suite], agent="hours_agent:create", out=tmp_path / "run", simulator="llm", llm=llm,
                        progress=False, handle_signals=False, seed=1)
        run = Runner(cfg).run_sync()
        calls = len(srv.chat_requests)
    usage = run.manifest.extra["llm_usage"]
    spent = usage["simulator"]["cost_usd"] + usage["judge"]["cost_usd"]
    assert calls == usage["simulator"]["calls"] + usage["judge"]["calls"] == 5 and spent > 0

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["cost_usd_total"] is None  # the agent's: it called no model
    assert summary["cost_note"] == "the agent reported no model usage"
    assert summary["eval_cost_usd_total"] == pytest.approx(spent)
    assert summary["eval_spend"]["simulator"]["calls"] == 2 and summary["eval_spend"]["judge"]["calls"] == 3

    said = f"${spent:.4f} (5 model calls: simulator 2, judge 3)"
    md = (tmp_path / "run" / "summary.md").read_text()
    assert "n/a: the agent reported no model usage" in md
    assert f"Evaluation's own spend (simulated users, judges), not the agent's: {said}" in md
    html = (tmp_path / "run" / "report.html").read_text()
    card = html[html.index('class="kpi kpi-cost"'):]
    card = card[: card.index('class="kpi kpi-passk"')]
    assert "no model was called" not in card and "offline" not in card
    assert "no agent model cost" in card and said in card
