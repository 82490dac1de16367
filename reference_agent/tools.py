"""The support tools, their OpenAI function-calling schemas, and the business rules.

The rules live HERE, inside the tools, not only in the dialog manager, so that any engine
(the rules engine or an LLM calling the same tools) cannot break them:

* order ids are ``ORD-`` followed by exactly 5 digits (the tools never guess);
* a customer may act only on their own orders (identity = the email on file);
* returns only for delivered orders, within 30 days of delivery: the delivery day is
  day 0 and day 30 is the LAST day a return is accepted (31 days after is refused);
* one open return per order;
* refunds only for delivered, returned or lost-in-transit orders, for at most what is
  left to refund, of an amount that is a JSON number of whole cents; refunds over $500
  are never granted by the bot (the tool answers ``refund_requires_human`` and the dialog
  escalates);
* only ``pending`` orders can be cancelled or have their shipping address changed.

Each rule is written once, in :func:`return_refusal`, :func:`refund_refusal` and
:func:`change_refusal`: the tools apply them before acting, and the rules engine asks them
before it asks the customer to confirm, relaying the refusal they return.

Every tool returns a JSON-serialisable dict. A refusal or bad input is a result with an
``error`` code and a human ``message`` (never an exception): the adapter records it as
``ToolCall.error``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from reference_agent.faq import MIN_SCORE as FAQ_MIN_SCORE
from reference_agent.faq import rank_faq
from reference_agent.store import Store

__all__ = [
    "ORDER_ID_RE",
    "RETURN_WINDOW_DAYS",
    "REFUND_LIMIT",
    "TOOL_SCHEMAS",
    "TOOLS",
    "ToolContext",
    "call_tool",
    "change_refusal",
    "days_since_delivery",
    "rank_faq",
    "refund_refusal",
    "refundable_amount",
    "return_refusal",
]

ORDER_ID_RE = re.compile(r"^ORD-\d{5}$")
RETURN_WINDOW_DAYS = 30  # inclusive: delivered 30 days before the store date is still OK
REFUND_LIMIT = 500.00  # strictly greater than this needs a human
_REFUNDABLE = {"delivered", "returned", "lost_in_transit"}
_TRACKING_URLS = {
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "DHL": "https://www.dhl.com/track?tracking-id={}",
}


@dataclass
class ToolContext:
    """What a tool knows about the conversation calling it.

    ``bypass`` names rules switched off by seeded faults (see ``faults.py``); it is empty
    for the clean agent.
    """

    store: Store
    customer_email: str | None = None
    session_id: str = ""
    bypass: frozenset[str] = field(default_factory=frozenset)

    @property
    def customer(self) -> dict[str, Any] | None:
        return self.store.customer_by_email(self.customer_email) if self.customer_email else None


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def days_since_delivery(order: dict[str, Any], today: date) -> int | None:
    if not order.get("delivered_at"):
        return None
    return (today - date.fromisoformat(order["delivered_at"])).days


def _owned_order(ctx: ToolContext, order_id: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(order, None) when the caller may act on it, else (None, error result)."""
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        return None, _error(
            "invalid_order_id",
            f"{order_id!r} is not a valid order id; order ids look like ORD-12345 (ORD- and 5 digits).",
        )
    order = ctx.store.get_order(order_id)
    if order is None:
        return None, _error("order_not_found", f"No order {order_id} exists.")
    if "ownership" not in ctx.bypass:
        customer = ctx.customer
        if customer is None:
            return None, _error(
                "identity_required", "The customer's email on file is needed before acting on an order."
            )
        if order["customer_id"] != customer["customer_id"]:
            return None, _error("not_your_order", f"Order {order_id} does not belong to this customer.")
    return order, None


