"""evalkit import: every format from self-made fixtures, malformed input as one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _recorded_helpers import (
    USS_TEXT,
    call,
    make_cli,
    openai_line,
    tau_record,
    write,
)

from evalkit.core.transcript import AgentTurn, Outcome, StopReason, ToolTurn, UserTurn
from evalkit.integrations.importers import (
    FORMATS,
    ImportFormatError,
    read_recordings,
    scenarios_yaml,
    write_imported,
)
from evalkit.metrics.table import conversation_table
from evalkit.run.runfiles import load_run
from evalkit.scenarios.loader import load_suite


@pytest.fixture()
def evalkit_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    return make_cli(monkeypatch, capsys)


# -- openai-messages ------------------------------------------------------------------------


def _refund_line(cid: str = "refund-1", **extra: object) -> str:
    return openai_line(
        id=cid,
        messages=[
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is order 10001?"},
            {"role": "assistant", "content": None, "tool_calls": [call("c1", "check_order_status", {"order_id": "10001"})]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
            {"role": "assistant", "content": [{"type": "text", "text": "It has shipped."}]},
            {"role": "user", "content": "Thanks!"},
        ],
        **extra,
    )


def test_openai_messages_tool_calls_results_and_expectations(tmp_path: Path) -> None:
    f = write(
        tmp_path / "log.jsonl",
        _refund_line(expected=[{"tool_called": {"name": "check_order_status"}}], human_csat=[4, 5], source_verdict=1)
        + "\n\n"
        + _refund_line(expected=[{"tool_called": {"name": "check_order_status"}}])
        + "\n",
    )
    imp = read_recordings("openai-messages", f)
    assert [r.transcript.trial for r in imp.recordings] == [0, 1]  # same id -> next trial
    t = imp.recordings[0].transcript
    assert t.stop_reason == StopReason.recorded
    assert [type(x) for x in t.turns] == [UserTurn, AgentTurn, AgentTurn, UserTurn]
    (tc,) = t.tool_calls
    assert tc.name == "check_order_status" and tc.arguments == {"order_id": "10001"}
    assert tc.result == {"status": "shipped"} and tc.error is None
    assert t.turns[2].content == "It has shipped."
    assert imp.recordings[0].metrics["human_csat"] == 4.5
    assert imp.recordings[0].metrics["source_verdict"] is True
    (scenario,) = imp.scenarios
    assert scenario.id == "refund-1" and scenario.expect[0].name == "tool_called"
    assert [s.say for s in scenario.user.script or []] == ["Where is order 10001?", "Thanks!"]


def test_openai_messages_bad_arguments_are_data_and_handoff_sets_outcome(tmp_path: Path) -> None:
    f = write(
        tmp_path / "log.jsonl",
        openai_line(
            messages=[
                {"role": "user", "content": "Human please"},
                {"role": "assistant", "content": None, "tool_calls": [call("x", "lookup", "{not json")]},
                {"role": "tool", "tool_call_id": "zzz", "name": "unknown_tool", "content": "orphan"},
                {"role": "assistant", "content": "", "tool_calls": [call("h", "transfer_to_human_agents", {"summary": "wants a human"})]},
            ]
        )
        + "\n",
    )
    t = read_recordings("openai-messages", f).recordings[0].transcript
    bad = t.tool_calls[0]
    assert bad.arguments == {} and bad.error and bad.error.startswith("invalid JSON arguments")
    assert any(isinstance(x, ToolTurn) and x.content == "orphan" for x in t.turns)
    assert t.handoff is not None and t.handoff.reason == "wants a human"
    assert t.outcome == Outcome.escalated
    assert t.scenario_id == "conversation-1"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"messages": [}\n', ":1: line: not valid JSON"),
        ('{"id": "a"}\n', ":1: messages: missing"),
        ('{"messages": [], "colour": 1}\n', ":1: colour: unknown field"),
        ('{"messages": [{"role": "robot", "content": "x"}]}\n', ":1: messages[0].role: unknown role 'robot'"),
        (
            '{"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]}\n',
            ":1: messages[0].tool_calls[0].function.name: missing",
        ),
        ('\n{"messages": [], "human_csat": 9}\n', ":2: human_csat: ratings must be between 1 and 5"),
        ('{"messages": [], "trial": 0}\n{"messages": [], "trial": 0}\n', ":2: trial: id 'conversation-2'"),
        ('{"id": "a", "messages": [], "trial": 1}\n{"id": "a", "messages": [], "trial": 1}\n', ":2: trial: id 'a' trial 1"),
        ('{"id": "a", "messages": [], "expected": ["no_pii_leak"]}\n{"id": "a", "messages": []}\n', ":2: expected: 'expected' differs"),
        ('{"messages": [], "expected": [{"tool_called": {"nme": "x"}}]}\n', ":1: expected[0].tool_called"),
        ('{"messages": [], "expected": [{"no_such_judge": {}}]}\n', ":1: expected[0]: unknown judge 'no_such_judge'"),
    ],
)
def test_openai_messages_malformed_input_names_line_and_field(tmp_path: Path, text: str, where: str) -> None:
    f = write(tmp_path / "bad.jsonl", text)
    if "conversation-2" in where:  # distinct default ids: not a duplicate
        read_recordings("openai-messages", f)
        return
    with pytest.raises(ImportFormatError) as err:
        read_recordings("openai-messages", f)
    assert where in str(err.value) and str(err.value).startswith(str(f))
    assert "\n" not in str(err.value)


# -- tau-bench -------------------------------------------------------------------------------


def test_tau_bench_gold_actions_become_expectations(tmp_path: Path) -> None:
    gold = [("cancel_reservation", {"reservation_id": "ABC123"}), ("get_user_details", {"user_id": "u"})]
    records = [
        tau_record(7, 0, 1.0, gold, [("cancel_reservation", {"reservation_id": "ABC123"}, '{"status": "cancelled"}')]),
        tau_record(7, 1, 0.0, gold, [("cancel_reservation", {"reservation_id": "ABC123"}, "Error: not found")],
                   outputs=["327"]),
    ]
    f = write(tmp_path / "airline-results.json", json.dumps(records))
    imp = read_recordings("tau-bench", f)
    assert imp.info["domain"] == "airline"
    (scenario,) = imp.scenarios
    assert scenario.id == "tau-airline-7" and scenario.user.persona is not None
    db = scenario.expect[0]
    assert db.name == "evalkit.judges.recorded:DatabaseActions"
    assert "cancel_reservation" in db.args["write_tools"] and "get_user_details" not in db.args["write_tools"]
    assert [r.metrics["source_verdict"] for r in imp.recordings] == [True, False]
    assert [r.metrics["source_reward"] for r in imp.recordings] == [1.0, 0.0]
    t1 = imp.recordings[1].transcript
    assert t1.tool_calls[0].error == "Error: not found"
    assert t1.user_turns[-1].content == "Thanks!"  # ###STOP### removed


def test_tau_bench_unknown_domain_uses_gold_tools_and_custom_write_tools(tmp_path: Path) -> None:
    rec = tau_record(1, 0, 1.0, [("refund", {"id": 1})], [])
    rec["traj"][0]["content"] = "policy"
    f = write(tmp_path / "x.json", json.dumps([rec]))
    assert read_recordings("tau-bench", f).info["write_tools"] == ["refund"]
    custom = read_recordings("tau-bench", f, write_tools=["a", "b"])
    assert custom.scenarios[0].expect[0].args["write_tools"] == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("[1, 2", ":1: file: not valid JSON"),
        ('{"a": 1}', "file: expected a JSON list"),
        ('[{"trial": 0}]', "records[0].task_id: missing"),
        ('[{"task_id": 1, "traj": []}]', "records[0].info.task: missing"),
        ('[{"task_id": 1, "info": {"task": {"actions": [{"kwargs": {}}]}}, "traj": []}]', "records[0].info.task.actions[0].name"),
        ('[{"task_id": 1, "info": {"task": {"actions": []}}}]', "records[0].traj: missing"),
        ('[{"task_id": 1, "reward": "yes", "info": {"task": {}}, "traj": []}]', "records[0].reward: must be a number"),
        ('[{"task_id": 1, "info": {"task": {}}, "traj": [{"role": "user", "content": 5}]}]', "records[0].traj[0].content"),
    ],
)
def test_tau_bench_malformed_input(tmp_path: Path, data: str, where: str) -> None:
    f = write(tmp_path / "t.json", data)
    with pytest.raises(ImportFormatError) as err:
        read_recordings("tau-bench", f)
    assert where in str(err.value)


# -- uss -------------------------------------------------------------------------------------


def test_uss_dialogues_and_overall_rating(tmp_path: Path) -> None:
    f = write(tmp_path / "Mini.txt", USS_TEXT)
    imp = read_recordings("uss", f)
    assert [r.transcript.scenario_id for r in imp.recordings] == ["uss-Mini-0001", "uss-Mini-0002"]
    assert [round(r.metrics["human_csat"], 3) for r in imp.recordings] == [1.667, 4.333]
    first = imp.recordings[0].transcript
    assert first.user_turns[0].act == "INFORM" and len(first.turns) == 4
    assert "OVERALL" not in [u.content for u in first.user_turns]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("USER\thi\tX\t3,9\n", ":1: ratings: rating 9 is outside 1-5"),
        ("USER\thi\tX\t3,a\n", ":1: ratings: rating 'a' is not a number"),
        ("USER\thi\tX\t3\nBOT\thello\n", ":2: role: role must be USER or SYSTEM"),
        ("\n\n", "file: no dialogues found"),
    ],
)
def test_uss_malformed(tmp_path: Path, text: str, where: str) -> None:
    f = write(tmp_path / "bad.txt", text)
    with pytest.raises(ImportFormatError) as err:
        read_recordings("uss", f)
    assert where in str(err.value)


# -- deepeval --------------------------------------------------------------------------------


def test_deepeval_test_cases_and_goldens(tmp_path: Path) -> None:
    items = [
        {
            "name": "refund case",
            "scenario": "Customer wants a refund for order 10001",
            "expected_outcome": "The refund is issued",
            "user_description": "impatient",
            "turns": [
                {"role": "user", "content": "Refund order 10001"},
                {
                    "role": "assistant",
                    "content": "Refunded.",
                    "tools_called": [{"name": "refund", "input_parameters": {"order_id": "10001"}, "output": {"ok": True}}],
                },
            ],
        },
        {"scenario": "Customer asks about opening hours", "expected_outcome": "Hours are given"},
        {
            "turns": [
                {"input": "hi", "actual_output": "hello", "expected_tools": [{"name": "greet"}]},
                {"input": "bye", "actual_output": "bye!"},
            ]
        },
    ]
    f = write(tmp_path / "dataset.json", json.dumps({"test_cases": items}))
    imp = read_recordings("deepeval", f)
    assert [s.id for s in imp.scenarios] == ["refund-case", "deepeval-2", "deepeval-3"]
    refund = imp.scenarios[0]
    assert refund.expect[0].name == "goal_completion" and "refund is issued" in refund.expect[0].args["criteria"]
    assert imp.scenarios[1].user.persona is not None  # a golden never played: scenario only
    assert imp.scenarios[2].expect[0].name == "tool_called" and imp.scenarios[2].expect[0].args == {"name": "greet"}
    from evalkit.judges.registry import build_judge

    for s in imp.scenarios:
        for spec in s.expect:
            build_judge(spec)  # every generated expectation is a valid judge
    assert len(imp.recordings) == 2
    t = imp.recordings[0].transcript
    assert t.tool_calls[0].arguments == {"order_id": "10001"} and t.tool_calls[0].result == {"ok": True}
    assert [x.role for x in imp.recordings[1].transcript.turns] == ["user", "agent", "user", "agent"]


def test_deepeval_malformed(tmp_path: Path) -> None:
    f = write(tmp_path / "d.json", json.dumps([{"turns": [{"role": "bot", "content": "x"}]}]))
    with pytest.raises(ImportFormatError, match=r"\[0\]\.turns\[0\]\.role: must be 'user' or 'assistant'"):
        read_recordings("deepeval", f)
    f2 = write(tmp_path / "e.json", json.dumps([{"name": "x"}]))
    with pytest.raises(ImportFormatError, match="needs 'turns' or a 'scenario'"):
        read_recordings("deepeval", f2)


# -- the run folder --------------------------------------------------------------------------


def test_write_imported_run_folder_round_trips(tmp_path: Path) -> None:
    f = write(tmp_path / "Mini.txt", USS_TEXT)
    run = write_imported(read_recordings("uss", f), tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert len(loaded.conversations) == 2 == len(run.conversations)
    assert all(c.transcript.stop_reason == StopReason.recorded for c in loaded.conversations)
    frame = conversation_table(loaded)
    assert list(frame["human_csat"].round(3)) == [1.667, 4.333]
    # the unhappy dialogue gets a lower proxy than the happy one
    assert frame["csat_proxy"][0] < frame["csat_proxy"][1]
    suite = load_suite(tmp_path / "run" / "scenarios.yaml")
    assert [s.id for s in suite.scenarios] == ["uss-Mini-0001", "uss-Mini-0002"]
    with pytest.raises(Exception, match="already holds a run"):
        write_imported(read_recordings("uss", f), tmp_path / "run")
    write_imported(read_recordings("uss", f), tmp_path / "run", force=True)


def test_scenarios_yaml_uses_the_one_key_form(tmp_path: Path) -> None:
    records = [tau_record(3, 0, 1.0, [("send_certificate", {"user_id": "u", "amount": 100})], [])]
    imp = read_recordings("tau-bench", write(tmp_path / "airline.json", json.dumps(records)))
    text = scenarios_yaml(imp.scenarios)
    assert "- evalkit.judges.recorded:DatabaseActions:" in text
    path = write(tmp_path / "s.yaml", text)
    (scenario,) = load_suite(path).scenarios
    assert scenario.expect[0].args["gold"] == [{"name": "send_certificate", "arguments": {"user_id": "u", "amount": 100}}]


def test_cli_import_errors_are_one_line_exit_2(tmp_path: Path, evalkit_cli) -> None:  # type: ignore[no-untyped-def]
    bad = write(tmp_path / "bad.jsonl", '{"messages": [{"role": "robot"}]}\n')
    res = evalkit_cli("import", "openai-messages", str(bad), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "bad.jsonl:1: messages[0].role" in res.stderr
    missing = evalkit_cli("import", "uss", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    wrong = evalkit_cli("import", "uss", str(bad), "--out", str(tmp_path / "o"), "--domain", "airline")
    assert wrong.returncode == 2 and "tau-bench only" in wrong.stderr
    assert set(FORMATS.builtin) == {"openai-messages", "tau-bench", "uss", "deepeval"}


def test_cli_import_then_score(tmp_path: Path, evalkit_cli) -> None:  # type: ignore[no-untyped-def]
    f = write(tmp_path / "Mini.txt", USS_TEXT)
    res = evalkit_cli("import", "uss", str(f), "--out", str(tmp_path / "run"), "--score")
    assert res.returncode == 0, res.stderr
    assert "imported 2 conversations" in res.stdout
    assert "Spearman vs human_csat" in res.stdout and "csat_proxy" in res.stdout
    assert (tmp_path / "run" / "verdicts.parquet").exists()
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["extra"]["scored"] is True


def test_deepeval_goldens_round_trip_with_the_interop_exporter(tmp_path: Path) -> None:
    from evalkit.integrations.interop.deepeval_goldens import export_goldens
    from evalkit.scenarios.models import Goal, Persona, Scenario, UserSpec

    original = Scenario(
        id="where-is-my-order",
        description="Customer asks where order 10001 is",
        user=UserSpec(persona=Persona(goal=Goal(description="learn the delivery date"), facts={"order_id": "10001"})),
    )
    f = tmp_path / "goldens.json"
    export_goldens([original], f)
    imp = read_recordings("deepeval", f)
    (scenario,) = imp.scenarios
    assert imp.recordings == []
    assert scenario.user.persona is not None and scenario.user.persona.facts == {"order_id": "10001"}
    assert scenario.expect[0].name == "goal_completion"  # from the exported expected_outcome
    lines = tmp_path / "goldens.jsonl"
    lines.write_text("\n".join(json.dumps(g) for g in json.loads(f.read_text())) + "\n{oops\n")
    with pytest.raises(ImportFormatError, match=r"goldens.jsonl:2: line: not valid JSON"):
        read_recordings("deepeval", lines)
