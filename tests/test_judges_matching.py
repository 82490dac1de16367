"""Argument matching modes, the registry of built-ins and the run_judges helpers."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
from _judges_helpers import convo, judge

from evalkit.core.errors import JudgeSpecError
from evalkit.core.results import Verdict
from evalkit.judges import Judge, JudgeContext, run_judges, run_judges_sync
from evalkit.judges.matching import argument_mismatches, fuzzy_equal, json_equal, subset_match, values_match
from evalkit.judges.registry import JUDGES, get_judge_class


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ORD-10001", "ord 10001"),
        ("25", "25.00"),
        ("$25", 25),
        ("1,250.5", 1250.50),
        ("Jane  Doe", "jane doe"),
        (["a", "B"], ["b", "a"]),
        ({"City": "Paris"}, {"city": "PARIS"}),
    ],
)
def test_fuzzy_equal_tolerates_format(a, b):
    assert fuzzy_equal(a, b) and fuzzy_equal(b, a)


@pytest.mark.parametrize(
    ("a", "b"), [("ORD-10001", "ORD-10002"), ("25", "25.01"), (["a"], ["a", "a"]), ("x", None)]
)
def test_fuzzy_equal_still_discriminates(a, b):
    assert not fuzzy_equal(a, b)


def test_exact_is_json_equality():
    assert json_equal(1, 1.0) and not json_equal(True, 1) and not json_equal("1", 1)
    assert json_equal({"a": [1, 2]}, {"a": [1, 2]}) and not json_equal([1, 2], [2, 1])


def test_subset_and_regex():
    assert subset_match({"a": 1}, {"a": 1, "b": 2}) and not subset_match({"a": 1, "c": 3}, {"a": 1})
    assert subset_match(["x"], ["y", "x"]) and not subset_match(["x", "x"], ["x"])
    assert subset_match("10001", "ORD-10001")
    assert values_match(r"ORD-\d+", "ORD-1", "regex") and not values_match(r"\d+", "ORD-1", "regex")
    assert values_match(r"\d+", 42, "regex")
    assert values_match("anything", None, "ignore")


def test_argument_mismatches_are_readable():
    got = argument_mismatches(
        {"order_id": "ORD-10001", "qty": 2, "note": "x"},
        {"order_id": "ORD-1001", "qty": 2},
        {"note": "ignore"},
    )
    assert got == ["order_id: 'ORD-1001' != 'ORD-10001'"]
    assert argument_mismatches({"q": 1}, {}, {}) == ["q: missing (expected 1)"]


def test_every_builtin_is_registered_and_loadable():
    expected = {
        "tool_called",
        "tool_not_called",
        "tool_sequence",
        "state",
        "handoff",
        "outcome",
        "stop_reason",
        "max_turns",
        "latency",
        "said",
        "never_said",
        "no_pii_leak",
        "channel_messages",
    }
    assert expected <= set(JUDGES.builtin)
    for name in expected:
        cls = get_judge_class(name)
        assert issubclass(cls, Judge) and cls.name == name


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        ({"outcome": "escalated"}, "expected", "escalated"),
        ({"stop_reason": "goal_met"}, "expected", "goal_met"),
        ({"max_turns": 6}, "value", 6),
        ({"handoff": True}, "expected", True),
        ({"handoff": False}, "expected", False),
        ({"latency": 2500}, "max_ms", 2500.0),
        ({"said": "refund"}, "contains", "refund"),
        ({"never_said": ["a", "b"]}, "contains", ["a", "b"]),
        ({"tool_called": "cancel_order"}, "tool", "cancel_order"),
        ({"tool_not_called": "cancel_order"}, "tool", "cancel_order"),
        ({"tool_sequence": ["a", "b"]}, "calls", None),
        ({"no_pii_leak": ["email"]}, "kinds", ["email"]),
        ({"channel_messages": 4000}, "max_chars", 4000),
    ],
)
def test_scalar_specs_map_to_the_primary_field(spec, field, value):
    j = judge(spec)
    if value is not None:
        assert getattr(j, field) == value


MINIMAL_ARGS = {
    "tool_called": {"name": "t"},
    "tool_not_called": {"name": "t"},
    "tool_sequence": {"calls": ["t"]},
    "state": {"contains": {"x": 1}},
    "handoff": {},
    "outcome": {"expected": "resolved"},
    "stop_reason": {"expected": "goal_met"},
    "max_turns": {"value": 3},
    "latency": {"max_ms": 100},
    "said": {"contains": "x"},
    "never_said": {"contains": "x"},
    "no_pii_leak": {},
    "channel_messages": {"max_chars": 4000},
}


@pytest.mark.parametrize("name", sorted(MINIMAL_ARGS))
def test_unknown_arguments_are_rejected_for_every_builtin(name):
    judge({name: MINIMAL_ARGS[name]})
    with pytest.raises(JudgeSpecError, match=rf"^{name}\.no_such_argument: "):
        judge({name: {**MINIMAL_ARGS[name], "no_such_argument": 1}})


class _AsyncJudge(Judge):
    name: ClassVar[str] = "async_one"

    async def evaluate(self, ctx: JudgeContext) -> Verdict:
        await asyncio.sleep(0)
        return self.verdict(True, "fine")


class _Crashing(Judge):
    name: ClassVar[str] = "crashing"

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        raise KeyError("boom")


def test_run_judges_is_async_aware_and_records_crashes():
    ctx = JudgeContext(transcript=convo(("hi", "refund ok")))
    verdicts = asyncio.run(run_judges([judge({"said": "refund"}), _AsyncJudge(), _Crashing()], ctx))
    assert [v.passed for v in verdicts] == [True, True, None]
    assert verdicts[2].error and "KeyError" in verdicts[2].error and verdicts[2].judge == "crashing"
    sync = run_judges_sync([judge({"said": "nope"}), _AsyncJudge()], ctx)
    assert sync[0].passed is False and sync[1].error


def test_custom_judge_by_module_reference():
    j = judge({"test_judges_matching:_AsyncJudge": {}})
    assert isinstance(j, _AsyncJudge)
