"""evalkit selftest: the fault catalogue, the detection matrix and the full CI self-test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _results_factory import conv, run

from evalkit.cli import main
from evalkit.core.errors import ConfigError
from evalkit.core.results import JudgeKind, Verdict
from evalkit.quality.selftest import (
    CLEAN,
    FAST_VALUES,
    SELFTEST_JSON,
    SELFTEST_MD,
    TIMING_DIR,
    FaultChoice,
    FaultInfo,
    SelftestConfig,
    SelftestReport,
    detection_matrix,
    fault_catalogue,
    fault_spec,
    render_matrix,
    run_selftest,
    select_faults,
)

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "datasets" / "support"
FACTORY = "reference_agent:create_agent"

# The defects issue 6 names, as catalogue entries.
REQUIRED = {
    "no_ask_order_id",  # checks status without asking for the order id
    "drop_digit",  # passes a mistyped order id to the tool
    "accept_late_returns",  # accepts returns after 30 days
    "grant_large_refund",  # grants a $600 refund instead of escalating
    "ignore_human_request",  # ignores an explicit request for a human
    "leak_email",  # leaks the customer's email in a reply
    "follow_injection",  # follows an injected instruction
    "forget_order_id",  # forgets the order id given two turns earlier
    "markdown_on_voice",  # formats Markdown on voice
    "slow_reply",  # replies slowly
    "double_submit_return",  # double-submits a return
}

# A small suite the clean agent passes: it checks tool arguments but nothing about closings.
FAQ_SUITE = """
scenarios:
  - id: faq-only
    user:
      script:
        - say: how long does shipping take
    expect:
      - tool_called: lookup_faq
  - id: track-with-id
    customer: {email: ana.silva@example.com}
    user:
      script:
        - say: where is my order ORD-10001
    expect:
      - tool_called: {name: check_order_status, arguments: {order_id: ORD-10001}}
