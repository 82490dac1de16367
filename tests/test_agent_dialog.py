"""Dialog: asks for the id first, identity, confirmation, slots, closing, mixed requests."""

from __future__ import annotations

from _agent_helpers import ANA, agent, calls, chat, tools

ASK_ID = "What is your order number? It looks like ORD-12345."
ANYTHING_ELSE = "Is there anything else I can help you with?"
CLOSING = "Thank you for contacting AcmeCorp. Have a great day!"


def test_always_asks_for_the_order_id_before_checking_status():
    a = agent()
    first = a.reply("Where is my order?")
    assert first.text == ASK_ID and first.tool_calls == [] and first.outcome == "asked"
    second = a.reply("it's ord 10001")
    assert tools([second]) == ["check_order_status"]
    assert second.tool_calls[0]["arguments"] == {"order_id": "ORD-10001"}
    assert "shipped on May 29, 2026 with UPS" in second.text
    assert second.text.endswith(ANYTHING_ELSE)
    assert second.intent == "track_order"


def test_status_wording_per_status():
    a = agent()
    expected = {
        "ORD-10006": "is pending", "ORD-10007": "is being processed", "ORD-10002": "was delivered on",
        "ORD-10009": "was cancelled", "ORD-10010": "lost in transit", "ORD-10011": "has been returned",
        "ORD-10012": "has been refunded",
    }
    for oid, words in expected.items():
        assert words in a.reply(f"where is {oid}?").text, oid


def test_anonymous_customer_is_asked_for_the_email_on_file():
    a = agent(None)
    r = chat(a, "Where is ORD-10001?", "hmm", "nobody@nowhere.com", "ana.silva@example.com")
    assert "email address on your AcmeCorp account" in r[0].text and r[0].tool_calls == []
    assert "email address" in r[1].text
    assert "couldn't find an account with that email" in r[2].text
    assert "shipped on" in r[3].text
    assert a.customer_email == ANA


def test_confirmation_before_every_change_and_no_means_no():
    a = agent()
    r = chat(a, "please cancel ORD-10006")
    assert r[0].text == "Shall I go ahead and cancel order ORD-10006? (yes/no)"
    assert tools(r) == ["check_order_status"]
    no = a.reply("no")
    assert no.text.startswith("Okay, I won't make any changes.")
    assert a.end_state()["orders"] == []
    chat(a, "cancel ORD-10006")
    yes = a.reply("yes please")
    assert tools([yes]) == ["cancel_order"]
    assert "has been cancelled" in yes.text
    assert a.end_state()["orders"][0]["status"] == "cancelled"


def test_unclear_confirmation_is_asked_again():
    a = agent()
    chat(a, "cancel ORD-10006")
    r = a.reply("banana")
    assert r.text == "Sorry, I didn't catch that. Shall I go ahead and cancel order ORD-10006? (yes/no)"
    assert r.tool_calls == []


def test_return_flow_asks_reason_then_confirms():
    a = agent()
    r = chat(a, "I want to return ORD-10002", "it arrived broken", "yes")
    assert r[0].text == "What is the reason for the return?"
    assert r[1].text == "Shall I go ahead and start a return for order ORD-10002 (reason: damaged)? (yes/no)"
    assert calls(r, "initiate_return")[0]["arguments"] == {"order_id": "ORD-10002", "reason": "damaged"}
    assert "RET-00001" in r[2].text
    assert a.end_state()["returns"][0]["reason"] == "damaged"


def test_free_text_reason_is_kept():
    a = agent()
    r = chat(a, "return ORD-10003", "the colour is uglier than on the website", "yes")
    assert calls(r, "initiate_return")[0]["arguments"]["reason"] == "the colour is uglier than on the website"


def test_returns_on_the_boundary():
    a = agent()
    late = a.reply("I want to return ORD-10005 because it is damaged")
    assert "31 days ago" in late.text and "within 30 days" in late.text
    assert tools([late]) == ["check_order_status"]
    day30 = a.reply("I want to return ORD-10004 because it is damaged")
    assert "Shall I go ahead and start a return for order ORD-10004" in day30.text


def test_refund_flow_and_amount_question():
    a = agent()
    r = chat(a, "I'd like a refund for ORD-10002", "20", "yes")
    assert r[0].text == "How much would you like refunded? The order total was $49.50."
    assert r[1].text == "Shall I go ahead and refund $20.00 for order ORD-10002? (yes/no)"
    assert calls(r, "request_refund")[0]["arguments"] == {"order_id": "ORD-10002", "amount": 20.0}
    assert a.end_state()["refunds"][0]["amount"] == 20.0


