"""Human handoff: when to hand over, and how (a ticket with a summary).

Triggers (checked in this order by the rules engine):

========================  ===================================  ==========================
trigger                   detected by                          ``handoff.reason``
========================  ===================================  ==========================
explicit request          "human", "real person", "agent"...   ``customer asked for a human``
complaint                 "complaint", "complain"...           ``complaint``
frustration               frustration score >= 2 (nlu)         ``customer frustrated``
repeated failures         more than 3 failed attempts          ``repeated failed attempts``
refund over $500          amount > $500 (tools.REFUND_LIMIT)   ``refund over $500``
payment problem           the router (Bitext payment_issue)    ``payment problem``
========================  ===================================  ==========================

A handoff calls the ``escalate_to_human`` tool (which creates an ``open`` ticket row
``TCK-xxxxx`` with the reason, the order id and a summary of the conversation), answers
with a sentence that always contains ``I'm connecting you with a human agent. Your ticket
number is TCK-xxxxx.``, sets the reply's ``handoff`` marker and ends the conversation.
"""

from __future__ import annotations

from reference_agent.engine import Conversation, Draft
from reference_agent.nlu import Analysis

__all__ = [
    "FAILURE_LIMIT",
    "FRUSTRATION_THRESHOLD",
    "REASONS",
    "detect_trigger",
    "hand_off",
    "handoff_sentence",
]

FAILURE_LIMIT = 3  # hand over on the attempt AFTER the third failure
FRUSTRATION_THRESHOLD = 2.0

REASONS = {
    "human": "customer asked for a human",
    "complaint": "complaint",
    "frustration": "customer frustrated",
    "failures": "repeated failed attempts",
    "refund_limit": "refund over $500",
    "payment": "payment problem",
}
_OPENERS = {
    "human": "Of course.",
    "complaint": "I'm sorry to hear that, and I've recorded your complaint.",
    "frustration": "I'm sorry for the trouble.",
    "failures": "I'm sorry I haven't been able to sort this out.",
    "refund_limit": "Refunds over $500 need to be approved by a member of our team.",
    "payment": "I'm sorry about the trouble with your payment: our billing team will look into it.",
}


def detect_trigger(analysis: Analysis, *, ignore_human: bool = False, ignore_frustration: bool = False) -> str | None:
    """The trigger key (``human``, ``complaint``, ``frustration``) a message fires, if any."""
    if not ignore_human and analysis.scores.get("human", 0) >= 2:
        return "human"
    if analysis.scores.get("complaint", 0) >= 3:
        return "complaint"
    if analysis.scores.get("payment_issue", 0) >= 3:
        return "payment"
    if not ignore_frustration and analysis.frustration >= FRUSTRATION_THRESHOLD:
        return "frustration"
    return None


def handoff_sentence(ticket_id: str) -> str:
    return (f"I'm connecting you with a human agent. Your ticket number is **{ticket_id}**. "
            "A member of our team will get back to you shortly.")


def hand_off(conv: Conversation, trigger: str, *, intent: str, order_id: str | None = None,
             detail: str = "") -> Draft:
    """Create the ticket and the handoff reply."""
    reason = REASONS[trigger]
    summary = f"[{reason}] intent={intent}"
    if order_id:
        summary += f" order={order_id}"
    if detail:
        summary += f" {detail}"
    said = conv.memory.summary()
    if said:
        summary += f" | customer said: {said}"
    args: dict[str, str] = {"reason": reason, "summary": summary}
    if order_id:
        args["order_id"] = order_id
    result = conv.tools("escalate_to_human", **args)
    ticket_id = result.get("ticket_id")
    opener = _OPENERS[trigger]
    if ticket_id is None:
        # The ticket could not be created: say so honestly and keep the marker off.
        return Draft(f"{opener} I couldn't create a ticket just now; please contact support@acme.example.com.",
                     intent=intent, outcome="failed")
    text = f"{opener} {handoff_sentence(ticket_id)}"
    return Draft(text, intent=intent, outcome="handoff", handoff={"ticket_id": ticket_id, "reason": reason},
                 end_conversation=True)