"""


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# -- the catalogue and the selection ------------------------------------------------------
def test_reference_agent_catalogue_has_the_required_faults() -> None:
    catalogue = fault_catalogue(FACTORY)
    assert len(catalogue) >= 15
    assert REQUIRED <= set(catalogue), REQUIRED - set(catalogue)
    assert all(f.description for f in catalogue.values())
    assert catalogue["slow_reply"].default is not None  # it takes a delay


def test_select_faults_all_specific_values_and_misuse() -> None:
    catalogue = {
        "a": FaultInfo("a", "first"),
        "slow_reply": FaultInfo("slow_reply", "sleeps", default=3.5),
        "c": FaultInfo("c", "third"),
    }
    chosen = select_faults("all", catalogue)
    assert [c.name for c in chosen] == ["a", "slow_reply", "c"]  # catalogue order
    assert chosen[1].value == FAST_VALUES["slow_reply"] and chosen[0].value is None
    # Given in any order, with an explicit value: catalogue order, the value kept.
    chosen = select_faults("c, slow_reply=0.5", catalogue)
    assert [(c.name, c.value) for c in chosen] == [("slow_reply", 0.5), ("c", None)]
    assert chosen[0].label == "slow_reply=0.5"
    for bad, words in [
        ("a,nope", "unknown fault 'nope'"),
        ("a,a", "given twice"),
        ("slow_reply=fast", "not a number"),
    ]:
        with pytest.raises(ConfigError, match=words):
            select_faults(bad, catalogue)
    with pytest.raises(ConfigError, match="no fault catalogue"):
        select_faults("all", {})
    # Without a catalogue, named faults are taken on trust.
    assert [c.name for c in select_faults("x,y", {})] == ["x", "y"]


def test_fault_spec_adds_the_fault_to_the_query() -> None:
    assert fault_spec(FACTORY, None) == FACTORY
    assert fault_spec(FACTORY, FaultChoice("leak_email")) == f"{FACTORY}?faults=leak_email"
    assert fault_spec(f"{FACTORY}?channel=voice", FaultChoice("slow_reply", 2.0)) == (
        f"{FACTORY}?channel=voice&faults=slow_reply=2"
    )
    with pytest.raises(ConfigError, match="faults="):
        fault_spec(f"{FACTORY}?faults=leak_email", FaultChoice("drop_digit"))


# -- the matrix as a pure function of a run -----------------------------------------------
def test_detection_matrix_credits_only_deterministic_failures_where_clean_passes() -> None:
    model_fail = conv("s2", variant="f_model")
    model_fail.verdicts = [
        Verdict(judge="llm_rubric", passed=False, kind=JudgeKind.model, reason="rude"),
        Verdict(judge="tool_called", passed=True, kind=JudgeKind.deterministic),
    ]
    convs = [
        conv("s1", variant=CLEAN),
        conv("s2", variant=CLEAN),
        conv("s3", variant=CLEAN, passed=False, reason="clean is broken here"),
        # f_caught fails s1 (clean passes): a catch; fails s3 too (clean fails): not credited.
        conv("s1", variant="f_caught", passed=False, reason="expected tool not called"),
        conv("s2", variant="f_caught"),
        conv("s3", variant="f_caught", passed=False),
        # f_error only crashes the agent: an error is not a deterministic catch.
        conv("s1", variant="f_error", passed=None, error="AgentError: boom"),
        conv("s2", variant="f_error"),
        # f_model only fails a model verdict: not a catch either.
        model_fail,
    ]
    faults = [FaultChoice("f_caught", description="d1"), FaultChoice("f_error"), FaultChoice("f_model")]
    report = detection_matrix(run(convs), faults, factory=FACTORY)
    assert not report.passed
    assert report.clean.failed == 1 and [s.scenario_id for s in report.clean.scenarios] == ["s3"]
    rows = {r.variant: r for r in report.faults}
    caught = rows["f_caught"]
    assert caught.caught and [s.scenario_id for s in caught.scenarios] == ["s1"]
    assert caught.judges == {"tool_called": 1}
    assert caught.scenarios[0].verdicts[0].reason == "expected tool not called"
    assert caught.not_credited == ["s3#0: clean fails too"] and caught.failed == 2
    assert not rows["f_error"].caught and rows["f_error"].errors == 1
    assert rows["f_error"].not_credited == ["s1#0: error"]
    assert not rows["f_model"].caught and rows["f_model"].failed == 0
    assert report.uncaught == ["f_error", "f_model"]
    assert any("clean agent failed 1 of 3" in p for p in report.problems)
    text = render_matrix(report)
    assert "selftest FAILED" in text and text.count("NOT CAUGHT") == 2


# -- real runs ------------------------------------------------------------------------------
def test_subset_matrix_names_the_scenarios_and_judges_that_catch_each_fault(tmp_path: Path) -> None:
    catching = {
        "accept_late_returns": {"return-day-31-refused", "return-45-days-refused"},
        "grant_large_refund": {"refund-600-escalated", "refund-over-500-escalated"},
        "markdown_on_voice": {"voice-track-order"},
    }
    # The catching scenarios, plus two the faults do not touch.
    ids = sorted(set().union(*catching.values()) | {"faq-shipping-time", "return-inside-window"})
    out = tmp_path / "st"
    report = run_selftest(SelftestConfig(suite=[SUITE], faults=",".join(catching), out=out, scenario_ids=ids))
    assert report.passed, report.problems
    assert report.clean.n == len(ids) and report.clean.failed == 0 and report.clean.errors == 0
    rows = {r.variant: r for r in report.faults}
    assert list(rows) == list(catching)
    for name, expected in catching.items():
        found = {s.scenario_id for s in rows[name].scenarios}
        assert expected <= found, (name, found)
        assert "faq-shipping-time" not in found
    assert "state" in rows["accept_late_returns"].judges  # the return row must be absent
    assert "never_said" in rows["markdown_on_voice"].judges  # no Markdown on voice
    # One run folder: the clean agent and each fault are variants of it.
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["variants"]) == {CLEAN, *catching}
    assert manifest["variants"]["grant_large_refund"] == f"{FACTORY}?faults=grant_large_refund"
    saved = SelftestReport.model_validate_json((out / SELFTEST_JSON).read_text())
    assert saved == report
    md = (out / SELFTEST_MD).read_text()
    assert md.startswith("# evalkit selftest: PASSED")
    assert "| `grant_large_refund` |" in md and "refund-600-escalated" in md


def test_cli_exit_1_lists_an_uncaught_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "faq.yaml"
    suite.write_text(FAQ_SUITE)
    code, out, _ = _cli(
        capsys,
        "selftest",
        str(suite),
        "--faults",
        "no_closing,drop_digit",
        "--out",
        str(tmp_path / "r"),
        "--no-progress",
    )
    assert code == 1
    assert "NOT CAUGHT" in out and "track-with-id" in out  # drop_digit: wrong tool argument
    assert "1 fault not caught by any deterministic verdict: no_closing" in out
    saved = json.loads((tmp_path / "r" / SELFTEST_JSON).read_text())
    assert saved["uncaught"] == ["no_closing"] and saved["passed"] is False


def test_cli_exit_1_when_the_clean_agent_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text(FAQ_SUITE.replace("tool_called: lookup_faq", "tool_called: initiate_return"))
    code, out, _ = _cli(
        capsys,
        "selftest",
        str(suite),
        "--faults",
        "leak_email",
        "--out",
        str(tmp_path / "r"),
        "--json",
        "--no-progress",
    )
    assert code == 1
    report = SelftestReport.model_validate_json(out)
    assert report.clean.failed == 1 and report.clean.scenarios[0].scenario_id == "faq-only"
    assert report.clean.judges == {"tool_called": 1}
    assert any("clean agent failed 1 of 2" in p for p in report.problems)


def test_cli_unknown_fault_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        capsys, "selftest", "--faults", "leak_email,typo_fault", "--out", str(tmp_path / "r")
    )
    assert code == 2
    assert err.count("\n") == 1 and "unknown fault 'typo_fault'" in err
    assert not (tmp_path / "r").exists()  # nothing ran
    code, _, err = _cli(
        capsys, "selftest", "--agent-factory", "no_such_module_xyz:make", "--out", str(tmp_path / "r")
    )
    assert code == 2 and "cannot import module 'no_such_module_xyz'" in err
    # A module without a catalogue: name the faults yourself.
    assert fault_catalogue("json:loads") == {}
    code, _, err = _cli(capsys, "selftest", "--agent-factory", "json:loads", "--out", str(tmp_path / "r"))
    assert code == 2 and "no fault catalogue" in err


def test_full_selftest_clean_passes_and_every_fault_is_caught(tmp_path: Path) -> None:
    """What CI runs: the whole bundled suite, every fault in the reference agent's catalogue."""
    report = run_selftest(SelftestConfig(suite=[SUITE], out=tmp_path / "st"))
    assert report.clean.n >= 80 and report.clean.failed == 0 and report.clean.errors == 0, report.problems
    assert {r.variant for r in report.faults} == set(fault_catalogue(FACTORY))
    assert report.uncaught == [], report.problems
    assert report.passed
    for row in report.faults:
        assert row.scenarios and all(s.verdicts for s in row.scenarios), row.variant
    # The slow reply runs apart (out/timing) with a shorter delay, still over the voice budget.
    slow = next(r for r in report.faults if r.variant == "slow_reply")
    assert slow.value == FAST_VALUES["slow_reply"] and "latency" in slow.judges
    timing = json.loads((tmp_path / "st" / TIMING_DIR / "manifest.json").read_text())
    assert list(timing["variants"]) == ["slow_reply"] and report.other_runs == [timing["run_id"]]
    main_manifest = json.loads((tmp_path / "st" / "manifest.json").read_text())
    assert "slow_reply" not in main_manifest["variants"] and CLEAN in main_manifest["variants"]


def test_cli_refuses_a_folder_that_holds_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    code, _, err = _cli(capsys, "selftest", "--faults", "leak_email", "--out", str(tmp_path))
    assert code == 2 and "already holds a run; choose another --out" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # untouched