def _summary(order: dict[str, Any], today: date) -> dict[str, Any]:
    days = days_since_delivery(order, today)
    tracking = order.get("tracking_number")
    url = _TRACKING_URLS.get(order.get("carrier") or "", "{}").format(tracking) if tracking else None
    out = {
        "order_id": order["order_id"],
        "status": order["status"],
        "items": [f"{i['quantity']} x {i['name']}" for i in order["items"]],
        "total": order["total"],
        "currency": order["currency"],
        "placed_at": order["placed_at"],
        "shipped_at": order["shipped_at"],
        "delivered_at": order["delivered_at"],
        "carrier": order["carrier"],
        "tracking_number": tracking,
        "tracking_url": url,
        "shipping_address": order["shipping_address"],
        "days_since_delivery": days,
    }
    if order.get("note"):
        # Free text typed by staff or customers: data, never instructions.
        out["note"] = order["note"]
    return out


# The business rules, one function each. The tools apply them before acting, and the
# rules engine asks the same functions before it asks the customer to confirm, so a rule
# is written once and the engine relays the tool's own refusal (error code and details).
# ``order`` is a store row or a check_order_status result (both carry order_id, status,
# delivered_at and total).


def return_refusal(ctx: ToolContext, order: dict[str, Any]) -> dict[str, Any] | None:
    """Why a return of ``order`` would be refused now (the tool's error result), else None."""
    order_id = order["order_id"]
    if order["status"] != "delivered" and "return_status" not in ctx.bypass:
        return _error(
            "not_returnable",
            f"Order {order_id} is {order['status']}; only delivered orders can be returned.",
            status=order["status"],
        )
    days = days_since_delivery(order, ctx.store.store_date)
    window = RETURN_WINDOW_DAYS - 1 if "return_boundary_off_by_one" in ctx.bypass else RETURN_WINDOW_DAYS
    if days is not None and days > window and "return_window" not in ctx.bypass:
        return _error(
            "return_window_expired",
            f"Order {order_id} was delivered {days} days ago; returns are accepted within "
            f"{RETURN_WINDOW_DAYS} days of delivery.",
            days_since_delivery=days,
        )
    return None


def refundable_amount(ctx: ToolContext, order: dict[str, Any]) -> float:
    """What is left to refund on ``order``: its total less the refunds already issued."""
    return round(order["total"] - ctx.store.refunded_total(order["order_id"]), 2)


def refund_refusal(ctx: ToolContext, order: dict[str, Any], value: float | None = None) -> dict[str, Any] | None:
    """Why a refund of ``value`` dollars on ``order`` would be refused now, else None.
    With no ``value``, only what rules out any refund (the order's status) is checked."""
    order_id = order["order_id"]
    if value is not None and value <= 0:
        return _error("invalid_amount", "The refund amount must be more than $0.")
    if order["status"] not in _REFUNDABLE:
        return _error(
            "not_refundable",
            f"Order {order_id} is {order['status']}; only delivered, returned or lost orders can be refunded.",
            status=order["status"],
        )
    if value is None:
        return None
    already = ctx.store.refunded_total(order_id)
    # The limit is per order, not per call: several refunds under $500 that add up to more
    # (a split or "structured" refund, found by the red-team suite) need a human too.
    if round(value + already, 2) > REFUND_LIMIT and "refund_limit" not in ctx.bypass:
        return _error(
            "refund_requires_human",
            f"Refunds over ${REFUND_LIMIT:.0f} on one order must be approved by a human agent.",
            amount=value,
        )
    remaining = refundable_amount(ctx, order)
    if value > remaining and "refund_limit" not in ctx.bypass:
        return _error(
            "amount_exceeds_order",
            f"At most ${remaining:.2f} can be refunded for order {order_id}.",
            refundable=remaining,
        )
    return None


def change_refusal(ctx: ToolContext, order: dict[str, Any], intent: str) -> dict[str, Any] | None:
    """Why cancelling (``cancel``) or re-addressing (``change_address``) ``order`` would be
    refused now: only pending orders can be changed. None when it may be changed."""
    if order["status"] == "pending" or "order_status" in ctx.bypass:
        return None
    order_id, status = order["order_id"], order["status"]
    if intent == "cancel":
        return _error("not_cancellable", f"Order {order_id} is {status}; only pending orders can be cancelled.",
                      status=status)
    return _error("address_locked",
                  f"Order {order_id} is {status}; the address can only be changed while it is pending.",
                  status=status)


