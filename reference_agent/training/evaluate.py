"""Scoring the reference agent's first reply against the Bitext route table.

Used by ``benchmarks/routing.py`` and ``tests/test_agent_router.py``. The route table is
``../shared/data/bitext/README.md``: what a correct first reply does for each route.
"""

from __future__ import annotations

from typing import Any

from reference_agent.training.train_router import FAQ_LINKS, ROUTES

__all__ = ["ORDER_ROUTES", "WRITES", "faq_answer", "is_correct", "observed_route", "wrote_an_order"]

ORDER_ROUTES = ("status", "cancel", "refund", "address")
#: the tools that change an order
WRITES = ("cancel_order", "request_refund", "initiate_return", "update_shipping_address")
_INTENT_ROUTES = {"track_order": "status", "cancel": "cancel", "refund": "refund", "change_address": "address",
                  "return": "return", "faq": "faq", "info": "info_or_decline", "clarify": "clarify"}


def observed_route(reply: Any) -> str:
    """What a reply did, as a route (or ``clarify`` / ``none``)."""
    if reply.handoff:
        return "handoff"
    return _INTENT_ROUTES.get(reply.intent, "none")


def faq_answer(reply: Any) -> str | None:
    """The FAQ entry a reply answered with, if it looked one up and found it."""
    for call in reply.tool_calls:
        if call["name"] == "lookup_faq":
            matches = (call.get("result") or {}).get("matches") or []
            return str(matches[0]["faq_id"]) if matches else None
    return None


def is_correct(label: str, reply: Any) -> bool:
    """Did the first reply to a request of this Bitext intent do what the route table asks?"""
    route = ROUTES[label]
    seen = observed_route(reply)
    if route in ORDER_ROUTES or route == "handoff":
        return seen == route
    answered = faq_answer(reply)
    on_topic = answered is not None and answered in FAQ_LINKS.get(label, [answered])
    if route == "faq":
        return seen == "faq" and on_topic
    # info_or_decline: the FAQ on that topic, or a plain decline with the offer of a human.
    return (seen in ("faq", "info_or_decline") and on_topic) or (seen == "info_or_decline" and answered is None)


def wrote_an_order(tool_calls: list[dict[str, Any]]) -> bool:
    return any(c["name"] in WRITES and c["error"] is None for c in tool_calls)
