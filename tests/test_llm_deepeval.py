"""deepeval conversational metrics through evalkit's client, against the fake server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from evalkit.core.errors import JudgeSpecError, ScenarioError
from evalkit.core.transcript import AgentTurn, ToolCall, Transcript, UserTurn
from evalkit.integrations.interop.deepeval_goldens import export_goldens, import_goldens
from evalkit.judges.base import JudgeContext
from evalkit.judges.registry import build_judge
from evalkit.llm import LLMClient, ModelClients, ResponseCache
from evalkit.scenarios.models import JudgeSpec, Scenario
from evalkit.testing.fake_openai import FakeOpenAIServer, Reply

T = Transcript(scenario_id="late-1", turns=[
    UserTurn(content="My order A100 is late"),
    AgentTurn(content="Let me check.", tool_calls=[ToolCall(name="check_order", arguments={"order_id": "A100"},
                                                            result={"status": "shipped"})]),
    UserTurn(content="When will it arrive?"),
    AgentTurn(content="Bananas are rich in potassium."),
])


@pytest.fixture
def srv():
    with FakeOpenAIServer() as server:
        yield server


def measure(spec, client, t=T):
    j = build_judge(JudgeSpec.model_validate(spec))
    llm = ModelClients(judge=client) if client is not None else None

    async def go():
        try:
            return await j.evaluate(JudgeContext(transcript=t, llm=llm))
        finally:
            if llm is not None:
                await llm.aclose()

    return asyncio.run(go())


def test_deepeval_is_imported_lazily_with_telemetry_off():
    code = (
        "import sys, os\n"
        "from evalkit.judges.registry import build_judge\n"
        "from evalkit.scenarios.models import JudgeSpec\n"
        "build_judge(JudgeSpec.model_validate({'deepeval': 'knowledge_retention'}))\n"
        "import evalkit.judges.deepeval_metrics as m\n"
        "assert 'deepeval' not in sys.modules, 'imported eagerly'\n"
        "m.import_deepeval()\n"
        "assert os.environ['DEEPEVAL_TELEMETRY_OPT_OUT'] == 'YES'\n"
        "assert os.environ['DEEPEVAL_DISABLE_DOTENV'] == '1'\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DEEPEVAL_TELEMETRY_OPT_OUT": "NO", "HOME": "/tmp"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_turn_relevancy_with_fake_verdicts(srv):
    # The first turn-relevancy verdict is "no", later ones default to the schema's first enum ("yes").
    srv.add_rule(Reply(json={"verdict": "no", "reason": "off topic"}), schema="TurnRelevancyVerdict", times=1)
    v = measure({"deepeval": {"metric": "turn_relevancy", "threshold": 0.7}}, LLMClient(srv.settings()))
    assert v.judge == "deepeval_turn_relevancy" and v.error is None
    assert v.score == pytest.approx(0.5) and v.passed is False
    assert v.details["calls"] == len(srv.chat_requests) >= 3
    names = {r.schema_name for r in srv.chat_requests}
    assert "TurnRelevancyVerdict" in names
    # every call went through evalkit's client: structured output with deepeval's schema
    assert all(r.body["response_format"]["type"] == "json_schema" for r in srv.chat_requests)
    prompts = " ".join(r.last_user for r in srv.chat_requests)
    assert "Bananas are rich in potassium" in prompts


def test_test_case_carries_tool_calls_and_roles():
    from evalkit.judges.deepeval_metrics import to_test_case

    sc = Scenario.model_validate({"id": "late-1", "user": {"persona": {"goal": {"description": "find A100"}}}})
    case = to_test_case(T, sc, chatbot_role="Acme support")
    assert [t.role for t in case.turns] == ["user", "assistant", "user", "assistant"]
    call = case.turns[1].tools_called[0]
    assert (call.name, call.input_parameters, call.output) == ("check_order", {"order_id": "A100"}, {"status": "shipped"})
    assert case.chatbot_role == "Acme support" and "find A100" in case.expected_outcome


@pytest.mark.parametrize("metric", ["knowledge_retention", "role_adherence", "conversation_completeness"])
def test_other_metrics_run(srv, metric):
    v = measure({"deepeval": metric}, LLMClient(srv.settings()))
    assert v.error is None and v.score is not None and 0 <= v.score <= 1
    assert v.details["metric"] == metric and v.details["calls"] >= 1


def test_conversational_g_eval(srv):
    srv.add_rule(lambda req: {"score": 2, "reason": "asked twice"} if "score" in (req.schema or {}).get(
        "properties", {}) else None, match=lambda r: "score" in ((r.schema or {}).get("properties") or {}))
    v = measure({"deepeval": {"metric": "conversational_g_eval", "criteria": "Never asks twice."}},
                LLMClient(srv.settings()))
    assert v.error is None and v.score == pytest.approx(0.2) and v.passed is False
    with pytest.raises(JudgeSpecError):
        build_judge(JudgeSpec.model_validate({"deepeval": {"metric": "conversational_g_eval"}}))
    with pytest.raises(JudgeSpecError):
        build_judge(JudgeSpec.model_validate({"deepeval": {"metric": "faithfulness"}}))


def test_failures_are_verdict_errors_and_no_model_skips(srv):
    srv.fail_on = {i: "500" for i in range(1, 10)}
    v = measure({"deepeval": "knowledge_retention"}, LLMClient(srv.settings(max_retries=1)))
    assert v.error and "server_error" in v.error and v.score is None and v.passed is None
    v = measure({"deepeval": "knowledge_retention"}, None)
    assert v.skipped and "no judge model" in v.skipped


def test_cached_rerun_is_identical(srv, tmp_path):
    srv.add_rule(Reply(json={"verdict": "no", "reason": "off topic"}), schema="TurnRelevancyVerdict", times=1)
    spec = {"deepeval": "turn_relevancy"}
    a = measure(spec, LLMClient(srv.settings(), cache=ResponseCache(tmp_path)))
    n = len(srv.chat_requests)
    b = measure(spec, LLMClient(srv.settings(), cache=ResponseCache(tmp_path, mode="read-only")))
    assert len(srv.chat_requests) == n and b.details["cached"] is True
    assert (a.score, a.passed, a.reason) == (b.score, b.passed, b.reason)


def test_goldens_round_trip(tmp_path):
    sc = Scenario.model_validate({
        "id": "cancel-1", "description": "Customer wants to cancel", "tags": ["cancel"],
        "user": {"persona": {"name": "Dana", "goal": {"description": "cancel A100"}, "facts": {"order_id": "A100"}}},
    })
    scripted = Scenario.model_validate({"id": "faq-1", "user": {"script": ["What are your hours?", "Thanks"]}})
    path = tmp_path / "goldens.json"
    assert export_goldens([sc, scripted], path) == 2
    data = json.loads(path.read_text())
    assert data[0]["scenario"] == "Customer wants to cancel" and data[0]["context"] == ["order_id: A100"]
    assert data[1]["turns"][0] == {"role": "user", "content": "What are your hours?"}
    back = import_goldens(path)
    assert back[0].id == "cancel-1" and back[0].user.persona == sc.user.persona and back[0].tags == ["cancel"]
    assert back[1].user.persona.goal.opening == "What are your hours?"


def test_goldens_from_deepeval_files(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(
        json.dumps({"scenario": "User wants a refund for a broken kettle", "expectedOutcome": "Refund issued",
                    "userDescription": "Impatient retiree", "context": ["order_id: K9", "bought in May"]}) + "\n"
    )
    (s,) = import_goldens(path)
    p = s.user.persona
    assert "refund" in p.goal.description and "Refund issued" in p.goal.description
    assert p.facts == {"order_id": "K9"} and "Impatient retiree" in p.instructions and "bought in May" in p.instructions
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"scenario": ""}]))
    with pytest.raises(ScenarioError) as err:
        import_goldens(bad)
    assert "bad.json" in str(err.value) and "[0].scenario" in str(err.value)


def test_deepeval_calls_are_pinned_and_recorded(srv):
    srv.add_rule(Reply(json={"verdict": "yes", "reason": "fine"}), schema="TurnRelevancyVerdict")
    v = measure({"deepeval": {"metric": "turn_relevancy"}}, LLMClient(srv.settings(seed=5)))
    assert v.error is None
    assert all(r.body.get("temperature") == 0.0 and r.body.get("seed") == 5 for r in srv.chat_requests)
    assert v.details["temperature"] == 0.0 and v.details["seed"] == 5
    assert v.details["deepeval_version"] and len(v.details["prompt_sha256"]) == 64
def test_vs_deepeval_benchmark_counts_the_verdicts_the_judge_writes():
    """benchmarks/vs_deepeval.py counted verdicts named 'deepeval' (never written: the judge
    is named after its metric), so it printed '0 scored' and compared unequal work."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "vs_deepeval.py"
    spec = importlib.util.spec_from_file_location("vs_deepeval_under_test", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    v = measure({"deepeval": {"metric": "conversation_completeness"}}, None)
    assert v.judge == bench.METRIC_JUDGE
