"""said and never_said: contains / any_of / regex, where any | last | every, turn, case."""

from __future__ import annotations

import pytest
from _judges_helpers import agent, convo, judge, run

from evalkit.core.errors import JudgeSpecError


def _t():
    return convo(
        ("hi", "Hello! How can I help?"),
        ("refund please", agent("", tools=[("lookup", {})])),
        ("ORD-1", "Your REFUND of $25.00 is on its way. I’ll email you."),
        ("thanks", "You're welcome, goodbye!"),
    )


def test_said_any_turn_case_insensitive_and_typographic_quotes():
    assert run({"said": "refund"}, _t()).passed
    assert run({"said": {"contains": ["refund", "I'll email"]}}, _t()).passed
    assert not run({"said": {"contains": "refund", "case_sensitive": True}}, _t()).passed
    assert run({"said": {"contains": "REFUND", "case_sensitive": True}}, _t()).passed


def test_said_failure_names_what_was_missing_and_the_last_reply():
    v = run({"said": {"contains": ["refund", "tracking number"]}}, _t())
    assert v.passed is False
    assert "not found: 'tracking number'" in v.reason and "'refund'" not in v.reason.split("not found:")[1]
    assert "Last reply (turn 4)" in v.reason and "goodbye" in v.reason


def test_said_any_of_and_regex():
    assert run({"said": {"any_of": ["cancelled", "on its way"]}}, _t()).passed
    assert not run({"said": {"any_of": ["cancelled", "shipped"]}}, _t()).passed
    assert run({"said": {"regex": r"\$\d+\.\d{2}"}}, _t()).passed
    v = run({"said": {"regex": r"ticket #\d+"}}, _t())
    assert not v.passed and "/ticket #\\d+/" in v.reason


def test_said_where_last_every_and_turn():
    assert run({"said": {"contains": "goodbye", "where": "last"}}, _t()).passed
    v = run({"said": {"contains": "refund", "where": "last"}}, _t())
    assert not v.passed and v.turn == 4
    # every turn with text (the tool-only turn 2 is not counted)
    assert run({"said": {"regex": r"[.!?]$", "where": "every"}}, _t()).passed
    v = run({"said": {"contains": "o", "where": "every"}}, convo(("a", "hello"), ("b", "hi")))
    assert not v.passed and v.turn == 2 and "turn 2 lacks 'o'" in v.reason
    assert run({"said": {"contains": "refund", "turn": 3}}, _t()).passed
    v = run({"said": {"contains": "refund", "turn": 1}}, _t())
    assert not v.passed and "at turn 1" in v.reason and v.turn == 1
    assert not run({"said": "refund"}, _t(), window=(4, 4)).passed
    assert run({"said": "refund"}, _t(), window=(2, 3)).passed


def test_said_when_agent_said_nothing():
    v = run({"said": "x"}, convo(("a", agent("", tools=[("t", {})]))))
    assert not v.passed and "said nothing" in v.reason


def test_never_said():
    assert run({"never_said": ["guarantee", "lawsuit"]}, _t()).passed
    v = run({"never_said": ["goodbye", "refund"]}, _t())
    assert not v.passed and v.turn == 3 and "'refund'" in v.reason and "REFUND of $25.00" in v.reason
    v = run({"never_said": {"regex": r"\$\d+"}}, _t())
    assert not v.passed and v.turn == 3 and "$25" in v.reason
    assert run({"never_said": {"contains": "refund", "where": "last"}}, _t()).passed
    assert run({"never_said": "refund"}, _t(), window=(4, 4)).passed
    assert not run({"never_said": {"any_of": ["nope", "welcome"]}}, _t()).passed


def test_text_judges_validate_arguments():
    with pytest.raises(JudgeSpecError, match="at least one"):
        judge({"said": {"where": "last"}})
    with pytest.raises(JudgeSpecError, match="invalid regex"):
        judge({"never_said": {"regex": "("}})
    with pytest.raises(JudgeSpecError, match="said.where"):
        judge({"said": {"contains": "x", "where": "first"}})
    with pytest.raises(JudgeSpecError, match="said.text"):
        judge({"said": {"text": "x"}})
