"""evalkit score: judges over recorded transcripts, τ-bench rules, agreement and pass^k."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path
from typing import Any

import pytest
from _recorded_helpers import TAU_SAMPLE, call, make_cli, needs_tau, openai_line, tau_record, write

from evalkit.core.transcript import AgentTurn, ToolCall, Transcript, UserTurn
from evalkit.integrations.importers import read_recordings, write_imported
from evalkit.judges.base import JudgeContext
from evalkit.judges.recorded import DatabaseActions, OutputsSaid, argument_differences, arguments_equal
from evalkit.metrics.summary import pass_hat_k
from evalkit.run.recorded import agreement, format_agreement, score_run, source_pass_hat_k
from evalkit.run.runfiles import load_run

WRITES = ["book_reservation", "cancel_reservation", "send_certificate"]


@pytest.fixture()
def evalkit_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    return make_cli(monkeypatch, capsys)


def _transcript(*calls: ToolCall, says: str = "ok") -> Transcript:
    return Transcript(
        scenario_id="s",
        turns=[UserTurn(content="hi"), AgentTurn(content="", tool_calls=list(calls)), AgentTurn(content=says)],
    )


def _db(gold: list[tuple[str, dict[str, Any]]], **kw: Any) -> DatabaseActions:
    return DatabaseActions(gold=[{"name": n, "arguments": a} for n, a in gold], write_tools=WRITES, **kw)


# -- argument comparison ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "equal"),
    [
        (1000, 1000.0, True),
        (1000, "1000", True),
        ("250.00", 250, True),
        (250, 251, False),
        ("ABC123", "ABC123 ", True),
        ("ABC123", "abc123", False),  # case matters: ids and names are stored as given
        (True, 1, False),
        ([{"a": 1}, {"a": 2}], [{"a": 2}, {"a": 1}], False),  # lists in order by default
        ({"a": 1}, {"a": 1, "b": None}, True),  # an extra null key is ignored
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ({"a": 1, "b": 2}, {"a": 1}, False),
    ],
)
def test_arguments_equal(expected: Any, actual: Any, equal: bool) -> None:
    assert arguments_equal(expected, actual) is equal


def test_nested_objects_match_on_the_keys_the_expectation_names() -> None:
    """τ-bench: a recorded flight with origin/destination besides flight_number and date is the
    same stored flight; τ's own reward passes it, so must we."""
    gold = {"reservation_id": "Z7", "flights": [{"flight_number": "HAT170", "date": "2024-05-22"}]}
    made = {"reservation_id": "Z7", "flights": [{"flight_number": "HAT170", "date": "2024-05-22",
                                                  "origin": "LAS", "destination": "IAH"}]}
    assert arguments_equal(gold, made)
    # A named key that differs still fails, and the top level still refuses unknown arguments.
    wrong = {**made, "flights": [{**made["flights"][0], "date": "2024-05-23"}]}
    assert argument_differences(gold, wrong) == ['flights[0].date: expected "2024-05-22", got "2024-05-23"']
    assert not arguments_equal(gold, {**made, "cabin": "economy"})
    db = DatabaseActions(gold=[{"name": "update_reservation_flights", "arguments": gold}],
                         write_tools=["update_reservation_flights"])
    made_call = ToolCall(name="update_reservation_flights", arguments=made, result={"ok": True})
    assert db.evaluate(JudgeContext(transcript=_transcript(made_call))).passed is True


def test_list_order_any_and_differences() -> None:
    e = {"payment_methods": [{"id": "a", "amount": 5}, {"id": "b", "amount": 250}]}
    a = {"payment_methods": [{"id": "b", "amount": 250}, {"id": "a", "amount": "5"}]}
    assert not arguments_equal(e, a) and arguments_equal(e, a, ordered=False)
    diffs = argument_differences({"x": {"y": [1, 2]}, "z": "Q"}, {"x": {"y": [1, 3]}, "z": "q"})
    assert diffs == ["x.y[1]: expected 2, got 3", 'z: expected "Q", got "q"']


# -- the database judge ----------------------------------------------------------------------


def test_db_actions_pass_and_fail_reasons() -> None:
    gold = [("cancel_reservation", {"reservation_id": "Z7"})]
    judge = _db(gold + [("get_user_details", {"user_id": "u"})])  # reads are ignored
    ok = judge.evaluate(JudgeContext(_transcript(ToolCall(name="cancel_reservation", arguments={"reservation_id": "Z7"}))))
    assert ok.passed is True and "all 1 expected" in ok.reason
    wrong = judge.evaluate(JudgeContext(_transcript(ToolCall(name="cancel_reservation", arguments={"reservation_id": "Z8"}))))
    assert wrong.passed is False
    assert 'reservation_id: expected "Z7", got "Z8"' in wrong.reason and "unexpected write" in wrong.reason
    none = judge.evaluate(JudgeContext(_transcript(ToolCall(name="get_user_details", arguments={"user_id": "u"}))))
    assert none.passed is False and none.reason.startswith("missing cancel_reservation")