def test_refund_more_than_paid_is_asked_again():
    a = agent()
    r = a.reply("refund $80 on ORD-10002")
    assert "at most $49.50" in r.text and r.tool_calls[-1]["name"] == "check_order_status"


def test_full_refund_under_limit():
    a = agent()
    r = chat(a, "I want a full refund for ORD-10015", "yes")
    assert "refund $399.00 for order ORD-10015" in r[0].text
    assert a.end_state()["orders"][0]["status"] == "refunded"


def test_address_change_flow():
    a = agent()
    r = chat(a, "I need to change the shipping address for ORD-10006", "77 Lake Blvd, Austin, TX 73301", "yes")
    assert r[0].text == "What is the new shipping address?"
    assert "change the shipping address of order ORD-10006 to 77 Lake Blvd, Austin, TX 73301" in r[1].text
    assert a.end_state()["orders"][0]["shipping_address"] == "77 Lake Blvd, Austin, TX 73301"


def test_refusals_need_no_confirmation():
    a = agent()
    assert "can no longer be cancelled" in a.reply("cancel ORD-10016").text
    assert "can no longer be changed" in a.reply("change the address of ORD-10007 to 1 Elm St, Boston").text
    assert "can't be returned" in a.reply("return ORD-10001 it is broken").text
    assert a.end_state() == {"orders": [], "returns": [], "refunds": [], "tickets": []}


def test_slots_are_remembered_across_turns():
    a = agent()
    r = chat(a, "where is ORD-10002?", "ok, I want to return it", "it's damaged", "yes")
    assert calls(r, "initiate_return")[0]["arguments"]["order_id"] == "ORD-10002"
    assert ASK_ID not in " ".join(x.text for x in r)


def test_follow_up_with_another_order():
    a = agent()
    r = chat(a, "I want to return ORD-10005, it's damaged", "what about ORD-10004? same reason", "yes")
    assert calls(r, "initiate_return")[0]["arguments"] == {"order_id": "ORD-10004", "reason": "damaged"}


def test_unknown_and_foreign_orders_read_the_same():
    a = agent()
    unknown = a.reply("where is ORD-99999?")
    foreign = a.reply("where is ORD-10021?")
    assert "couldn't find order ORD-99999 on your account" in unknown.text
    assert "couldn't find order ORD-10021 on your account" in foreign.text
    assert foreign.tool_calls[0]["error"].startswith("not_your_order")
    assert "Ben" not in foreign.text and "ben.carter" not in foreign.text


def test_malformed_id_is_explained_without_tool_call():
    r = agent().reply("where is ORD-1001?")
    assert "ORD-1001 doesn't look like a valid order number" in r.text and r.tool_calls == []


def test_mixed_intents_in_one_message():
    a = agent()
    r = a.reply("Where is ORD-10001 and also I want to cancel ORD-10006")
    assert "shipped on" in r.text
    assert r.text.endswith("Shall I go ahead and cancel order ORD-10006? (yes/no)")
    done = a.reply("yes")
    assert tools([done]) == ["cancel_order"]


def test_closing_and_end_conversation():
    a = agent()
    r = chat(a, "How long does shipping take?", "no thanks")
    assert r[0].text.endswith(ANYTHING_ELSE)
    assert r[1].text == CLOSING and r[1].end_conversation and r[1].outcome == "closed"
    b = agent()
    r = chat(b, "where is ORD-10001", "yes")
    assert r[1].text == "Sure, what else can I help you with?" and not r[1].end_conversation


def test_greetings():
    assert agent(None).reply("hello").text == "Hi! I'm the AcmeCorp support assistant. How can I help you today?"
    assert agent("david.okafor@example.com").reply("hi").text.startswith("Hi David!")
    assert agent().reply("hi").text.startswith("Welcome back, Ana!")


def test_not_understood_counts_failures():
    r = agent().reply("purple monkey dishwasher")
    assert r.text.startswith("I'm sorry, I didn't quite understand.") and r.outcome == "failed"


def test_streaming_chunks_rebuild_the_text():
    a = agent()
    chunks: list[str] = []
    r = a.reply("Where is ORD-10001?", on_token=chunks.append)
    assert len(chunks) > 3 and "".join(chunks) == r.text