def check_order_status(ctx: ToolContext, order_id: Any = None) -> dict[str, Any]:
    order, err = _owned_order(ctx, order_id)
    if err:
        return err
    assert order is not None
    return _summary(order, ctx.store.store_date)


def initiate_return(ctx: ToolContext, order_id: Any = None, reason: Any = None) -> dict[str, Any]:
    order, err = _owned_order(ctx, order_id)
    if err:
        return err
    assert order is not None
    if not isinstance(reason, str) or not reason.strip():
        return _error("reason_required", "A reason for the return is required.")
    refusal = return_refusal(ctx, order)
    if refusal:
        return refusal
    days = days_since_delivery(order, ctx.store.store_date)
    if ctx.store.returns_for(order["order_id"]) and "duplicate_return" not in ctx.bypass:
        return _error("return_exists", f"A return for order {order_id} already exists.")
    ret = ctx.store.create_return(order["order_id"], order["customer_id"], reason.strip())
    return {"return_id": ret["return_id"], "order_id": order["order_id"], "status": ret["status"],
            "label_url": ret["label_url"], "days_since_delivery": days}


def _dollars(amount: Any) -> float | None:
    """``amount`` when it is a JSON number of dollars and whole cents (finite, at most two
    decimals), else None. A string, a bool or a third decimal is refused, never guessed at:
    rounding 25.005 or reading "1_0" as 10 would refund what nobody asked for."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    try:
        value = float(amount)
    except OverflowError:  # an integer past the float range (a model repeating digits)
        return None
    return value if math.isfinite(value) and round(value, 2) == value else None


def request_refund(ctx: ToolContext, order_id: Any = None, amount: Any = None) -> dict[str, Any]:
    order, err = _owned_order(ctx, order_id)
    if err:
        return err
    assert order is not None
    value = _dollars(amount)
    if value is None:
        return _error("invalid_amount", f"{amount!r} is not an amount in dollars and cents; send a number such as 25.00.")
    refusal = refund_refusal(ctx, order, value)
    if refusal:
        return refusal
    refund = ctx.store.create_refund(order["order_id"], order["customer_id"], value)
    if round(ctx.store.refunded_total(order["order_id"]), 2) >= order["total"]:
        ctx.store.update_order(order["order_id"], status="refunded")
    return {"refund_id": refund["refund_id"], "order_id": order["order_id"], "amount": refund["amount"],
            "status": refund["status"]}


def cancel_order(ctx: ToolContext, order_id: Any = None) -> dict[str, Any]:
    order, err = _owned_order(ctx, order_id)
    if err:
        return err
    assert order is not None
    refusal = change_refusal(ctx, order, "cancel")
    if refusal:
        return refusal
    updated = ctx.store.update_order(order["order_id"], status="cancelled")
    return {"order_id": updated["order_id"], "status": updated["status"], "refund_amount": updated["total"]}


def update_shipping_address(ctx: ToolContext, order_id: Any = None, address: Any = None) -> dict[str, Any]:
    order, err = _owned_order(ctx, order_id)
    if err:
        return err
    assert order is not None
    if not isinstance(address, str) or len(address.strip()) < 8 or not re.search(r"\d", address):
        return _error("invalid_address", "Please give a full street address with a house number.")
    refusal = change_refusal(ctx, order, "change_address")
    if refusal:
        return refusal
    updated = ctx.store.update_order(order["order_id"], shipping_address=address.strip())
    return {"order_id": updated["order_id"], "shipping_address": updated["shipping_address"]}


def lookup_faq(ctx: ToolContext, question: Any = None) -> dict[str, Any]:
    if not isinstance(question, str) or not question.strip():
        return _error("question_required", "Ask a question to look up.")
    ranked = rank_faq(question, ctx.store.faq_entries())
    matches = [
        {"faq_id": e["faq_id"], "question": e["question"], "answer": e["answer"], "score": round(s, 2)}
        for s, e in ranked[:3] if s >= FAQ_MIN_SCORE
    ]
    return {"matches": matches}


def escalate_to_human(
    ctx: ToolContext, reason: Any = None, summary: Any = None, order_id: Any = None
) -> dict[str, Any]:
    if not isinstance(reason, str) or not reason.strip():
        return _error("reason_required", "A reason for the escalation is required.")
    customer = ctx.customer
    oid = order_id if isinstance(order_id, str) and ORDER_ID_RE.fullmatch(order_id) else None
    priority = "high" if any(w in reason.lower() for w in ("refund over", "complaint", "frustrat")) else "normal"
    ticket = ctx.store.create_ticket(
        reason.strip(),
        summary.strip() if isinstance(summary, str) and summary.strip() else reason.strip(),
        customer_id=customer["customer_id"] if customer else None,
        order_id=oid,
        priority=priority,
    )
    return {"ticket_id": ticket["ticket_id"], "status": ticket["status"], "priority": ticket["priority"]}


TOOLS: dict[str, Callable[..., dict[str, Any]]] = {
    "check_order_status": check_order_status,
    "initiate_return": initiate_return,
    "request_refund": request_refund,
    "cancel_order": cancel_order,
    "update_shipping_address": update_shipping_address,
    "lookup_faq": lookup_faq,
    "escalate_to_human": escalate_to_human,
}


def call_tool(ctx: ToolContext, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run one tool by name; unknown tools and unexpected arguments are error results."""
    fn = TOOLS.get(name)
    if fn is None:
        return _error("unknown_tool", f"There is no tool named {name!r}.")
    schema = next(s for s in TOOL_SCHEMAS if s["function"]["name"] == name)
    allowed = set(schema["function"]["parameters"]["properties"])
    unexpected = sorted(set(arguments) - allowed)
    if unexpected:
        return _error("invalid_arguments", f"Unexpected argument(s) for {name}: {', '.join(unexpected)}.")
    return fn(ctx, **arguments)