def test_db_actions_failed_calls_changed_nothing() -> None:
    gold = [("cancel_reservation", {"reservation_id": "Z7"})]
    failed = ToolCall(name="cancel_reservation", arguments={"reservation_id": "Z7"}, error="Error: not allowed")
    v = _db(gold).evaluate(JudgeContext(_transcript(failed)))
    assert v.passed is False and "failed, so it changed nothing" in v.reason
    assert _db(gold, count_failed=True).evaluate(JudgeContext(_transcript(failed))).passed is True
    # a failed extra write is not an extra change
    nothing = _db([]).evaluate(JudgeContext(_transcript(failed)))
    assert nothing.passed is True and "no database change expected" in nothing.reason


def test_db_actions_is_a_multiset_match() -> None:
    gold = [("send_certificate", {"user_id": "u", "amount": 100})]
    c = ToolCall(name="send_certificate", arguments={"user_id": "u", "amount": 100.0})
    twice = _db(gold).evaluate(JudgeContext(_transcript(c, c)))
    assert twice.passed is False and twice.details["unexpected"]
    both = _db(gold * 2).evaluate(JudgeContext(_transcript(c, c)))
    assert both.passed is True


def test_outputs_said_follows_tau_bench() -> None:
    t = _transcript(says="The total is 1,628 dollars.")
    assert OutputsSaid(outputs=["1628"]).evaluate(JudgeContext(t)).passed is True
    miss = OutputsSaid(outputs=["1628", "327"]).evaluate(JudgeContext(t))
    assert miss.passed is False and "'327'" in miss.reason


# -- score + agreement -----------------------------------------------------------------------

BOOK = {"user_id": "u", "flights": [{"n": "HAT1"}], "payment_methods": [{"id": "cc", "amount": 100}]}


def _tau_file(tmp_path: Path) -> Path:
    gold = [("book_reservation", BOOK)]
    good = [("book_reservation", BOOK, '{"reservation_id": "R1"}')]
    quoted = [("book_reservation", {**BOOK, "payment_methods": [{"id": "cc", "amount": "100"}]}, "{}")]
    bad = [("book_reservation", {**BOOK, "payment_methods": [{"id": "cc", "amount": 90}]}, "{}")]
    records = [
        tau_record(0, 0, 1.0, gold, good),
        tau_record(0, 1, 1.0, gold, quoted),
        tau_record(0, 2, 0.0, gold, bad),
        tau_record(0, 3, 1.0, gold, good),
        tau_record(1, 0, 0.0, [], [("cancel_reservation", {"reservation_id": "X"}, "{}")]),
        tau_record(1, 1, 1.0, [], []),
        # the source passed it but the required output was never said: a disagreement
        tau_record(1, 2, 1.0, [], [], outputs=["327"], final="Goodbye."),
        tau_record(1, 3, 0.0, [], []),  # the source failed it, evalkit passes: a disagreement
    ]
    return write(tmp_path / "airline.json", json.dumps(records))


def test_score_writes_run_files_agreement_and_pass_hat_k(tmp_path: Path) -> None:
    f = _tau_file(tmp_path)
    write_imported(read_recordings("tau-bench", f), tmp_path / "run")
    run = score_run(tmp_path / "run")
    for name in ("results.parquet", "verdicts.parquet", "summary.json", "agreement.json", "conversations.jsonl"):
        assert (tmp_path / "run" / name).exists(), name
    passed = {(c.transcript.scenario_id, c.transcript.trial): c.passed for c in run.conversations}
    assert passed == {
        ("tau-airline-0", 0): True,
        ("tau-airline-0", 1): True,
        ("tau-airline-0", 2): False,
        ("tau-airline-0", 3): True,
        ("tau-airline-1", 0): False,
        ("tau-airline-1", 1): True,
        ("tau-airline-1", 2): True,  # outputs are task-level; trial 2's scenario is task 1's (no outputs)
        ("tau-airline-1", 3): True,
    }
    report = json.loads((tmp_path / "run" / "agreement.json").read_text())
    conf = report["confusion"]
    assert conf == {"source_pass": {"evalkit_pass": 5, "evalkit_fail": 0}, "source_fail": {"evalkit_pass": 1, "evalkit_fail": 2}}
    assert report["agreement_rate"] == pytest.approx(7 / 8)
    (dis,) = report["disagreements"]
    assert dis["scenario_id"] == "tau-airline-1" and dis["trial"] == 3 and "the source failed it" in dis["reason"]
    assert "source fail" in format_agreement(report)
    # evalkit's verdicts give pass^k like any run; the source's too
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pass_hat_k"]["1"] == pytest.approx(6 / 8)
    assert report["pass_hat_k"]["source"]["4"] == pytest.approx(0.0)
    assert report["pass_hat_k"]["source"]["1"] == pytest.approx(5 / 8)
    # the recording's own metrics survive scoring
    again = load_run(tmp_path / "run")
    assert all("source_reward" in c.metrics for c in again.conversations)


