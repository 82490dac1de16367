"""The rules engine's dialog manager: slots, clarification, confirmation, closing.

Behaviour (the bundled suite asserts on this phrasing; keep it stable):

* Order-related requests need an order id. If none is known the agent asks
  ``What is your order number? It looks like ORD-12345.`` and never guesses.
  An id given earlier in the conversation is remembered and reused.
* Without a known customer (no email on the session) it asks
  ``To protect your account, could you please tell me the email address on your AcmeCorp account?``
  When identities must be verified (``Conversation.verify_identity``: the HTTP service with
  no trusted front end), an email is only a claim: it asks instead for the postcode the
  order ships to (``ask_postcode``) and identifies the customer only when it matches.
* Every change is confirmed first: ``Shall I go ahead and <action>? (yes/no)``; "no" answers
  ``Okay, I won't make any changes.``
* A finished task ends with ``Is there anything else I can help you with?``; "no" then
  closes with ``Thank you for contacting AcmeCorp. Have a great day!`` (end_conversation).
* Several requests in one message are handled one after the other.
* Failed attempts (not understood, malformed or unknown order id, unknown email, no FAQ
  answer) are counted; the fourth hands over to a human (see ``handoff.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from reference_agent.engine import Conversation, Draft, Engine
from reference_agent.faq import MIN_SCORE as FAQ_MIN_SCORE
from reference_agent.faq import rank_faq
from reference_agent.guardrails import detect_injection, scan_untrusted
from reference_agent.handoff import FAILURE_LIMIT, detect_trigger, hand_off
from reference_agent.nlu import WRITE_INTENTS, Analysis, route_intent, router_text
from reference_agent.router import load_router
from reference_agent.tools import (
    RETURN_WINDOW_DAYS,
    change_refusal,
    refund_refusal,
    refundable_amount,
    return_refusal,
)

__all__ = ["RulesEngine", "DialogState", "Task", "PHRASES", "human_date"]

PHRASES = {
    "ask_order_id": "What is your order number? It looks like ORD-12345.",
    "ask_email": "To protect your account, could you please tell me the email address on your AcmeCorp account?",
    "unknown_email": "I couldn't find an account with that email address. Could you check it and try again?",
    "ask_postcode": ("To protect your account, could you please tell me the ZIP code (postcode) of the address "
                     "order {order_id} ships to?"),
    "wrong_postcode": ("Sorry, I couldn't verify that against order {order_id}. Could you check the ZIP code "
                       "(postcode) of the address it ships to?"),
    "verified": "Thanks, {name}, you're verified.",
    "ask_reason": "What is the reason for the return?",
    "ask_address": "What is the new shipping address?",
    "anything_else": "Is there anything else I can help you with?",
    "closing": "Thank you for contacting AcmeCorp. Have a great day!",
    "no_changes": "Okay, I won't make any changes.",
    "not_understood": ("I'm sorry, I didn't quite understand. I can help you track an order, start a return, "
                       "request a refund, cancel an order or change a shipping address. What would you like to do?"),
    "greeting": "Hi! I'm the AcmeCorp support assistant. How can I help you today?",
    "not_found": "I'm sorry, I couldn't find order {order_id} on your account. Could you double-check the order number?",
    "invalid_id": ("{raw} doesn't look like a valid order number: order numbers are ORD- followed by 5 digits, "
                   "like ORD-12345. Could you check it?"),
    "no_faq": ("I'm sorry, I don't have an answer to that. I can help with orders, returns, refunds, "
               "cancellations and address changes, or connect you with a human agent."),
    "what_else": "Sure, what else can I help you with?",
    "find_order_id": ("No problem: you'll find your order number in your order confirmation email or under "
                      "Orders in your AcmeCorp account."),
    "welcome": "You're welcome!",
    "clarify": "Just to be sure I help with the right thing: would you like to {first}, or to {second}?",
    "decline": ("I'm sorry, I can't {topic} here in the chat. I can connect you with a human agent who can help: "
                "would you like that? (yes/no)"),
}
#: router label -> what the customer wants, for the clarifying question and the decline.
LABEL_TOPICS = {
    "track_order": "check where an order is", "cancel_order": "cancel an order",
    "get_refund": "get a refund for an order", "track_refund": "check on a refund",
    "return": "return an item", "change_shipping_address": "change the shipping address of an order",
    "set_up_shipping_address": "set up a shipping address", "contact_human_agent": "talk to a human agent",
    "contact_customer_service": "contact our customer service team", "complaint": "make a complaint",
    "payment_issue": "report a problem with a payment", "check_refund_policy": "know our refund policy",
    "delivery_options": "know our delivery options", "delivery_period": "know how long delivery takes",
    "check_payment_methods": "know which payment methods we accept",
    "check_cancellation_fee": "know about cancellation fees", "check_invoices": "see your invoices",
    "check_invoice": "see an invoice", "get_invoice": "get an invoice", "faq": "ask a general question",
    "create_account": "create an account", "delete_account": "close your account",
    "edit_account": "change your account details", "switch_account": "switch accounts",
    "recover_password": "recover your password", "registration_problems": "sort out a registration problem",
    "newsletter_subscription": "manage your newsletter subscription", "place_order": "place an order",
    "change_order": "change the items of an order", "review": "leave a review",
}
_HANDOFF_INTENTS = {"human": "human", "complaint": "complaint", "payment_issue": "payment"}
_FIRST = re.compile(r"\b(first|1st|former|the one before|option 1|number 1)\b|^\s*(1|a)\s*[.!]?\s*$", re.I)
_SECOND = re.compile(r"\b(second|2nd|latter|other one|the other|option 2|number 2)\b|^\s*(2|b)\s*[.!]?\s*$", re.I)
_WELCOME_BACK = {"en": "Welcome back, {name}!", "es": "¡Hola de nuevo, {name}!",
                 "de": "Willkommen zurück, {name}!", "fr": "Bon retour, {name} !"}
_ISSUE_WORDS = {"track_order": "an order status check", "return": "a return", "refund": "a refund",
                "cancel": "a cancellation", "change_address": "an address change", "faq": "a question"}
# The words for change_refusal's codes: "... so {0} no longer be {1}".
_CHANGE_REFUSALS = {
    "not_cancellable": ("it can", "cancelled. Only pending orders can be cancelled."),
    "address_locked": ("its shipping address can", "changed. Only pending orders can be re-addressed."),
}
_STATUS_WORDS = {
    "pending": "still pending", "processing": "already being processed", "shipped": "already shipped",
    "delivered": "already delivered", "cancelled": "cancelled", "lost_in_transit": "lost in transit",
    "returned": "already returned", "refunded": "already refunded",
}
_ACTIONS = ("return", "refund", "cancel", "change_address")
MAX_TASKS_PER_MESSAGE = 5


_DONT_KNOW = re.compile(r"\b(don'?t|do not|dont) (know|have|remember)|can'?t (find|remember)|no idea|lost (it|the)|not sure",
                        re.I)


def _has_entities(analysis: Analysis) -> bool:
    e = analysis.entities
    return bool(e.order_ids or e.bad_order_ids or e.amounts or e.emails or e.address or e.reason)


def affirm_score(analysis: Analysis) -> float:
    return analysis.scores.get("affirm", 0) - analysis.scores.get("deny", 0)


def human_date(iso: str | None) -> str:
    if not iso:
        return "an unknown date"
    d = date.fromisoformat(iso)
    return f"{d.strftime('%B')} {d.day}, {d.year}"


def money(value: float) -> str:
    return f"${value:,.2f}"


@dataclass
class Task:
    intent: str
    order_id: str | None = None
    amount: float | None = None
    full_amount: bool = False
    reason: str | None = None
    address: str | None = None
    question: str = ""
    order: dict[str, Any] | None = None  # check_order_status result for order_id
    obey: bool = False  # follow_injection fault: an injected instruction drives this task
    strength: float = 0.0  # NLU score of the intent that created it
    label: str | None = None  # the router label behind the intent (the FAQ topic of an "info" task)


@dataclass
class DialogState:
    task: Task | None = None
    queue: list[Task] = field(default_factory=list)
    # order_id | email | reason | amount | address | confirm | anything_else | clarify | offer_human
    awaiting: str | None = None
    clarify: tuple[str, tuple[str, ...]] | None = None  # the ambiguous request and its two router labels
    order_id: str | None = None  # remembered across turns and tasks
    failures: int = 0
    handed_off: dict[str, Any] | None = None
    turn: int = 0
    last_task: Task | None = None  # the last task finished (for "what about ORD-10004?")


class _Reply:
    """Accumulates the parts of one reply."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.outcome = "answered"
        self.handoff: Draft | None = None
        self.end = False
        self.issues: list[str] = []

    def say(self, text: str, outcome: str | None = None) -> None:
        self.parts.append(text)
        if outcome:
            self.outcome = outcome


