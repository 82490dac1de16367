"""state: contains / equals / absent on the agent's end state, dotted paths, clear reasons."""

from __future__ import annotations

import pytest
from _judges_helpers import convo, judge, run

from evalkit.core.errors import JudgeSpecError

STATE = {
    "orders": [
        {"order_id": "ORD-10001", "status": "cancelled", "total": 25.0, "items": ["mug", "tea"]},
        {"order_id": "ORD-10002", "status": "shipped", "total": 40},
    ],
    "refunds": {"R-1": {"order_id": "ORD-10002", "amount": "40.00"}},
    "customer": {"email": "jane@example.com", "tier": "gold"},
    "tickets": [],
    "config.version": 3,
}


def _t(state=STATE):
    return convo(("hi", "hello"), end_state=state)


def test_contains_rows_subset_with_number_tolerance():
    assert run(
        {
            "state": {
                "contains": {"orders": [{"order_id": "ORD-10001", "status": "cancelled", "total": "25"}]}
            }
        },
        _t(),
    ).passed
    # mapping of id -> row works as a row collection
    assert run({"state": {"contains": {"refunds": [{"order_id": "ORD-10002", "amount": 40}]}}}, _t()).passed


def test_contains_row_missing_names_the_closest_row():
    v = run({"state": {"contains": {"orders": [{"order_id": "ORD-10001", "status": "refunded"}]}}}, _t())
    assert v.passed is False
    assert "expected a row matching" in v.reason
    assert "status: 'cancelled' != 'refunded'" in v.reason and "ORD-10001" in v.reason


def test_contains_scalar_and_mapping_and_dotted_paths():
    assert run({"state": {"contains": {"orders.ORD-10002.status": "shipped"}}}, _t()).passed
    assert run({"state": {"contains": {"refunds.R-1.amount": 40}}}, _t()).passed
    assert run({"state": {"contains": {"customer": {"tier": "gold"}}}}, _t()).passed
    assert run({"state": {"contains": {"orders.0.status": "cancelled"}}}, _t()).passed
    assert run({"state": {"contains": {"config.version": 3}}}, _t()).passed  # a literal key with a dot
    v = run({"state": {"contains": {"orders.ORD-10002.status": "cancelled"}}}, _t())
    assert not v.passed and "expected 'cancelled', got 'shipped'" in v.reason
    v = run({"state": {"contains": {"orders.ORD-99.status": "x"}}}, _t())
    assert not v.passed and "has no 'orders.ORD-99.status'" in v.reason


def test_equals():
    assert run({"state": {"equals": {"customer.tier": "gold", "tickets": []}}}, _t()).passed
    assert run({"state": {"equals": {"orders.ORD-10002.total": 40.0}}}, _t()).passed
    rows = list(reversed(STATE["orders"]))
    assert run({"state": {"equals": {"orders": rows}}}, _t()).passed  # rows in any order
    v = run({"state": {"equals": {"customer": {"tier": "gold"}}}}, _t())
    assert not v.passed and "customer: expected" in v.reason


def test_absent():
    assert run({"state": {"absent": {"orders": [{"status": "refunded"}]}}}, _t()).passed
    v = run({"state": {"absent": {"orders": [{"order_id": "ORD-10002"}]}}}, _t())
    assert not v.passed and "expected no row matching" in v.reason
    assert run({"state": {"absent": {"customer.phone": None}}}, _t()).passed
    assert not run({"state": {"absent": {"customer.email": None}}}, _t()).passed
    assert run({"state": {"absent": {"customer.tier": "silver"}}}, _t()).passed
    assert not run({"state": {"absent": {"customer.tier": "gold"}}}, _t()).passed
    assert not run({"state": {"absent": {"orders.ORD-10001.items": "tea"}}}, _t()).passed


def test_all_problems_are_reported_together():
    v = run({"state": {"contains": {"customer.tier": "silver"}, "equals": {"tickets": [1]}}}, _t())
    assert not v.passed and "customer.tier" in v.reason and "tickets" in v.reason
    assert len(v.details["problems"]) == 2


def test_no_end_state_fails_clearly():
    v = run({"state": {"contains": {"x": 1}}}, convo(("hi", "hello")))
    assert v.passed is False and "reported none" in v.reason


def test_state_arguments_are_validated():
    with pytest.raises(JudgeSpecError, match="at least one"):
        judge({"state": {}})
    with pytest.raises(JudgeSpecError, match="state.contain"):
        judge({"state": {"contain": {"x": 1}}})