def _tau_formula(records: list[dict[str, Any]]) -> dict[int, float]:
    """τ-bench's display_metrics, verbatim in substance: n = number of distinct trials."""
    num_trials = len({r["trial"] for r in records})
    c: dict[Any, int] = {}
    for r in records:
        c[r["task_id"]] = c.get(r["task_id"], 0) + (1 if (1 - 1e-6) <= r["reward"] <= (1 + 1e-6) else 0)
    return {k: sum(comb(x, k) / comb(num_trials, k) for x in c.values()) / len(c) for k in range(1, num_trials + 1)}


def test_pass_hat_k_from_rewards_equals_tau_bench_definition(tmp_path: Path) -> None:
    # 5 tasks x 4 trials with 4, 3, 2, 1, 0 successes (a reward of 0.9999999 counts as success).
    records = []
    for task, successes in enumerate([4, 3, 2, 1, 0]):
        for trial in range(4):
            reward = (0.9999999 if trial == 0 else 1.0) if trial < successes else 0.0
            records.append(tau_record(task, trial, reward, [], []))
    f = write(tmp_path / "airline.json", json.dumps(records))
    imp = read_recordings("tau-bench", f)
    run = write_imported(imp, tmp_path / "run")
    ours = source_pass_hat_k(run.conversations)
    theirs = _tau_formula(records)
    assert ours == theirs  # exactly, not approximately
    assert ours[1] == pytest.approx(0.5) and ours[4] == pytest.approx(0.2)


@needs_tau
def test_tau_sample_pass_hat_k_and_agreement() -> None:
    records = json.loads(TAU_SAMPLE.read_text())
    imp = read_recordings("tau-bench", TAU_SAMPLE)
    by_task: dict[str, list[bool]] = {}
    for r in imp.recordings:
        by_task.setdefault(r.transcript.scenario_id, []).append(bool(r.metrics["source_verdict"]))
    assert pass_hat_k(by_task) == _tau_formula(records)


@needs_tau
def test_tau_sample_scored_agreement(tmp_path: Path) -> None:
    write_imported(read_recordings("tau-bench", TAU_SAMPLE), tmp_path / "run")
    run = score_run(tmp_path / "run")
    report = agreement(run)
    assert report["n_compared"] == 8
    # Measured, not forced: every disagreement must come with a reason.
    assert all(d["reason"] for d in report["disagreements"])
    assert report["agreement_rate"] >= 0.75


