"""tool_called, tool_not_called, tool_sequence: passing and failing cases with readable reasons."""

from __future__ import annotations

import pytest
from _judges_helpers import agent, convo, judge, run

from evalkit.core.errors import JudgeSpecError


def _order_convo():
    return convo(
        ("where is my order?", "What's your order number?"),
        ("ORD-1001", agent("Let me check.", tools=[("check_order_status", {"order_id": "ORD-1001"})])),
        (
            "sorry, ORD-10001",
            agent(
                "It shipped.",
                tools=[
                    ("check_order_status", {"order_id": "ORD-10001", "verbose": True}),
                    ("send_email", {"to": "jane@example.com", "tags": ["a", "b"]}),
                ],
            ),
        ),
    )


def test_tool_called_passes_and_names_the_turn():
    v = run(
        {"tool_called": {"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}}},
        _order_convo(),
    )
    assert v.passed is True
    assert "turn 3" in v.reason and "once" in v.reason


def test_tool_called_wrong_argument_explains_expected_actual_and_turn():
    t = convo(
        ("hi", "what is it?"),
        ("ORD-1001", agent("ok", tools=[("check_order_status", {"order_id": "ORD-1001"})])),
    )
    v = run({"tool_called": {"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}}}, t)
    assert v.passed is False
    assert v.turn == 2
    assert v.reason == (
        "expected check_order_status(order_id='ORD-10001') at least once; it was called once at turn 2 "
        "with order_id='ORD-1001' (order_id: 'ORD-1001' != 'ORD-10001')"
    )


def test_tool_called_never_called_lists_what_was_called():
    v = run({"tool_called": "cancel_order"}, _order_convo())
    assert v.passed is False
    assert "never called" in v.reason and "check_order_status" in v.reason and "send_email" in v.reason
    v = run({"tool_called": "cancel_order"}, convo(("hi", "hello")))
    assert "no tool was called" in v.reason


@pytest.mark.parametrize(
    ("match", "expected", "ok"),
    [
        ("exact", "ORD-10001", True),
        ("exact", "ord 10001", False),
        ("fuzzy", "ord 10001", True),
        ("fuzzy", "ORD-10002", False),
        ("regex", r"ORD-\d{5}", True),
        ("regex", r"ORD-\d{3}", False),  # fullmatch, not search
        ("subset", "10001", True),
        ("ignore", "anything", True),
    ],
)
def test_tool_called_match_modes(match, expected, ok):
    spec = {
        "name": "check_order_status",
        "arguments": {"order_id": expected},
        "match": {"order_id": match},
        "turns": 3,
    }
    assert run({"tool_called": spec}, _order_convo()).passed is ok


def test_tool_called_default_match_and_subset_of_lists():
    t = _order_convo()
    assert run(
        {
            "tool_called": {
                "name": "send_email",
                "arguments": {"to": "JANE@example.com "},
                "default_match": "fuzzy",
            }
        },
        t,
    ).passed
    assert run(
        {"tool_called": {"name": "send_email", "arguments": {"tags": ["b"]}, "match": {"tags": "subset"}}}, t
    ).passed
    assert run(
        {
            "tool_called": {
                "name": "send_email",
                "arguments": {"tags": ["b", "a"]},
                "match": {"tags": "fuzzy"},
            }
        },
        t,
    ).passed
    assert not run({"tool_called": {"name": "send_email", "arguments": {"tags": ["b", "a"]}}}, t).passed


def test_unnamed_arguments_are_not_checked_but_missing_named_ones_fail():
    t = _order_convo()
    assert run(
        {"tool_called": {"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}}}, t
    ).passed
    v = run({"tool_called": {"name": "send_email", "arguments": {"subject": "hi"}}}, t)
    assert not v.passed and "subject: missing" in v.reason


def test_counts_and_turn_windows():
    t = _order_convo()
    assert run({"tool_called": {"name": "check_order_status", "min_count": 2}}, t).passed
    v = run({"tool_called": {"name": "check_order_status", "max_count": 1}}, t)
    assert not v.passed and "exactly once" in v.reason and "twice (turns 2 and 3)" in v.reason and v.turn == 3
    v = run({"tool_called": {"name": "check_order_status", "min_count": 0, "max_count": 1}}, t)
    assert not v.passed and "at most once" in v.reason
    v = run({"tool_called": {"name": "check_order_status", "min_count": 0, "max_count": 0}}, t)
    assert not v.passed and v.turn == 2
    assert not run({"tool_called": {"name": "check_order_status", "min_count": 3}}, t).passed
    assert run({"tool_called": {"name": "send_email", "turns": [2, 3]}}, t).passed
    v = run({"tool_called": {"name": "send_email", "turns": [1, 2]}}, t)
    assert not v.passed and "in turns 1-2" in v.reason
    # A script-step window works like `turns`.
    assert not run({"tool_called": "send_email"}, t, window=(2, 2)).passed
    assert run({"tool_called": "send_email"}, t, window=(3, 3)).passed


def test_tool_called_argument_validation():
    with pytest.raises(JudgeSpecError, match="tool_called.bogus"):
        judge({"tool_called": {"name": "x", "bogus": 1}})
    with pytest.raises(JudgeSpecError, match="not in 'arguments'"):
        judge({"tool_called": {"name": "x", "match": {"order_id": "fuzzy"}}})
    with pytest.raises(JudgeSpecError, match="match"):
        judge({"tool_called": {"name": "x", "arguments": {"a": 1}, "match": {"a": "sloppy"}}})
    with pytest.raises(JudgeSpecError, match="invalid regex"):
        judge({"tool_called": {"name": "x", "arguments": {"a": "("}, "match": {"a": "regex"}}})
    with pytest.raises(JudgeSpecError, match="below min_count"):
        judge({"tool_called": {"name": "x", "min_count": 2, "max_count": 1}})
    with pytest.raises(JudgeSpecError, match="turns"):
        judge({"tool_called": {"name": "x", "turns": [3, 1]}})
    with pytest.raises(JudgeSpecError, match="tool_called.name"):
        judge({"tool_called": {"arguments": {}}})


def test_tool_not_called():
    t = _order_convo()
    assert run({"tool_not_called": "cancel_order"}, t).passed
    v = run({"tool_not_called": {"name": "check_order_status"}}, t)
    assert not v.passed and v.turn == 2 and "first at turn 2" in v.reason
    # With arguments: only matching calls count.
    assert run(
        {"tool_not_called": {"name": "check_order_status", "arguments": {"order_id": "ORD-9"}}}, t
    ).passed
    v = run(
        {
            "tool_not_called": {
                "name": "check_order_status",
                "arguments": {"order_id": "ord10001"},
                "default_match": "fuzzy",
            }
        },
        t,
    )
    assert not v.passed and v.turn == 3
    assert run({"tool_not_called": "check_order_status"}, t, window=(1, 1)).passed


def _seq_convo(*names: str):
    return convo(*[(f"u{i}", agent("ok", tools=[(n, {"id": i})])) for i, n in enumerate(names, 1)])


@pytest.mark.parametrize(
    ("mode", "calls", "actual", "ok"),
    [
        ("strict", ["a", "b"], ["a", "b"], True),
        ("strict", ["a", "b"], ["a", "x", "b"], False),
        ("strict", ["a", "b"], ["b", "a"], False),
        ("strict", ["a", "b"], ["a"], False),
        ("in_order", ["a", "b"], ["a", "x", "b"], True),
        ("in_order", ["a", "b"], ["b", "a"], False),
        ("unordered", ["a", "b"], ["b", "a"], True),
        ("unordered", ["a", "b"], ["b", "a", "c"], False),
        ("unordered", ["a", "b"], ["a"], False),
        ("subset", ["a", "b", "c"], ["c", "a"], True),
        ("subset", ["a", "b"], ["a", "x"], False),
        ("subset", ["a"], ["a", "a"], False),
        ("superset", ["a", "b"], ["x", "b", "y", "a"], True),
        ("superset", ["a", "b"], ["a", "x"], False),
        ("superset", ["a", "a"], ["a"], False),
    ],
)
def test_tool_sequence_modes(mode, calls, actual, ok):
    v = run({"tool_sequence": {"calls": calls, "mode": mode}}, _seq_convo(*actual))
    assert v.passed is ok, v.reason


def test_tool_sequence_reasons_and_arguments():
    t = _seq_convo("lookup", "cancel")
    v = run({"tool_sequence": {"calls": ["lookup", "refund"], "mode": "strict"}}, t)
    assert not v.passed and "call 2 should be refund, got cancel at turn 2" in v.reason and v.turn == 2
    v = run({"tool_sequence": {"calls": ["lookup", "refund"], "mode": "superset"}}, t)
    assert "missing refund" in v.reason
    v = run({"tool_sequence": {"calls": ["lookup"], "mode": "unordered"}}, t)
    assert "unexpected cancel at turn 2" in v.reason and v.turn == 2
    spec = {
        "calls": [{"name": "lookup", "arguments": {"id": 1}}, {"name": "cancel", "arguments": {"id": 2}}],
        "mode": "strict",
    }
    assert run({"tool_sequence": spec}, t).passed
    spec["calls"][1]["arguments"] = {"id": 9}
    v = run({"tool_sequence": spec}, t)
    assert not v.passed and "id: 2 != 9" in v.reason
    # scalar form: the list of calls, default mode in_order
    assert run({"tool_sequence": ["lookup", "cancel"]}, t).passed
    assert not run({"tool_sequence": ["cancel", "lookup"]}, t).passed
    with pytest.raises(JudgeSpecError, match="mode"):
        judge({"tool_sequence": {"calls": ["a"], "mode": "roughly"}})


def test_tool_called_succeeded_counts_only_calls_without_error():
    from evalkit.core.transcript import ToolCall

    failing = ToolCall(
        name="initiate_return", arguments={"order_id": "ORD-1"}, error="a return already exists"
    )
    ok = ToolCall(name="initiate_return", arguments={"order_id": "ORD-1"}, result={"return_id": "RET-1"})
    t = convo(("x", agent("a")), ("y", agent("b")))
    t.turns[1].tool_calls.append(failing)
    v = run({"tool_called": {"name": "initiate_return", "succeeded": True}}, t)
    assert not v.passed and v.turn == 1 and "it failed: 'a return already exists'" in v.reason
    assert run({"tool_called": {"name": "initiate_return", "succeeded": False}}, t).passed
    assert run({"tool_called": {"name": "initiate_return"}}, t).passed
    t.turns[3].tool_calls.append(ok)
    v = run({"tool_called": {"name": "initiate_return", "succeeded": True}}, t)
    assert v.passed and "turn 2" in v.reason


def test_tool_called_error_counts_only_calls_failing_with_that_error():
    from evalkit.core.transcript import ToolCall

    bad_id = ToolCall(name="request_refund", arguments={"order_id": "ORD-1001"},
                      result={"error": "invalid_order_id"}, error="invalid_order_id: 'ORD-1001' is not valid")
    bad_amount = ToolCall(name="request_refund", arguments={"order_id": "ORD-10001", "amount": "25"},
                          result={"error": "invalid_amount"}, error="invalid_amount: '25' is not an amount")
    ok = ToolCall(name="request_refund", arguments={"order_id": "ORD-10001", "amount": 25},
                  result={"refund_id": "REF-1", "amount": 25.0})
    t = convo(("x", agent("a")), ("y", agent("b")))
    t.turns[1].tool_calls.append(bad_id)
    assert run({"tool_called": {"name": "request_refund", "error": "invalid_order_id"}}, t).passed
    v = run({"tool_called": {"name": "request_refund", "error": "invalid_amount"}}, t)
    assert not v.passed and v.turn == 1
    assert "expected request_refund (failing with 'invalid_amount') at least once" in v.reason
    assert """(its error "invalid_order_id: 'ORD-1001' is not valid" does not contain 'invalid_amount')""" in v.reason
    t.turns[3].tool_calls.extend([bad_amount, ok])
    assert run({"tool_called": {"name": "request_refund", "error": "invalid_amount",
                                "arguments": {"amount": "25"}}}, t).passed
    # a call that succeeded never counts as failing with an error
    v = run({"tool_called": {"name": "request_refund", "arguments": {"amount": 25}, "error": "invalid"}}, t)
    assert not v.passed and "it succeeded" in v.reason
    assert run({"tool_called": {"name": "request_refund", "error": "invalid", "max_count": 2}}, t).passed
    assert not run({"tool_called": {"name": "request_refund", "error": "invalid", "max_count": 1}}, t).passed
    with pytest.raises(JudgeSpecError, match="cannot go with 'succeeded: true'"):
        judge({"tool_called": {"name": "request_refund", "error": "x", "succeeded": True}})


def test_tool_called_result_is_matched_as_a_subset():
    from evalkit.core.transcript import ToolCall

    faq = ToolCall(name="lookup_faq", arguments={"question": "returns"},
                   result={"matches": [{"faq_id": "returns-policy", "score": 0.71, "answer": "Within 30 days."},
                                       {"faq_id": "refund-time", "score": 0.4}]})
    t = convo(("x", agent("a", tools=[])))
    t.turns[1].tool_calls.append(faq)
    assert run({"tool_called": {"name": "lookup_faq", "result": {"matches": [{"faq_id": "returns-policy"}]}}}, t).passed
    assert run({"tool_called": {"name": "lookup_faq",
                                "result": {"matches": [{"faq_id": "refund-time"}, {"answer": "30 days"}]}}}, t).passed
    v = run({"tool_called": {"name": "lookup_faq", "result": {"matches": [{"faq_id": "returns-policy", "score": 0.7}]}}}, t)
    assert not v.passed and "(returning " in v.reason and "its result" in v.reason and "does not contain" in v.reason
    assert not run({"tool_called": {"name": "lookup_faq", "result": {"missing": None}}}, t).passed


def test_tool_not_called_with_error_or_result():
    from evalkit.core.transcript import ToolCall

    faq = ToolCall(name="lookup_faq", arguments={"question": "shipping"},
                   result={"matches": [{"faq_id": "shipping-times"}, {"faq_id": "shipping-cost"}]})
    failed = ToolCall(name="lookup_faq", arguments={"question": ""}, result={"error": "question_required"},
                      error="question_required: Ask a question to look up.")
    t = convo(("x", agent("a")), ("y", agent("b")))
    t.turns[1].tool_calls.append(faq)
    assert run({"tool_not_called": {"name": "lookup_faq", "result": {"matches": [{"faq_id": "return-shipping"}]}}},
               t).passed
    assert run({"tool_not_called": {"name": "lookup_faq", "error": "question_required"}}, t).passed
    v = run({"tool_not_called": {"name": "lookup_faq", "result": {"matches": [{"faq_id": "shipping-cost"}]}}}, t)
    assert not v.passed and v.turn == 1 and "(returning " in v.reason
    t.turns[3].tool_calls.append(failed)
    v = run({"tool_not_called": {"name": "lookup_faq", "error": "question_required"}}, t)
    assert not v.passed and v.turn == 2 and "(failing with 'question_required')" in v.reason
