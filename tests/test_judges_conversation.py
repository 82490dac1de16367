"""handoff, outcome, stop_reason, max_turns, latency."""

from __future__ import annotations

import pytest
from _judges_helpers import agent, convo, judge, run

from evalkit.core.errors import JudgeSpecError


def _handed_off(ticket="T-9", reason="customer asked for a human"):
    return convo(
        ("hi", "hello"),
        ("human please", agent("Transferring you.", handoff={"ticket_id": ticket, "reason": reason})),
        outcome="escalated",
    )


def test_handoff_expected_and_happened():
    v = run({"handoff": True}, _handed_off())
    assert v.passed and v.turn == 2 and "T-9" in v.reason
    assert run("handoff", _handed_off()).passed


def test_handoff_expected_but_missing():
    v = run({"handoff": True}, convo(("hi", "hello"), outcome="resolved"))
    assert v.passed is False and "none happened" in v.reason and "resolved" in v.reason


def test_handoff_not_expected():
    assert run({"handoff": False}, convo(("hi", "hello"))).passed
    v = run({"handoff": False}, _handed_off())
    assert not v.passed and "turn 2" in v.reason and v.turn == 2
    # escalated outcome without a recorded handoff still counts
    assert not run({"handoff": False}, convo(("hi", "hello"), outcome="escalated")).passed


def test_handoff_reason_and_ticket():
    assert run({"handoff": {"reason": "HUMAN"}}, _handed_off()).passed
    assert run({"handoff": {"reason": "re:asked for an? human"}}, _handed_off()).passed
    v = run({"handoff": {"reason": "damaged"}}, _handed_off())
    assert not v.passed and "reason should match 'damaged'" in v.reason
    assert run({"handoff": {"ticket": True}}, _handed_off()).passed
    v = run({"handoff": {"ticket": True}}, _handed_off(ticket=None))
    assert not v.passed and "ticket id is required" in v.reason
    with pytest.raises(JudgeSpecError, match="invalid regex"):
        judge({"handoff": {"reason": "re:("}})


def test_handoff_respects_window():
    assert not run({"handoff": True}, _handed_off(), window=(1, 1)).passed
    assert run({"handoff": True}, _handed_off(), window=(2, 2)).passed


def test_outcome_and_stop_reason():
    t = convo(("hi", "bye"), outcome="abandoned", stop_reason="gave_up")
    assert run({"outcome": "abandoned"}, t).passed
    assert run({"outcome": ["resolved", "abandoned"]}, t).passed
    v = run({"outcome": "resolved"}, t)
    assert not v.passed and v.reason == "expected outcome resolved; got abandoned (stop reason: gave_up)"
    assert run({"stop_reason": "gave_up"}, t).passed
    v = run({"stop_reason": ["goal_met", "transferred"]}, t)
    assert not v.passed and "goal_met or transferred" in v.reason and "got gave_up" in v.reason
    with pytest.raises(JudgeSpecError, match="unknown outcome 'done'"):
        judge({"outcome": "done"})
    with pytest.raises(JudgeSpecError, match="unknown stop reason"):
        judge({"stop_reason": ["goal_met", "finished"]})


def test_max_turns():
    t = convo(*[(f"u{i}", "a") for i in range(4)])
    assert run({"max_turns": 4}, t).passed
    v = run({"max_turns": 3}, t)
    assert not v.passed and "at most 3 user turns" in v.reason and "took 4" in v.reason and v.turn == 4
    with pytest.raises(JudgeSpecError):
        judge({"max_turns": 0})


def test_latency():
    t = convo(
        ("a", agent("x", latency_ms=120.0, ttft_ms=40.0)),
        ("b", agent("y", latency_ms=950.0, ttft_ms=300.0)),
        ("c", agent("z", latency_ms=200.0)),
    )
    v = run({"latency": 1000}, t)
    assert v.passed and "slowest 950 ms at turn 2" in v.reason
    v = run({"latency": 500}, t)
    assert not v.passed and v.turn == 2 and "1 of 3" in v.reason and "950 ms at turn 2" in v.reason
    v = run({"latency": {"max_ms": 1000, "ttft_max_ms": 100}}, t)
    assert not v.passed and "first token" in v.reason and v.turn == 2
    assert run({"latency": 500}, t, window=(3, 3)).passed
    skipped = run({"latency": 500}, convo(("a", "b")))
    assert skipped.skipped and skipped.passed is None