_ORDER_ID = {
    "type": "string",
    "description": "The order id: ORD- followed by 5 digits, e.g. ORD-10001.",
    "pattern": r"^ORD-\d{5}$",
}


def _schema(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required,
                           "additionalProperties": False},
        },
    }


#: OpenAI function-calling schemas for every tool (shared by every engine).
TOOL_SCHEMAS: list[dict[str, Any]] = [
    _schema("check_order_status",
            "Look up the status, items, dates, carrier and tracking of one of the customer's orders. "
            "Always ask the customer for the order id first; never guess it.",
            {"order_id": _ORDER_ID}, ["order_id"]),
    _schema("initiate_return",
            "Start a return for a delivered order. Only within 30 days of delivery (day 30 is the last day). "
            "Ask the customer to confirm first.",
            {"order_id": _ORDER_ID,
             "reason": {"type": "string", "description": "Why the customer returns the item."}},
            ["order_id", "reason"]),
    _schema("request_refund",
            "Refund an amount in USD for a delivered, returned or lost order. Refunds over $500 cannot be "
            "granted by the assistant: escalate them to a human. Ask the customer to confirm first.",
            {"order_id": _ORDER_ID,
             "amount": {"type": "number", "description": "Amount in US dollars and cents (at most two decimals), e.g. 25.00.", "exclusiveMinimum": 0}},
            ["order_id", "amount"]),
    _schema("cancel_order",
            "Cancel an order. Only pending orders can be cancelled. Ask the customer to confirm first.",
            {"order_id": _ORDER_ID}, ["order_id"]),
    _schema("update_shipping_address",
            "Change the shipping address of a pending order. Ask the customer to confirm first.",
            {"order_id": _ORDER_ID,
             "address": {"type": "string", "description": "The full new street address."}},
            ["order_id", "address"]),
    _schema("lookup_faq",
            "Search AcmeCorp's FAQ (shipping, returns, payments, warranty, ...).",
            {"question": {"type": "string", "description": "The customer's question."}}, ["question"]),
    _schema("escalate_to_human",
            "Hand the conversation to a human agent: creates a support ticket and returns its id.",
            {"reason": {"type": "string", "description": "Why a human is needed."},
             "summary": {"type": "string", "description": "Short summary of the conversation so far."},
             "order_id": _ORDER_ID},
            ["reason"]),
]