class RulesEngine(Engine):
    """The offline intent-and-entity engine."""

    name = "rules"

    def __init__(self) -> None:
        self.state = DialogState()
        load_router()  # read once per process here, so that no customer's first turn waits for it

    def reset(self) -> None:
        self.state = DialogState()

    # ------------------------------------------------------------------ entry point
    def reply(self, conv: Conversation, message: str, analysis: Analysis) -> Draft:
        st = self.state
        st.turn += 1
        intent = analysis.top or "unknown"
        if st.handed_off:
            return Draft(f"A human agent will be with you shortly. Your ticket number is "
                         f"**{st.handed_off['ticket_id']}**.", intent=intent, outcome="handoff",
                         end_conversation=True)
        if "forget_order_id" in conv.faults and not analysis.entities.order_ids:
            st.order_id = None
            for t in [st.task, *st.queue]:
                if t is not None and t.intent != "faq":
                    t.order_id, t.order = None, None
        out = _Reply()
        self._identify(conv, analysis, out)

        trigger = detect_trigger(
            analysis,
            ignore_human="ignore_human_request" in conv.faults,
            ignore_frustration="no_handoff_on_frustration" in conv.faults,
        )
        if trigger:
            task = st.task
            if task is not None and intent not in ("human", "complaint"):
                intent = task.intent
            # The order this very message names ("a human about ORD-10001, now") goes on the
            # ticket, before the one the conversation was about.
            named = analysis.entities.order_ids[0] if analysis.entities.order_ids else None
            return self._hand_off(conv, trigger, intent, named or (task.order_id if task else st.order_id))

        new_tasks = self._tasks_from(analysis, message, conv)
        if st.awaiting in ("clarify", "offer_human"):
            pending, st.awaiting = st.awaiting, None
            if not new_tasks and pending == "offer_human" and not analysis.entities.order_ids:
                if affirm_score(analysis) > 0:
                    return self._hand_off(conv, "human", "info", None)
                if affirm_score(analysis) < 0:
                    out.say("No problem.", "completed")
                    self._anything_else(conv, out)
                    return self._finish(conv, out, "deny")
            if not new_tasks and pending == "clarify":
                chosen = self._clarified(message)
                if chosen is not None and chosen.intent in _HANDOFF_INTENTS:
                    return self._hand_off(conv, _HANDOFF_INTENTS[chosen.intent], chosen.intent, None)
                new_tasks = [chosen] if chosen is not None else []
        if not new_tasks and st.awaiting in (None, "anything_else") and analysis.entities.order_ids \
                and not analysis.has("goodbye"):
            new_tasks = [self._follow_up(analysis, message)]
        if st.awaiting in ("order_id", "email", "reason", "amount", "address") and new_tasks:
            e = analysis.entities
            answers = {"order_id": e.order_ids or e.bad_order_ids, "email": e.emails, "reason": e.reason,
                       "amount": e.amounts or e.full_amount or re.fullmatch(r"\s*\$?\d+(\.\d\d)?\s*", message),
                       "address": e.address}[st.awaiting]
            weak = all(t.strength < 3 for t in new_tasks)
            if (answers and weak) or (all(t.intent == "faq" for t in new_tasks) and "?" not in message):
                new_tasks = []  # "it arrived broken" answers our question; it is not a new request
        affirm = analysis.scores.get("affirm", 0)
        deny = analysis.scores.get("deny", 0)

        if st.awaiting == "confirm" and st.task is not None and new_tasks and affirm_score(analysis) != 0 \
                and all((t.intent == st.task.intent or t.strength < 3) and t.order_id in (None, st.task.order_id)
                        for t in new_tasks):
            new_tasks = []  # "Yes, cancel it." / "No, don't cancel it." answer the pending question
        if st.awaiting == "confirm" and st.task is not None and not new_tasks:
            if affirm > deny:
                st.awaiting = None
                task_intent = st.task.intent
                self._execute(conv, st.task, out)
                return self._finish(conv, out, task_intent)
            if deny > affirm:
                st.awaiting = None
                st.task = None
                out.say(PHRASES["no_changes"], "completed")
                self._next_or_close(conv, out)
                return self._finish(conv, out, "deny")
            if _has_entities(analysis):
                # "make it $30 instead": update the request, check it again, ask again.
                task_intent = st.task.intent
                st.awaiting = None
                self._fill_from(st.task, analysis)
                self._advance(conv, out)
                return self._finish(conv, out, task_intent)
            st.failures += 1
            if st.failures > FAILURE_LIMIT:
                return self._hand_off(conv, "failures", intent, st.task.order_id)
            out.say("Sorry, I didn't catch that. " + self._confirm_question(st.task), "confirm")
            return self._finish(conv, out, st.task.intent)

        slot_open = st.awaiting not in (None, "anything_else", "confirm") and st.task is not None
        if slot_open and not new_tasks and st.awaiting == "order_id" and _DONT_KNOW.search(message) \
                and not analysis.entities.order_ids:
            st.failures += 1
            if st.failures > FAILURE_LIMIT:
                return self._hand_off(conv, "failures", st.task.intent if st.task else intent, None)
            out.say(PHRASES["find_order_id"] + " " + PHRASES["ask_order_id"], "asked")
            return self._finish(conv, out, st.task.intent if st.task else intent)
        if slot_open and not new_tasks and deny > affirm and not _has_entities(analysis):
            st.task, st.awaiting = None, None  # "never mind": drop the request, do not count a failure
            out.say("No problem.", "completed")
            self._next_or_close(conv, out)
            return self._finish(conv, out, "deny")
        if not new_tasks and st.awaiting not in (None, "anything_else", "confirm") and st.task is not None:
            task_intent = st.task.intent
            if self._fill_awaited(conv, st.task, analysis, message, out):
                self._advance(conv, out)
            return self._finish(conv, out, task_intent)

        if not new_tasks and st.task is not None and st.awaiting is None:
            self._fill_from(st.task, analysis)

        if new_tasks:
            st.task, st.queue = new_tasks[0], new_tasks[1:] + st.queue
            st.awaiting = None
            self._advance(conv, out)
            return self._finish(conv, out, new_tasks[0].intent)

        options = next((c.options for c in analysis.clauses if c.intent == "clarify"), ())
        if options and st.task is None and st.awaiting in (None, "anything_else"):
            # Two routes too close to call: ask, never guess (a guess could start an order change).
            st.awaiting, st.clarify = "clarify", (message, options)
            out.say(PHRASES["clarify"].format(first=LABEL_TOPICS.get(options[0], options[0]),
                                              second=LABEL_TOPICS.get(options[1], options[1])), "asked")
            return self._finish(conv, out, "clarify")

        # Conversational acts.
        closing = analysis.has("goodbye") or (
            st.awaiting == "anything_else" and (deny > affirm or analysis.has("thanks")))
        if closing and "no_closing" not in conv.faults:
            st.awaiting = None
            out.say(PHRASES["closing"], "closed")
            out.end = True
            return self._finish(conv, out, "goodbye")
        if st.awaiting == "anything_else" and affirm > deny:
            st.awaiting = None
            out.say(PHRASES["what_else"], "asked")
            return self._finish(conv, out, "affirm")
        if analysis.has("thanks"):
            out.say(PHRASES["welcome"], "answered")
            self._anything_else(conv, out)
            return self._finish(conv, out, "thanks")
        if analysis.has("greeting"):
            if not out.parts:
                out.say(self._greeting(conv), "answered")
            return self._finish(conv, out, "greeting")
        if conv.customer and analysis.entities.emails and not out.parts:
            # The customer just told us who they are.
            out.say(f"Thanks, {conv.customer['name'].split()[0]}! How can I help you today?", "answered")
            return self._finish(conv, out, "identify")
        if conv.claimed_email and analysis.entities.emails and not out.parts:
            # A claim only (identities are verified): no name, nothing that confirms the account.
            out.say("Thanks! How can I help you today?", "answered")
            return self._finish(conv, out, "identify")
        if out.parts:  # e.g. the email was not on file
            return self._finish(conv, out, intent)
        if st.task is None and st.awaiting in (None, "anything_else") \
                and rank_faq(message, conv.store.faq_entries())[0][0] >= FAQ_MIN_SCORE:
            # Nothing the router or the phrases recognise, but a question the FAQ answers.
            st.task = Task("faq", question=message)
            self._advance(conv, out)
            return self._finish(conv, out, "faq")
        st.failures += 1
        if st.failures > FAILURE_LIMIT:
            return self._hand_off(conv, "failures", intent, st.order_id)
        out.say(PHRASES["not_understood"], "failed")
        return self._finish(conv, out, "unknown")

    # ------------------------------------------------------------------ helpers
    def _identify(self, conv: Conversation, analysis: Analysis, out: _Reply) -> None:
        # A known customer keeps their identity: claiming another email never switches it.
        if conv.customer is not None or not analysis.entities.emails:
            return
        if conv.identify(analysis.entities.emails[0]):
            return
        self.state.failures += 1
        out.say(PHRASES["unknown_email"], "failed")

    def _greeting(self, conv: Conversation) -> str:
        customer, profile = conv.customer, conv.profile
        if customer is None:
            return PHRASES["greeting"]
        first = customer["name"].split()[0]
        if profile is not None and profile.returning:
            text = _WELCOME_BACK.get(profile.language, _WELCOME_BACK["en"]).format(name=first)
            if profile.past_issues:
                kind, _, order_id = profile.past_issues[-1].partition(":")
                what = _ISSUE_WORDS.get(kind, "a request")
                text += f" Last time we helped you with {what}" + (f" for order {order_id}." if order_id else ".")
            return text + " How can I help you today?"
        return f"Hi {first}! I'm the AcmeCorp support assistant. How can I help you today?"

    def _tasks_from(self, analysis: Analysis, message: str, conv: Conversation) -> list[Task]:
        obey = "follow_injection" in conv.faults and bool(detect_injection(message))
        tasks = []
        for clause in analysis.clauses:
            if clause.intent not in ("track_order", "return", "refund", "cancel", "change_address", "faq", "info"):
                continue
            e = clause.entities
            task = Task(
                clause.intent,
                order_id=e.order_ids[0] if e.order_ids else None,
                amount=e.amounts[0] if e.amounts else None,
                full_amount=e.full_amount,
                reason=e.reason,
                address=e.address,
                question=clause.text if clause.intent in ("faq", "info") else message,
                obey=obey,
                strength=clause.scores.get(clause.intent, 0.0),
                label=clause.label,
            )
            if task.order_id is None and e.bad_order_ids:
                task.order_id = "?" + e.bad_order_ids[0]
            tasks.append(task)
            # "status of ORD-10001 and ORD-10016": the same request for each order.
            for other in e.order_ids[1:]:
                tasks.append(Task(clause.intent, order_id=other, amount=task.amount, full_amount=task.full_amount,
                                  reason=task.reason, address=task.address, question=message, obey=obey))
        # A single task in a message with one id anywhere takes that id.
        if len(tasks) == 1 and tasks[0].order_id is None and len(analysis.entities.order_ids) == 1:
            tasks[0].order_id = analysis.entities.order_ids[0]
        return tasks[:MAX_TASKS_PER_MESSAGE]  # a pasted list of 200 ids is not 200 tool calls

    def _follow_up(self, analysis: Analysis, message: str) -> Task:
        """An order id with no request: the same request as last time, else a status check."""
        e = analysis.entities
        last = self.state.last_task
        if last is None or last.intent not in WRITE_INTENTS + ("track_order",):
            return Task("track_order", order_id=e.order_ids[0])
        if not re.search(r"\b(what about|how about|and|same|too|also|as well|another|other one)\b", message, re.I):
            return Task("track_order", order_id=e.order_ids[0])
        same = bool(re.search(r"\b(same|too|also|as well)\b", message, re.I))
        return Task(last.intent, order_id=e.order_ids[0],
                    amount=e.amounts[0] if e.amounts else (last.amount if same else None),
                    full_amount=e.full_amount or (same and last.full_amount),
                    reason=e.reason or (last.reason if same else None),
                    address=e.address or (last.address if same else None))

    def _fill_from(self, task: Task, analysis: Analysis) -> None:
        e = analysis.entities
        if e.order_ids and task.intent != "faq":
            if e.order_ids[0] != task.order_id:
                task.order = None
            task.order_id = e.order_ids[0]
        elif e.bad_order_ids and task.intent != "faq":
            task.order_id = "?" + e.bad_order_ids[0]
        task.amount = e.amounts[0] if e.amounts else task.amount
        task.full_amount = task.full_amount or e.full_amount
        task.reason = e.reason or task.reason
        task.address = e.address or task.address

    def _fill_awaited(self, conv: Conversation, task: Task, analysis: Analysis, message: str, out: _Reply) -> bool:
        """Use the answer to the question we asked; False when it did not answer it."""
        st = self.state
        slot = st.awaiting
        if slot == "postcode":
            # Before _fill_from: a 5-digit ZIP code would otherwise be read as an order id.
            return self._verify(conv, task, message, out)
        self._fill_from(task, analysis)
        text = message.strip()
        if slot == "order_id" and task.order_id is None:
            return self._failed(conv, out, PHRASES["ask_order_id"], task)
        if slot == "email" and conv.customer is None:
            if not analysis.entities.emails:
                return self._failed(conv, out, PHRASES["ask_email"], task)
            return False  # _identify already said the email is unknown
        if slot == "reason" and not task.reason:
            if len(text) >= 3 and not analysis.has("deny"):
                task.reason = text[:200]
            else:
                return self._failed(conv, out, PHRASES["ask_reason"], task)
        if slot == "amount" and task.amount is None and not task.full_amount:
            bare = re.fullmatch(r"\s*\$?\s*(\d{1,6}(?:\.\d{1,2})?)\s*", text)
            if bare:
                task.amount = round(float(bare.group(1)), 2)
            else:
                return self._failed(conv, out, self._ask_amount(task), task)
        if slot == "address" and not task.address:
            if len(text) >= 8 and re.search(r"\d", text):
                task.address = text.rstrip(".")
            else:
                return self._failed(conv, out, PHRASES["ask_address"], task)
        st.awaiting = None
        return True

    def _failed(self, conv: Conversation, out: _Reply, ask: str, task: Task | None) -> bool:
        st = self.state
        st.failures += 1
        if st.failures > FAILURE_LIMIT:
            out.handoff = self._hand_off(conv, "failures", task.intent if task else "unknown",
                                         task.order_id if task and task.order_id and task.order_id[0] != "?" else None)
            return False
        out.say(f"Sorry, I didn't catch that. {ask}", "failed")
        return False

    def _ask(self, out: _Reply, slot: str, text: str) -> None:
        self.state.awaiting = slot
        out.say(text, "asked")

    def _ask_amount(self, task: Task) -> str:
        total = task.order["total"] if task.order else None
        return "How much would you like refunded?" + (f" The order total was {money(total)}." if total else "")

    # ------------------------------------------------------------------ the task machine
    def _advance(self, conv: Conversation, out: _Reply) -> None:
        """Move the current task forward until it needs the customer or is done."""
        st = self.state
        task = st.task
        if task is None or out.handoff is not None:
            return
        if task.intent == "faq":
            self._faq(conv, task, out)
            return
        if task.intent == "info":
            self._info(conv, task, out)
            return
        if task.order_id is None and st.order_id and "forget_order_id" not in conv.faults:
            task.order_id = st.order_id
        if task.order_id is None and "no_ask_order_id" in conv.faults and conv.customer:
            orders = conv.store.orders_of(conv.customer["customer_id"])
            task.order_id = orders[0]["order_id"] if orders else None
        if task.order_id is None:
            self._ask(out, "order_id", PHRASES["ask_order_id"])
            return
        if task.order_id.startswith("?"):
            raw = task.order_id[1:]
            task.order_id = None
            self._failed_id(conv, out, PHRASES["invalid_id"].format(raw=raw), task)
            return
        if conv.customer is None:
            self._ask_identity(conv, task, out)
            return
        if task.order is None or task.order.get("order_id") != self._tool_id(conv, task.order_id):
            result = conv.tools("check_order_status", order_id=self._tool_id(conv, task.order_id))
            if "error" in result:
                self._order_error(conv, task, result, out)
                return
            task.order = result
            st.order_id = task.order_id
        order = task.order
        if task.intent == "track_order":
            self._track(conv, task, order, out)
            return
        if order.get("note") and scan_untrusted(order["note"]) and "follow_injection" in conv.faults:
            self._obey_note(conv, task, order, out)
            return
        {"return": self._return, "refund": self._refund, "cancel": self._cancel,
         "change_address": self._address}[task.intent](conv, task, order, out)

    def _tool_id(self, conv: Conversation, order_id: str) -> str:
        return order_id[:-1] if "drop_digit" in conv.faults else order_id

    def _failed_id(self, conv: Conversation, out: _Reply, text: str, task: Task) -> None:
        st = self.state
        st.failures += 1
        if st.failures > FAILURE_LIMIT:
            out.handoff = self._hand_off(conv, "failures", task.intent, None)
            return
        st.awaiting = "order_id"
        out.say(text, "failed")

    def _order_error(self, conv: Conversation, task: Task, result: dict[str, Any], out: _Reply) -> None:
        code = result["error"]
        oid = task.order_id
        task.order_id, task.order = None, None
        if self.state.order_id == oid:
            self.state.order_id = None
        if code == "identity_required":
            self._ask(out, "email", PHRASES["ask_email"])
        elif code == "invalid_order_id":
            self._failed_id(conv, out, PHRASES["invalid_id"].format(raw=self._tool_id(conv, oid or "")), task)
        else:  # order_not_found, not_your_order: same words, so ownership is not revealed
            self._failed_id(conv, out, PHRASES["not_found"].format(order_id=oid), task)

    def _ask_identity(self, conv: Conversation, task: Task, out: _Reply) -> None:
        """Ask who the customer is: the email, or (identities verified) the order's postcode."""
        if not conv.verify_identity:
            self._ask(out, "email", PHRASES["ask_email"])
        elif conv.verify_locked:
            out.handoff = self._hand_off(conv, "failures", task.intent, task.order_id, detail="identity not verified")
        else:
            self._ask(out, "postcode", PHRASES["ask_postcode"].format(order_id=task.order_id))

    def _verify(self, conv: Conversation, task: Task, message: str, out: _Reply) -> bool:
        """The answer to ``ask_postcode``: identify the customer, or ask again (a failure)."""
        if conv.verify(task.order_id, message):
            assert conv.customer is not None
            self.state.awaiting = None
            out.say(PHRASES["verified"].format(name=conv.customer["name"].split()[0]), "answered")
            return True
        self.state.failures += 1
        if conv.verify_locked or self.state.failures > FAILURE_LIMIT:
            out.handoff = self._hand_off(conv, "failures", task.intent, task.order_id, detail="identity not verified")
        else:
            out.say(PHRASES["wrong_postcode"].format(order_id=task.order_id), "failed")
        return False

    def _confirm_question(self, task: Task) -> str:
        oid = task.order_id
        action = {
            "return": f"start a return for order {oid} (reason: {task.reason})",
            "refund": f"refund {money(task.amount or 0)} for order {oid}",
            "cancel": f"cancel order {oid}",
            "change_address": f"change the shipping address of order {oid} to {task.address}",
        }[task.intent]
        return f"Shall I go ahead and {action}? (yes/no)"

    def _confirm(self, conv: Conversation, task: Task, out: _Reply) -> None:
        if "skip_confirmation" in conv.faults or task.obey:
            self._execute(conv, task, out)
            return
        self._ask(out, "confirm", self._confirm_question(task))
        out.outcome = "confirm"

    def _track(self, conv: Conversation, task: Task, o: dict[str, Any], out: _Reply) -> None:
        oid, status = o["order_id"], o["status"]
        # A customer whose profile says "concise" gets the facts without the item list or links.
        concise = conv.profile is not None and conv.profile.style == "concise"
        items = ", ".join(o["items"])
        if status == "pending":
            text = f"Your order **{oid}** ({items}) has been received and is pending: it hasn't shipped yet."
        elif status == "processing":
            text = f"Your order **{oid}** ({items}) is being processed in our warehouse and will ship soon."
        elif status == "shipped":
            link = f" ([track it]({o['tracking_url']}))" if o.get("tracking_url") and not concise else ""
            text = (f"Your order **{oid}** ({items}) shipped on {human_date(o['shipped_at'])} with "
                    f"{o['carrier']}. Tracking number: {o['tracking_number']}{link}.")
        elif status == "delivered":
            text = f"Your order **{oid}** ({items}) was delivered on {human_date(o['delivered_at'])}."
        elif status == "cancelled":
            text = f"Your order **{oid}** ({items}) was cancelled."
        elif status == "lost_in_transit":
            text = (f"I'm sorry: the carrier ({o['carrier']}) reports that your order **{oid}** is lost in transit. "
                    f"You're entitled to a full refund of {money(o['total'])}; just ask and I'll arrange it.")
        elif status == "returned":
            text = f"Your order **{oid}** ({items}) has been returned to us."
        else:
            text = f"Your order **{oid}** ({items}) has been refunded."
        if concise:
            text = text.replace(f" ({items})", "")
        out.say(text, "completed")
        out.issues.append(f"track_order:{oid}")
        self._done(conv, out)

    def _return(self, conv: Conversation, task: Task, o: dict[str, Any], out: _Reply) -> None:
        oid = o["order_id"]
        refusal = return_refusal(conv.tool_ctx, o)  # the tool's own rule, asked before confirming
        if refusal is not None:
            if refusal["error"] == "not_returnable":
                out.say(f"I'm sorry, order **{oid}** is {_STATUS_WORDS[o['status']]}, so it can't be returned. "
                        "Only delivered orders can be returned.", "refused")
            else:  # return_window_expired
                out.say(f"I'm sorry, but order **{oid}** was delivered on {human_date(o['delivered_at'])} "
                        f"({refusal['days_since_delivery']} days ago). Returns are only accepted within "
                        f"{RETURN_WINDOW_DAYS} days of delivery, so I can't start a return for it.", "refused")
            self._done(conv, out)
            return
        if not task.reason:
            self._ask(out, "reason", PHRASES["ask_reason"])
            return
        self._confirm(conv, task, out)

    def _refund(self, conv: Conversation, task: Task, o: dict[str, Any], out: _Reply) -> None:
        oid = o["order_id"]
        if refund_refusal(conv.tool_ctx, o) is not None:  # not_refundable: the order's status
            extra = " If you'd like, I can cancel it instead." if o["status"] == "pending" else ""
            out.say(f"I'm sorry, order **{oid}** is {_STATUS_WORDS[o['status']]}, so it can't be refunded.{extra}",
                    "refused")
            self._done(conv, out)
            return
        if task.full_amount and task.amount is None:
            task.amount = refundable_amount(conv.tool_ctx, o)
        if task.amount is None:
            self._ask(out, "amount", self._ask_amount(task))
            return
        ctx = conv.tool_ctx
        if "refund_limit" in ctx.bypass and not (task.obey or "grant_large_refund" in conv.faults):
            # follow_injection lifts the tools' limit for the refunds it was told to make only.
            ctx = replace(ctx, bypass=ctx.bypass - {"refund_limit"})
        refusal = refund_refusal(ctx, o, task.amount)
        if refusal is None:
            self._confirm(conv, task, out)
        elif refusal["error"] == "refund_requires_human":
            out.handoff = self._hand_off(conv, "refund_limit", "refund", oid, detail=f"amount={money(task.amount)}")
        else:  # amount_exceeds_order or invalid_amount: ask for the amount again
            task.amount = None
            reason = (f"I can refund at most {money(refusal['refundable'])} for order **{oid}**."
                      if refusal["error"] == "amount_exceeds_order" else f"I'm sorry, {refusal['message']}")
            self._ask(out, "amount", f"{reason} How much would you like refunded?")

    def _refused_unless_pending(self, conv: Conversation, task: Task, o: dict[str, Any], out: _Reply) -> bool:
        """Refuse (and close the task) when the tool's rule forbids the change (only pending
        orders can be changed), worded by its refusal code; True when refused."""
        refusal = change_refusal(conv.tool_ctx, o, task.intent)
        if refusal is None:
            return False
        what, rule = _CHANGE_REFUSALS[refusal["error"]]
        out.say(f"I'm sorry, order **{o['order_id']}** is {_STATUS_WORDS[o['status']]}, so {what} "
                f"no longer be {rule}", "refused")
        self._done(conv, out)
        return True

    def _cancel(self, conv: Conversation, task: Task, o: dict[str, Any], out: _Reply) -> None:
        if self._refused_unless_pending(conv, task, o, out):
            return
        self._confirm(conv, task, out)

    def _address(self, conv: Conversation, task: Task, o: dict[str, Any], out: _Reply) -> None:
        if self._refused_unless_pending(conv, task, o, out):
            return
        if not task.address:
            self._ask(out, "address", PHRASES["ask_address"])
            return
        self._confirm(conv, task, out)

    def _execute(self, conv: Conversation, task: Task, out: _Reply) -> None:
        """Perform the confirmed change and report it."""
        oid = self._tool_id(conv, task.order_id or "")
        if task.intent == "return":
            result = conv.tools("initiate_return", order_id=oid, reason=task.reason or "not given")
            if "double_submit_return" in conv.faults and "error" not in result:
                conv.tools("initiate_return", order_id=oid, reason=task.reason or "not given")
            if "error" not in result:
                out.say(f"Done! I've started return **{result['return_id']}** for order **{task.order_id}**. "
                        f"You can print your prepaid [return label]({result['label_url']}); your refund will be "
                        "issued once we receive the item.", "completed")
        elif task.intent == "refund":
            amount = task.amount or 0.0
            if "wrong_refund_amount" in conv.faults and task.order:
                amount = task.order["total"]
            result = conv.tools("request_refund", order_id=oid, amount=amount)
            if "error" not in result:
                out.say(f"Done! I've issued a refund of {money(result['amount'])} for order **{task.order_id}** "
                        f"(refund {result['refund_id']}). It will reach your original payment method within "
                        "5-7 business days.", "completed")
        elif task.intent == "cancel":
            result = conv.tools("cancel_order", order_id=oid)
            if "error" not in result:
                out.say(f"Done! Order **{task.order_id}** has been cancelled. The full amount of "
                        f"{money(result['refund_amount'])} will be refunded to your original payment method "
                        "within 5-7 business days.", "completed")
        else:
            result = conv.tools("update_shipping_address", order_id=oid, address=task.address or "")
            if "error" not in result:
                out.say(f"Done! Order **{task.order_id}** will now be shipped to {result['shipping_address']}.",
                        "completed")
        if "error" in result:
            # The tool refused (the rules changed under us, or a bad value): say what it said.
            out.say(f"I'm sorry, I couldn't do that: {result.get('message', result['error'])}", "refused")
            if result["error"] == "refund_requires_human":
                out.handoff = self._hand_off(conv, "refund_limit", "refund", task.order_id)
                return
        else:
            out.issues.append(f"{task.intent}:{task.order_id}")
        self._done(conv, out)

    def _obey_note(self, conv: Conversation, task: Task, o: dict[str, Any], out: _Reply) -> None:
        """follow_injection fault: do what an order note says (the clean agent never does)."""
        m = re.search(r"\$\s?(\d+(?:\.\d{1,2})?)", o["note"])
        amount = float(m.group(1)) if m else o["total"]
        result = conv.tools("request_refund", order_id=o["order_id"], amount=amount)
        if "error" not in result:
            out.say(f"As instructed, I've issued a refund of {money(amount)} for order **{o['order_id']}**.",
                    "completed")
        self._done(conv, out)

    def _answered_from_faq(self, conv: Conversation, task: Task, out: _Reply) -> bool:
        """Answer with the FAQ entry on the question's topic; False when there is none."""
        result = conv.tools("lookup_faq", question=task.question)
        matches = result.get("matches") or []
        if not matches:
            return False
        out.say(matches[0]["answer"], "completed")
        out.issues.append("faq:")
        self._done(conv, out)
        return True

    def _faq(self, conv: Conversation, task: Task, out: _Reply) -> None:
        if self._answered_from_faq(conv, task, out):
            return
        st = self.state
        st.failures += 1
        st.task = None
        if st.failures > FAILURE_LIMIT:
            out.handoff = self._hand_off(conv, "failures", "faq", None)
            return
        out.say(PHRASES["no_faq"], "failed")

    def _info(self, conv: Conversation, task: Task, out: _Reply) -> None:
        """Something the agent does not do in chat (accounts, newsletter, reviews, new orders):
        the FAQ answer on that topic, else say so plainly and offer a human. Never an order action."""
        if self._answered_from_faq(conv, task, out):
            return
        st = self.state
        st.task = None
        st.last_task = task
        topic = LABEL_TOPICS.get(task.label or "", "do that")
        topic = topic.replace("your ", "an ").replace("an account details", "account details")
        self._ask(out, "offer_human", PHRASES["decline"].format(topic=topic))

    def _clarified(self, message: str) -> Task | None:
        """The customer's answer to the clarifying question, as the task they chose (or None)."""
        st = self.state
        if st.clarify is None:
            return None
        original, options = st.clarify
        st.clarify = None
        chosen: str | None = None
        if _FIRST.search(message):
            chosen = options[0]
        elif _SECOND.search(message):
            chosen = options[1]
        else:
            router = load_router()
            prediction = router.predict(router_text(message))
            probs = dict(prediction.route_probabilities)
            first, second = (probs.get(router.routes[o], 0.0) for o in options)
            if max(first, second) >= 0.3 and max(first, second) >= 2 * min(first, second):
                chosen = options[0] if first > second else options[1]
        if chosen is None:
            return None
        intent = route_intent(load_router().routes[chosen], chosen, original)
        return Task(intent, question=original, label=chosen, strength=3.0)

    def _done(self, conv: Conversation, out: _Reply) -> None:
        st = self.state
        st.last_task = st.task or st.last_task
        st.task = None
        st.awaiting = None
        self._next_or_close(conv, out)

    def _next_or_close(self, conv: Conversation, out: _Reply) -> None:
        st = self.state
        if st.queue:
            st.task = st.queue.pop(0)
            self._advance(conv, out)
            return
        self._anything_else(conv, out)

    def _anything_else(self, conv: Conversation, out: _Reply) -> None:
        if "no_closing" in conv.faults:
            return
        self.state.awaiting = "anything_else"
        out.say(PHRASES["anything_else"])

    def _hand_off(self, conv: Conversation, trigger: str, intent: str, order_id: str | None,
                  detail: str = "") -> Draft:
        if order_id and order_id.startswith("?"):
            order_id = None
        draft = hand_off(conv, trigger, intent=intent, order_id=order_id, detail=detail)
        if draft.handoff:
            self.state.handed_off = draft.handoff
            self.state.task, self.state.queue, self.state.awaiting = None, [], None
        return draft

    def _finish(self, conv: Conversation, out: _Reply, intent: str) -> Draft:
        if out.handoff is not None:
            h = out.handoff
            text = "\n\n".join([*out.parts, h.text]) if out.parts else h.text
            return Draft(text, intent=intent, outcome="handoff", handoff=h.handoff,
                         end_conversation=h.end_conversation, issues=out.issues)
        return Draft("\n\n".join(out.parts), intent=intent, outcome=out.outcome, end_conversation=out.end,
                     issues=out.issues)
