"""`evalkit calibrate`: any judge against people's labels (kappa, weighted kappa, Spearman,
confusion, bias with bootstrap intervals, trivial baselines, disagreements, HTML page)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _recorded_helpers import TAU_SAMPLE, USS_DIR, make_cli, needs_tau, needs_uss, openai_line, write
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from evalkit.core.errors import ConfigError
from evalkit.core.results import ConversationResult, JudgeKind, Verdict
from evalkit.core.transcript import AgentTurn, Transcript, UserTurn
from evalkit.quality.calibration import (
    HumanLabel,
    calibrate_judge,
    read_labels_csv,
    recorded_labels,
)


def _conv(sid: str, *, trial: int = 0, verdicts: list[Verdict], n_turns: int = 1, metrics=None) -> ConversationResult:
    turns = []
    for i in range(n_turns):
        turns += [UserTurn(content=f"u{i}"), AgentTurn(content=f"a{i}")]
    return ConversationResult(transcript=Transcript(scenario_id=sid, trial=trial, turns=turns),
                              verdicts=verdicts, metrics=metrics or {})


def _pf(judge: str, passed: bool, reason: str = "") -> Verdict:
    return Verdict(judge=judge, passed=passed, reason=reason, kind=JudgeKind.model)


def _score(judge: str, score: float) -> Verdict:
    return Verdict(judge=judge, passed=score >= 4, score=score, kind=JudgeKind.model, reason=f"scored {score}")


JUDGE_PF = [True, True, False, True, False, False, True, True, False, True, True, False]
HUMAN_PF = [True, False, False, True, False, True, True, True, False, True, False, False]


def test_pass_fail_judge_against_people():
    convs = [_conv(f"s{i}", verdicts=[_pf("goal_completion", j, reason=f"why {i}")], n_turns=1 + i % 3)
             for i, j in enumerate(JUDGE_PF)]
    labels = [HumanLabel(f"s{i}", 0, "goal_completion", h) for i, h in enumerate(HUMAN_PF)]
    cal = calibrate_judge("goal_completion", convs, labels, n_resamples=300)
    assert cal is not None and cal.kind == "pass_fail" and cal.n == 12
    j, h = np.array(JUDGE_PF), np.array(HUMAN_PF)
    assert cal.stats["agreement"].value == pytest.approx(np.mean(j == h))
    assert cal.stats["kappa"].value == pytest.approx(cohen_kappa_score(h, j))
    assert cal.stats["bias"].value == pytest.approx(j.mean() - h.mean())
    lo, hi = cal.stats["kappa"].low, cal.stats["kappa"].high
    assert lo is not None and hi is not None and lo <= cal.stats["kappa"].value <= hi
    assert cal.confusion == {"human_pass": {"judge_pass": 5, "judge_fail": 1},
                             "human_fail": {"judge_pass": 2, "judge_fail": 4}}
    assert cal.baselines["majority_agreement"].value == pytest.approx(0.5)
    assert cal.baselines["majority_kappa"].value == 0.0
    # Every disagreement is listed, each with the judge's own reason.
    assert {d["scenario_id"] for d in cal.disagreements} == {"s1", "s5", "s10"}
    assert all(d["reason"].startswith("why") for d in cal.disagreements)


def test_score_judge_against_people_with_weighted_kappa_and_bias():
    judge = [5, 4, 4, 2, 1, 3, 5, 2, 3, 4]
    human = [5, 5, 4, 2, 2, 3, 4, 1, 3, 3]
    convs = [_conv(f"s{i}", verdicts=[_score("tone", s)]) for i, s in enumerate(judge)]
    labels = [HumanLabel(f"s{i}", 0, "tone", float(h)) for i, h in enumerate(human)]
    cal = calibrate_judge("tone", convs, labels, n_resamples=300)
    assert cal is not None and cal.kind == "score"
    assert cal.stats["spearman"].value == pytest.approx(spearmanr(judge, human).statistic)
    assert cal.stats["qwk"].value == pytest.approx(cohen_kappa_score(human, judge, weights="quadratic"))
    assert cal.stats["bias"].value == pytest.approx(np.mean(np.subtract(judge, human)))
    assert cal.stats["mae"].value == pytest.approx(np.mean(np.abs(np.subtract(judge, human))))
    assert cal.confusion is None
    assert cal.disagreements[0]["gap"] >= cal.disagreements[-1]["gap"]


def test_skipped_or_failed_verdicts_are_not_counted_as_agreement():
    convs = [
        _conv("a", verdicts=[_pf("goal_completion", True)]),
        _conv("b", verdicts=[Verdict.skip("goal_completion", "no judge model configured")]),
        _conv("c", verdicts=[Verdict(judge="goal_completion", error="malformed answer", kind=JudgeKind.model)]),
    ]
    labels = [HumanLabel(s, 0, "goal_completion", True) for s in "abc"]
    cal = calibrate_judge("goal_completion", convs, labels, n_resamples=100)
    assert cal is not None and cal.n == 1 and cal.n_unjudged == 2


def test_recorded_human_csat_labels_llm_csat_and_the_proxy():
    c = _conv("x", verdicts=[_score("llm_csat", 4)], metrics={"human_csat": 3.5, "source_verdict": True})
    got = {(lab.judge, lab.label) for lab in recorded_labels([c])}
    assert got == {("llm_csat", 3.5), ("csat_proxy", 3.5), ("passed", True)}


def test_labels_csv_errors_name_file_line_and_field(tmp_path):
    good = write(tmp_path / "l.csv", "scenario_id,trial,judge,label\ns1,0,tone,4\ns2,1,goal_completion,pass\n")
    assert read_labels_csv(good) == [HumanLabel("s1", 0, "tone", 4.0), HumanLabel("s2", 1, "goal_completion", True)]
    bad = write(tmp_path / "bad.csv", "scenario_id,trial,judge,label\ns1,0,tone,4\ns2,0,tone,great\n")
    with pytest.raises(ConfigError) as err:
        read_labels_csv(bad)
    assert str(err.value).startswith(f"{bad}:3: label: 'great' is neither pass/fail nor a number")
    nocol = write(tmp_path / "nocol.csv", "scenario,trial,judge,label\n")
    with pytest.raises(ConfigError, match=r"nocol.csv:1: header: missing column\(s\) scenario_id"):
        read_labels_csv(nocol)


def _recorded_file(tmp_path):
    lines = []
    for i, (said, label) in enumerate([("Your refund is issued.", "pass"), ("No idea.", "fail"),
                                       ("Refund done, ref R-1.", "pass"), ("Try later.", "pass")]):
        lines.append(openai_line(id=f"c{i}", messages=[{"role": "user", "content": "refund please"},
                                                      {"role": "assistant", "content": said}],
                                 expected=[{"said": {"contains": "refund"}}],
                                 labels={"said": label, "tone": 3 + i % 2}, human_csat=2 + i))
    return write(tmp_path / "rec.jsonl", "\n".join(lines) + "\n")


def test_cli_import_labels_score_then_calibrate(tmp_path, monkeypatch, capsys):
    cli = make_cli(monkeypatch, capsys)
    run = tmp_path / "run"
    assert cli("import", "openai-messages", str(_recorded_file(tmp_path)), "--out", str(run)).returncode == 0
    assert (run / "labels.csv").read_text().count("\n") == 1 + 8
    assert cli("score", str(run)).returncode == 0
    res = cli("calibrate", str(run), "--judge", "said", "--resamples", "200")
    assert res.returncode == 0, res.stderr
    assert "said: 4 conversations with pass/fail labels" in res.stdout
    # c3 says no "refund": the judge fails it, the person passed it -> 3 of 4 agree.
    assert "agreement                                        75.0%" in res.stdout
    data = json.loads((run / "calibration.json").read_text())
    assert [j["judge"] for j in data["judges"]] == ["said"]
    assert data["judges"][0]["disagreements"][0]["scenario_id"] == "c3"
    page = (run / "calibration.html").read_text()
    assert 'data-judge="said"' in page and "Content-Security-Policy" in page and "<script" not in page
    # Every labelled judge by default; a judge nobody labelled is a one-line input error.
    assert "tone:" in cli("calibrate", str(run), "--resamples", "200").stdout
    bad = cli("calibrate", str(run), "--judge", "nope")
    assert bad.returncode == 2 and "no human label names judge 'nope'" in bad.stderr


def test_cli_without_any_label_is_an_input_error(tmp_path, monkeypatch, capsys):
    cli = make_cli(monkeypatch, capsys)
    rec = write(tmp_path / "r.jsonl", openai_line(id="c", messages=[{"role": "user", "content": "hi"},
                                                                   {"role": "assistant", "content": "hello"}]) + "\n")
    cli("import", "openai-messages", str(rec), "--out", str(tmp_path / "run"))
    res = cli("calibrate", str(tmp_path / "run"))
    assert res.returncode == 2 and "has no human labels" in res.stderr


@needs_uss
def test_uss_csat_proxy_calibration_beats_the_length_baseline(tmp_path, monkeypatch, capsys):
    cli = make_cli(monkeypatch, capsys)
    run = tmp_path / "sgd"
    assert cli("import", "uss", str(USS_DIR / "SGD.txt"), "--out", str(run)).returncode == 0
    res = cli("calibrate", str(run), "--judge", "csat_proxy", "--resamples", "200")
    assert res.returncode == 0, res.stderr
    cal = json.loads((run / "calibration.json").read_text())["judges"][0]
    rho = cal["stats"]["spearman"]
    assert cal["n"] == 1000
    assert rho["low"] > cal["baselines"]["length_spearman"]["value"]  # clearly better than length


@needs_tau
def test_tau_bench_deterministic_verdicts_agree_with_the_rewards(tmp_path, monkeypatch, capsys):
    cli = make_cli(monkeypatch, capsys)
    run = tmp_path / "tau"
    cli("import", "tau-bench", str(TAU_SAMPLE), "--out", str(run))
    cli("score", str(run))
    res = cli("calibrate", str(run), "--judge", "passed", "--resamples", "200")
    assert res.returncode == 0, res.stderr
    cal = json.loads((run / "calibration.json").read_text())["judges"][0]
    assert cal["n"] == 8 and cal["stats"]["kappa"]["value"] == pytest.approx(1.0)


def test_llm_csat_against_human_csat_with_the_fake_model(tmp_path, monkeypatch, capsys):
    """The mechanics end to end for an LLM judge: recordings with people's ratings, scored by
    a (fake) judge model over HTTP, then calibrated: llm_csat against human_csat."""
    from evalkit.testing.fake_openai import FakeOpenAIServer, Rule

    cli = make_cli(monkeypatch, capsys)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-123456")
    lines = []
    for i, (said, human) in enumerate([("Refund issued, ref R-1.", 5), ("No.", 1), ("Let me check... done.", 4),
                                        ("Try again later.", 2), ("Sorry, we can't.", 2)]):
        lines.append(openai_line(id=f"c{i}", messages=[{"role": "user", "content": "refund please"},
                                                      {"role": "assistant", "content": said}],
                                 expected=["llm_csat"], human_csat=human))
    rec = write(tmp_path / "rec.jsonl", "\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert cli("import", "openai-messages", str(rec), "--out", str(run)).returncode == 0

    def rating(req):  # a judge that reads the agent's reply: 5 for "Refund issued", else by length
        said = req.last_user.split("Agent:", 1)[1].split("\n", 1)[0]
        return {"reason": "read the reply", "score": 5 if "issued" in said else 1 + min(3, len(said) // 8)}

    with FakeOpenAIServer(rules=[Rule(rating, schema="llm_csat_verdict")]) as srv:
        res = cli("score", str(run), "--judge-model", "fake-model", "--base-url", srv.base_url, "--cache", "off")
        assert res.returncode == 0, res.stderr
        assert len(srv.chat_requests) == 5
    res = cli("calibrate", str(run), "--judge", "llm_csat", "--resamples", "200")
    assert res.returncode == 0, res.stderr
    cal = json.loads((run / "calibration.json").read_text())["judges"][0]
    assert cal["judge"] == "llm_csat" and cal["kind"] == "score" and cal["n"] == 5
    from evalkit.run.runfiles import load_run

    by_id = {c.transcript.scenario_id: c for c in load_run(run).conversations}
    judged = [next(v.score for v in by_id[f"c{i}"].verdicts if v.judge == "llm_csat") for i in range(5)]
    assert judged[0] == 5 and judged[1] == 1  # what the fake judge read in the replies
    human = [5, 1, 4, 2, 2]
    assert cal["stats"]["spearman"]["value"] == pytest.approx(spearmanr(judged, human).statistic)
    assert cal["stats"]["bias"]["value"] == pytest.approx(np.mean(np.subtract(judged, human)))