def test_openai_expectations_scored_and_cli_output(tmp_path: Path, evalkit_cli) -> None:  # type: ignore[no-untyped-def]
    msgs = [
        {"role": "user", "content": "Cancel order 5"},
        {"role": "assistant", "content": None, "tool_calls": [call("c", "cancel_order", {"order_id": "5"})]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
        {"role": "assistant", "content": "Cancelled."},
    ]
    expected = [{"tool_called": {"name": "cancel_order", "arguments": {"order_id": "5"}}}]
    lines = [
        openai_line(id="cancel", messages=msgs, expected=expected, source_verdict=True),
        openai_line(id="cancel", messages=msgs[:1] + [{"role": "assistant", "content": "No."}], expected=expected, source_verdict=True),
    ]
    f = write(tmp_path / "log.jsonl", "\n".join(lines) + "\n")
    assert evalkit_cli("import", "openai-messages", str(f), "--out", str(tmp_path / "run")).returncode == 0
    res = evalkit_cli("score", str(tmp_path / "run"), "--out", str(tmp_path / "scored"))
    assert res.returncode == 0, res.stderr
    assert "agreement with the source's verdicts: 50.0% (1/2" in res.stdout
    assert "cancel trial 1: source pass, evalkit fail" in res.stdout
    assert "pass^1=0.500" in res.stdout
    assert (tmp_path / "scored" / "scenarios.yaml").exists()
    assert not (tmp_path / "run" / "agreement.json").exists()  # --out leaves the import untouched
    missing = evalkit_cli("score", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no such run folder" in missing.stderr


def test_score_defaults_to_the_suites_the_run_was_played_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.run.runfiles import read_manifest
    from evalkit.run.runfolder import Existing, RunFolder

    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    f = write(tmp_path / "log.jsonl", openai_line(id="greet", messages=msgs) + "\n")
    write_imported(read_recordings("openai-messages", f), tmp_path / "run")
    suite = write(tmp_path / "suite" / "greet.yaml", "id: greet\nuser: {script: [hi]}\nexpect:\n  - said: {contains: hello}\n")
    (tmp_path / "run" / "scenarios.yaml").unlink()
    manifest = read_manifest(tmp_path / "run")
    with RunFolder(tmp_path / "run").claim(Existing.update) as folder:
        folder.write_manifest(manifest.model_copy(update={"suites": ["suite"]}))
    monkeypatch.chdir(tmp_path)  # suites are recorded relative to where `evalkit run` ran
    run = score_run(tmp_path / "run")
    assert [v.judge for v in run.conversations[0].verdicts] == ["said"] and run.conversations[0].passed
    monkeypatch.chdir(suite.parent)
    with pytest.raises(Exception, match="the run's suites suite are not here"):
        score_run(tmp_path / "run")


def test_score_redact_pii_judges_raw_text_and_writes_it_masked(tmp_path: Path, evalkit_cli) -> None:  # type: ignore[no-untyped-def]
    line = openai_line(
        id="contact-1",
        messages=[
            {"role": "user", "content": "Please update my email to ana.silva@example.com"},
            {"role": "assistant", "content": "Done: your email is now ana.silva@example.com."},
        ],
        # The agent repeating the customer's own address is allowed; leaking a card is not.
        expected=[{"no_pii_leak": {"kinds": ["card"]}}, {"said": "ana.silva@example.com"}],
    )
    write_imported(read_recordings("openai-messages", write(tmp_path / "log.jsonl", line + "\n")), tmp_path / "run")
    out = tmp_path / "shareable"
    res = evalkit_cli("score", str(tmp_path / "run"), "--redact-pii", "--out", str(out))
    assert res.returncode == 0, res.stderr
    run = load_run(out)
    (conv,) = run.conversations
    # `said` matched the raw address: judged before masking.
    assert conv.passed is True and {v.judge for v in conv.verdicts} >= {"said", "no_pii_leak"}
    assert run.manifest.extra["redact_pii"] is True
    for f in out.rglob("*"):
        if f.is_file() and f.name != "scenarios.yaml":  # the expectations are the user's input
            assert b"ana.silva" not in f.read_bytes(), f.name
    assert "a***@example.com" in conv.transcript.turns[1].content
    # Re-scoring the redacted run keeps it redacted without the flag.
    again = score_run(out)
    assert again.manifest.extra["redact_pii"] is True


def test_score_prints_one_pass_hat_1_labelled_with_what_it_counts(tmp_path: Path, evalkit_cli) -> None:  # type: ignore[no-untyped-def]
    """Scenario 'a' once (passes, no source verdict), 'b' twice (passes then fails, both with a
    source verdict): task completion 2/3, pass^1 (a scenario mean) 0.75. It used to print
    0.750 and, under the agreement, an unlabelled 0.5000 for 'b' alone."""
    ok = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there."}]
    bad = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Go away."}]
    expected = [{"said": {"contains": "hello"}}]
    lines = [
        openai_line(id="a", messages=ok, expected=expected),
        openai_line(id="b", messages=ok, expected=expected, source_verdict=True),
        openai_line(id="b", messages=bad, expected=expected, source_verdict=False),
    ]
    f = write(tmp_path / "log.jsonl", "\n".join(lines) + "\n")
    assert evalkit_cli("import", "openai-messages", str(f), "--out", str(tmp_path / "run")).returncode == 0
    res = evalkit_cli("score", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    assert "66.7%" in res.stdout  # task compl.: every conversation counts once
    assert ("evalkit pass^k (mean over 2 scenarios of the chance that k trials all pass; "
            "3 judged conversations): pass^1=0.750") in res.stdout
    assert ("pass^k of both, on the 2 conversations (1 scenario) with a source verdict "
            "(evalkit's pass^k above counts all 3 judged):") in res.stdout
    assert "0.5000" not in res.stdout
    report = json.loads((tmp_path / "run" / "agreement.json").read_text())
    assert report["pass_hat_k_basis"] == {"n_conversations": 2, "n_scenarios": 1, "n_judged": 3}
    assert report["pass_hat_k"]["evalkit"]["1"] == report["pass_hat_k"]["source"]["1"] == pytest.approx(0.5)