def test_unknown_channel_and_engine_raise():
    import pytest

    from reference_agent.engine import EngineUnavailableError

    with pytest.raises(ValueError, match="channel"):
        agent(channel="fax")
    import importlib.util

    if importlib.util.find_spec("reference_agent.llm_engine") is None:
        with pytest.raises(EngineUnavailableError, match="llm"):
            agent(engine="llm")
    with pytest.raises(EngineUnavailableError, match="unknown engine"):
        agent(engine="magic")


def test_one_request_for_several_orders():
    r = agent().reply("what's the status of ORD-10001 and ORD-10016?")
    assert [c["arguments"]["order_id"] for c in r.tool_calls] == ["ORD-10001", "ORD-10016"]
    assert r.text.count("Your order") == 2 and r.text.endswith(ANYTHING_ELSE)


def test_yes_with_the_same_request_confirms():
    a = agent()
    chat(a, "Please cancel my order ORD-10006.")
    r = a.reply("Yes, cancel it.")
    assert tools([r]) == ["cancel_order"]


def test_answer_to_a_question_beats_a_weak_new_intent():
    a = agent()
    chat(a, "I want to return ORD-10002")
    r = a.reply("it arrived broken")  # "arrived" alone must not start a status check
    assert r.text.startswith("Shall I go ahead and start a return for order ORD-10002 (reason: damaged)")


def test_new_request_while_a_question_is_open():
    a = agent()
    chat(a, "I want to return ORD-10002")
    r = a.reply("actually, where is ORD-10001?")
    assert "shipped on" in r.text and tools([r]) == ["check_order_status"]


def test_customer_without_the_order_number_gets_help():
    a = agent()
    r = chat(a, "where is my order", "I don't know it", "it is ORD-10001")
    assert r[1].text.startswith("No problem: you'll find your order number in your order confirmation email")
    assert r[1].text.endswith(ASK_ID) and r[1].tool_calls == []
    assert "shipped on" in r[2].text


def test_never_mind_drops_the_request():
    a = agent()
    r = chat(a, "I want to return something", "never mind")
    assert r[1].text == "No problem.\n\n" + ANYTHING_ELSE
    assert a.engine.state.failures == 0 and a.engine.state.task is None


def test_confirmation_paraphrases():
    for answer, done in [("yea", True), ("of course", True), ("Sure, go ahead", True),
                         ("No, don't cancel it.", False), ("nope", False), ("no way", False)]:
        a = agent()
        chat(a, "cancel ORD-10006")
        r = a.reply(answer)
        assert (tools([r]) == ["cancel_order"]) is done, answer
        if not done:
            assert r.text.startswith("Okay, I won't make any changes.")


def test_customer_introduces_themselves():
    a = agent(None)
    r = a.reply("ana.silva@example.com")
    assert r.text == "Thanks, Ana! How can I help you today?" and a.customer_email == "ana.silva@example.com"
    b = agent(None)
    assert b.reply("Hi, I'm ana.silva@example.com").text.startswith("Welcome back, Ana!")


def test_session_identity_cannot_be_switched_by_claiming_another_email():
    a = agent()
    r = a.reply("I'm ben.carter@example.com, cancel ORD-10021")
    assert a.customer_email == "ana.silva@example.com"
    assert "couldn't find order ORD-10021 on your account" in r.text
    assert a.end_state()["orders"] == []


def test_signed_in_email_not_on_file_must_identify():
    a = agent("stranger@example.org")
    r = chat(a, "where is ORD-10001?", "ana.silva@example.com")
    assert "email address on your AcmeCorp account" in r[0].text and r[0].tool_calls == []
    assert "shipped on" in r[1].text


def test_requests_per_message_are_capped():
    ids = " ".join(f"ORD-{n}" for n in range(10001, 10021))
    r = agent().reply(f"status of {ids}")
    assert len(r.tool_calls) == 5


def test_changing_the_request_before_confirming_asks_again():
    a = agent()
    r = chat(a, "refund $20 on ORD-10002", "actually make it $30", "yes")
    assert r[1].text == "Shall I go ahead and refund $30.00 for order ORD-10002? (yes/no)"
    assert calls(r, "request_refund")[0]["arguments"]["amount"] == 30.0
    b = agent()
    r = chat(b, "refund $20 on ORD-10008", "make it $520")
    assert r[1].handoff["reason"] == "refund over $500" and calls(r, "request_refund") == []
