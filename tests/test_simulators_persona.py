"""PersonaUser: deterministic per seed, varied across seeds, facts only when asked, tone and
typos, rephrasing, frustration, handoffs, goal detection and turn limits."""

from __future__ import annotations

import asyncio
import random
import re

import pytest
from _simulators_helpers import acts, always, order_desk, persona_scenario, play, reply, users

from evalkit.core.errors import JudgeSpecError
from evalkit.core.transcript import AgentTurn, StopReason, Transcript, UserTurn
from evalkit.simulators.base import SimulatorContext
from evalkit.simulators.persona import PersonaUser, fact_category, read_reply

FACTS = {"order_id": "ORD-10001", "email": "Jane.Doe@example.com", "name": "Jane Doe"}
DONE = [{"tool_called": {"name": "check_order_status", "arguments": {"order_id": "ORD-10001"}}}]


def _sc(traits=None, goal=None, **kw):
    goal = {"description": "track my order", "intent": "track_order", **(goal or {})}
    return persona_scenario(traits=traits or {}, goal=goal, facts=kw.pop("facts", FACTS), **kw)


def test_same_seed_same_conversation():
    sc = _sc({"tone": "confused", "typo_rate": 0.2, "verbosity": "high"}, {"done_when": DONE})
    a, stop_a = play(sc, order_desk, seed=7)
    b, stop_b = play(sc, order_desk, seed=7)
    assert a.model_dump() == b.model_dump() and stop_a == stop_b


def test_phrasing_varies_across_seeds():
    sc = _sc()
    openings = {users(play(sc, always("ok"), seed=s, max_turns=1)[0])[0] for s in range(12)}
    assert len(openings) >= 4


def test_goal_opening_is_used_verbatim():
    sc = _sc(goal={"opening": "Yo, my parcel is late"})
    t, _ = play(sc, order_desk, seed=3)
    assert users(t)[0] == "Yo, my parcel is late"


def test_never_volunteers_facts_unasked():
    sc = _sc({"patience": 20, "asks_for_human": "never"}, max_turns=8)
    t, stop = play(sc, always("Our store opens at 9am."), seed=1)
    text = " ".join(users(t))
    assert "ORD-10001" not in text and "example.com" not in text and "Jane" not in text
    assert stop.reason == StopReason.max_turns and len(t.user_turns) == 8


def test_answers_exactly_what_is_asked():
    asked = iter(
        ["Could you give me the email address on the order?", "And your full name?", "Thanks. Anything else?"]
    )
    t, _ = play(_sc(), lambda m, t: reply(next(asked, "ok")), seed=2, max_turns=4)
    assert "Jane.Doe@example.com" in users(t)[1] and "ORD-10001" not in users(t)[1]
    assert acts(t)[1] == "answer:email"
    assert "Jane Doe" in users(t)[2] and acts(t)[2] == "answer:name"


def test_answers_several_facts_in_one_message():
    asked = iter(["Please share your order number and your email.", "ok"])
    t, _ = play(_sc(max_turns=2), lambda m, t: reply(next(asked, "ok")), seed=4)
    assert "ORD-10001" in users(t)[1] and "Jane.Doe@example.com" in users(t)[1]
    assert acts(t)[1] == "answer:order_id,email"


def test_unknown_facts_are_admitted():
    sc = _sc(facts={"email": "a@b.co"}, unknown=["order_id"])
    t, _ = play(sc, always("What is your order number?"), seed=0, max_turns=2)
    assert acts(t)[1] == "dont_know:order_id" and "order number" in users(t)[1].lower()


def test_typos_never_touch_fact_values():
    sc = _sc({"typo_rate": 0.5}, {"done_when": DONE})
    typo_seen = False
    clean = _sc({"typo_rate": 0.0}, {"done_when": DONE})
    for seed in range(8):
        t, stop = play(sc, order_desk, seed=seed)
        assert stop.reason == StopReason.goal_met
        assert any("ORD-10001" in u for u in users(t))
        typo_seen |= users(t) != users(play(clean, order_desk, seed=seed)[0])
    assert typo_seen


def test_tone_and_verbosity_change_phrasing():
    terse = [users(play(_sc({"tone": "terse"}), always("ok"), seed=s, max_turns=1)[0])[0] for s in range(6)]
    assert all(not re.match(r"(hi|hello|good morning)\b", u, re.I) and not u.endswith(".") for u in terse)
    polite_high = [
        users(play(_sc({"verbosity": "high"}), always("ok"), seed=s, max_turns=1)[0])[0] for s in range(6)
    ]
    low = [users(play(_sc({"verbosity": "low"}), always("ok"), seed=s, max_turns=1)[0])[0] for s in range(6)]
    assert sum(map(len, polite_high)) > sum(map(len, low))
    angry = " ".join(
        users(play(_sc({"tone": "angry"}), always("ok"), seed=s, max_turns=1)[0])[0] for s in range(8)
    )
    assert re.search(r"ridiculous|annoyed|unacceptable|fix this", angry, re.I)


def test_rephrases_when_not_understood():
    replies = iter(["Sorry, I didn't understand that. Could you rephrase?", "What's your order number?"])
    t, _ = play(_sc(max_turns=3), lambda m, t: reply(next(replies, "ok")), seed=5)
    assert acts(t)[:2] == ["open", "rephrase:open"]
    assert users(t)[1] != users(t)[0]


def test_frustration_leads_to_asking_for_a_human_then_giving_up():
    sc = _sc({"patience": 1, "asks_for_human": "when_frustrated"})
    t, stop = play(sc, always("I'm sorry, I can't help with that."), seed=0)
    assert "ask_human" in acts(t)
    assert acts(t).index("ask_human") == 2  # after two unhelpful replies (patience 1)
    assert stop.reason == StopReason.gave_up and acts(t)[-1] == "give_up"


def test_repeated_replies_count_as_a_loop():
    sc = _sc({"patience": 2, "asks_for_human": "never"}, facts={"name": "Jo"})
    t, stop = play(sc, always("Our hours are 9-5."), seed=0)
    assert stop.reason == StopReason.gave_up
    # open, a first push (the reply is new), then each repeat adds frustration: at 5 (> 2*2) it gives up
    assert acts(t) == ["open", "push_goal", "complain", "complain", "complain", "complain", "give_up"]


def test_never_asks_for_a_human_when_told_not_to():
    sc = _sc({"patience": 0, "asks_for_human": "never"})
    t, stop = play(sc, always("Sorry, I didn't understand."), seed=0)
    assert "ask_human" not in acts(t) and stop.reason == StopReason.gave_up


def test_asks_for_a_human_immediately():
    t, _ = play(_sc({"asks_for_human": "immediately"}), always("ok"), seed=0, max_turns=1)
    assert acts(t) == ["open+ask_human"]
    assert re.search(r"human|person|support team", users(t)[0], re.I)


def test_accepts_a_handoff_and_stops_transferred():
    def agent(msg, t):
        if len(t.user_turns) == 1:
            return reply("Let me check. What's your order number?")
        return reply("I'm transferring you to a colleague.", handoff="needs a human")

    t, stop = play(_sc(), agent, seed=0)
    assert stop.reason == StopReason.transferred and len(t.user_turns) == 2


def test_declines_a_handoff_when_the_goal_does_not_accept_it():
    def agent(msg, t):
        if len(t.user_turns) == 1:
            return reply("Let me hand you over to a human agent.", handoff="escalation")
        return order_desk(msg, t)

    t, stop = play(_sc(goal={"accept_handoff": False, "done_when": DONE}), agent, seed=0)
    assert acts(t)[1] == "decline_handoff"
    assert stop.reason == StopReason.goal_met


def test_human_intent_is_met_by_a_handoff_even_if_not_accepting_others():
    sc = _sc(goal={"intent": "human", "accept_handoff": False})
    t, stop = play(sc, lambda m, t: reply("Connecting you to a human.", handoff="asked"), seed=0)
    assert stop.reason == StopReason.transferred


def test_goal_met_by_done_when_after_a_thanks_turn():
    t, stop = play(_sc(goal={"done_when": DONE}), order_desk, seed=1)
    assert stop.reason == StopReason.goal_met and acts(t)[-1] == "thank"
    # the transcript really shows the agent did it before the user thanked
    assert any(
        c.name == "check_order_status" and c.arguments["order_id"] == "ORD-10001" for c in t.tool_calls
    )
    assert re.search(r"thank", users(t)[-1], re.I)


def test_done_when_not_met_keeps_pushing():
    def wrong(m, t):
        return reply(
            "Order ORD-1 is fine. Anything else?", tool="check_order_status", args={"order_id": "ORD-1"}
        )

    t, stop = play(_sc({"patience": 1, "asks_for_human": "never"}, {"done_when": DONE}), wrong, seed=0)
    assert stop.reason == StopReason.gave_up and "not_done" in acts(t)


def test_without_done_when_anything_else_after_doing_something_is_goal_met():
    t, stop = play(_sc(), order_desk, seed=2)
    assert stop.reason == StopReason.goal_met
    assert acts(t)[-1] == "thank" and t.tool_calls
    # ...but "anything else?" before doing anything is not
    t, stop = play(
        _sc({"patience": 1, "asks_for_human": "never"}), always("Anything else I can help with?"), seed=2
    )
    assert stop.reason == StopReason.gave_up


def test_confirmation_questions_get_a_yes_or_a_no():
    replies = iter(["What's your order number?", "Shall I go ahead and cancel it?", "ok"])
    sc = _sc(goal={"intent": "cancel"})
    t, _ = play(sc, lambda m, t: reply(next(replies, "ok")), seed=0, max_turns=3)
    assert acts(t)[2] == "confirm" and re.search(r"yes|right", users(t)[2], re.I)
    replies = iter(["What's your order number?", "Would you like me to cancel it?"])
    sc = _sc(goal={"intent": "cancel"}, facts={**FACTS, "confirm": False})
    t, _ = play(sc, lambda m, t: reply(next(replies, "ok")), seed=0, max_turns=3)
    assert acts(t)[2] == "decline" and users(t)[2].lower().startswith("no")


def test_stops_at_max_turns():
    t, stop = play(_sc({"patience": 20}, max_turns=4), always("What's your order number?"), seed=0)
    assert stop.reason == StopReason.max_turns and len(t.user_turns) == 4
    # the run's limit applies when it is lower
    t, stop = play(_sc({"patience": 20}), always("What's your order number?"), seed=0, max_turns=3)
    assert stop.reason == StopReason.max_turns and len(t.user_turns) == 3


def test_faq_intent_asks_its_question():
    sc = _sc(goal={"intent": "faq"}, facts={"question": "What is your return policy?"})
    openings = [users(play(sc, always("ok"), seed=s, max_turns=1)[0])[0] for s in range(5)]
    assert all("What is your return policy?" in o for o in openings)


def test_bad_done_when_is_a_scenario_error_up_front():
    with pytest.raises(JudgeSpecError, match="unknown judge"):
        PersonaUser(_sc(goal={"done_when": [{"no_such_judge": {}}]}))


def test_instance_resets_for_a_new_conversation():
    sc = _sc({"typo_rate": 0.3}, {"done_when": DONE})
    first, _ = play(sc, order_desk, seed=9)
    sim = PersonaUser(sc, seed=9)
    ctx = SimulatorContext(
        scenario=sc, transcript=Transcript(scenario_id="p"), turn=1, rng=random.Random(0), max_turns=9
    )
    a = asyncio.run(sim.next_turn(ctx))
    b = asyncio.run(sim.next_turn(ctx))
    assert a == b and a.content == users(first)[0]


@pytest.mark.parametrize(
    ("key", "category"),
    [
        ("order_id", "order_id"),
        ("order_number", "order_id"),
        ("email", "email"),
        ("new_address", "address"),
        ("phone_number", "phone"),
        ("refund_amount", "amount"),
        ("item_name", "item"),
        ("full_name", "name"),
        ("loyalty_code", "loyalty_code"),
    ],
)
def test_fact_categories(key, category):
    assert fact_category(key) == category


def test_reading_agent_replies():
    r = read_reply([AgentTurn(content="Got it. What's the new delivery address?")], [], ["address", "email"])
    assert r.asks == ["address"]
    r = read_reply([AgentTurn(content="What's the email address on your account?")], [], ["address", "email"])
    assert r.asks == ["email"]
    r = read_reply([AgentTurn(content="Your order ORD-1 has shipped.")], [], ["order_id"])
    assert r.asks == [] and r.acted
    r = read_reply([AgentTurn(content="Done! Would you like me to help with anything else?")], [], [])
    assert r.anything_else and not r.confirm
    r = read_reply([AgentTurn(content="Hello")], [AgentTurn(content="hello!")], [])
    assert r.repeated
    r = read_reply([AgentTurn(content="", error="timeout")], [], [])
    assert r.errored
    r = read_reply([AgentTurn(content="Please provide your loyalty code.")], [], ["loyalty_code"])
    assert r.asks == ["loyalty_code"]


def test_a_refusal_followed_by_anything_else_is_not_goal_met():
    def refuses(msg, t):
        if "ORD-" in msg:
            return reply(
                "Sorry, ORD-10001 can no longer be cancelled. Anything else?", tool="check_order_status"
            )
        return reply("What's your order number?")

    sc = _sc({"patience": 1, "asks_for_human": "never"}, {"intent": "cancel"})
    t, stop = play(sc, refuses, seed=0)
    assert stop.reason == StopReason.gave_up and "not_done" in acts(t)


def test_state_in_done_when_uses_the_runner_provided_end_state():
    sc = _sc(goal={"done_when": [{"state": {"contains": {"orders.ORD-10001.status": "shipped"}}}]})
    state = {"orders": [{"order_id": "ORD-10001", "status": "pending"}]}
    sim = PersonaUser(sc, seed=0)
    t = Transcript(scenario_id="p")

    def step(agent_says=None):
        if agent_says is not None:
            t.turns.append(reply(agent_says))
        extra = {"end_state": lambda: state}
        ctx = SimulatorContext(
            scenario=sc, transcript=t, turn=1, rng=random.Random(0), max_turns=9, extra=extra
        )
        msg = asyncio.run(sim.next_turn(ctx))
        t.turns.append(UserTurn(content=msg.content, act=msg.act))
        return msg

    step()
    assert step("Checking. What's your order number?").act == "answer:order_id"
    state["orders"][0]["status"] = "shipped"  # the agent changed its state
    assert step("Done.").act == "thank"


def test_proposals_are_confirmed_not_read_as_fact_questions():
    r = read_reply(
        [AgentTurn(content="Shall I go ahead and start a return for ORD-1 (reason: damaged)? (yes/no)")],
        [],
        ["order_id", "reason"],
    )
    assert r.confirm and r.asks == []
    r = read_reply([AgentTurn(content="Can you confirm your email address?")], [], ["email"])
    assert r.asks == ["email"] and not r.confirm
    r = read_reply([AgentTurn(content="Please confirm that you want this cancelled.")], [], ["email"])
    assert r.confirm and r.asks == []


def test_obvious_answers_without_a_fact():
    replies = iter(["What's your order number?", "How much would you like refunded?"])
    t, _ = play(_sc(goal={"intent": "refund"}), lambda m, t: reply(next(replies, "ok")), seed=0, max_turns=3)
    assert acts(t)[2] == "default:amount" and re.search(r"full|all|whole", users(t)[2], re.I)
    # ...unless the persona says it does not know
    replies = iter(["What's your order number?", "How much would you like refunded?"])
    sc = _sc(goal={"intent": "refund"}, unknown=["amount"])
    t, _ = play(sc, lambda m, t: reply(next(replies, "ok")), seed=0, max_turns=3)
    assert acts(t)[2] == "dont_know:amount"


def test_being_asked_again_for_a_given_fact_is_frustrating():
    sc = _sc({"patience": 1, "asks_for_human": "never"})
    t, stop = play(sc, always("What's your order number?"), seed=0)
    assert acts(t)[1] == "answer:order_id" and acts(t)[2] == "answer:order_id"
    assert re.search(r"already|said|again", users(t)[2], re.I) and "ORD-10001" in users(t)[2]
    assert stop.reason == StopReason.gave_up


def test_human_intent_does_not_ask_twice():
    sc = _sc({"asks_for_human": "immediately", "patience": 5}, {"intent": "human"})
    t, _ = play(sc, always("How can I help?"), seed=0, max_turns=2)
    assert acts(t) == ["open", "push_goal"]


RETURN_FACTS = {"order_id": "ORD-10037", "reason": "the keys stick"}


@pytest.mark.parametrize(
    "question",
    [
        "Shall I go ahead and start a return for order ORD-10037 (reason: the keys stick)? (yes/no)",
        "Do you want me to start a return for ORD-10037 because the keys stick?",
        "Return for order ORD-10037, reason: the keys stick. Should I proceed?",
    ],
)
def test_a_confirmation_restating_facts_gets_a_yes_not_the_facts_again(question):
    # The return desk asks for the order and the reason, then restates both in a yes/no
    # question: the persona must answer "yes", not re-send the reason.
    steps = iter(["Which order is it?", "What's the reason for the return?", question])

    def agent(msg, t):
        if re.match(r"(?i)\s*(yes|that's right)", msg):
            return reply("Return RMA-1 started for ORD-10037.", tool="start_return", args={"order_id": "ORD-10037"})
        return reply(next(steps, "Is there anything else?"))

    done = [{"tool_called": {"name": "start_return"}}]
    sc = _sc(goal={"intent": "return", "description": "return my keyboard", "done_when": done}, facts=RETURN_FACTS)
    t, stop = play(sc, agent, seed=0)
    assert acts(t)[1:4] == ["answer:order_id", "answer:reason", "confirm"]
    assert "keys stick" not in users(t)[3] and re.search(r"\byes\b|right", users(t)[3], re.I)
    assert stop.reason == StopReason.goal_met


def test_an_offer_of_a_human_is_not_a_handoff():
    offer = "I couldn't find that order, or I can connect you with a human agent."
    r = read_reply([AgentTurn(content=offer)], [], ["order_id"])
    assert not r.handoff and r.handoff_offered
    # A persona that does not want a human keeps going: it is not "transferred".
    replies = iter([f"{offer} What's your order number?"])
    t, stop = play(_sc(goal={"done_when": DONE}), lambda m, t: reply(next(replies, "")) if not re.search(
        r"ORD-", m) else order_desk(m, t), seed=0)
    assert acts(t)[1] == "answer:order_id" and stop.reason == StopReason.goal_met


def test_an_offer_is_taken_up_by_asking_and_only_a_real_handoff_transfers():
    offered = []

    def agent(msg, t):
        if re.search(r"human|person|someone", msg, re.I) and offered:
            return reply("Transferring you now.", handoff="customer asked")
        offered.append(msg)
        return reply("I can't do that here, or I can connect you with a human agent.")

    sc = _sc({"asks_for_human": "never"}, {"intent": "human", "accept_handoff": False})
    t, stop = play(sc, agent, seed=0)
    assert acts(t)[1] == "accept_handoff" and re.search(r"human|person|someone", users(t)[1], re.I)
    assert stop.reason == StopReason.transferred and len(t.user_turns) == 2


def test_a_yes_no_offer_of_a_human_is_declined_when_the_persona_does_not_want_one():
    r = read_reply([AgentTurn(content="Would you like me to transfer you to a human agent?")], [], ["order_id"])
    assert r.handoff_question and not r.confirm and not r.handoff
    replies = iter(["Would you like me to transfer you to a human agent?"])
    t, stop = play(
        _sc({"asks_for_human": "never"}, {"done_when": DONE}),
        lambda m, t: reply(next(replies, "What's your order number?")) if "ORD-" not in m else order_desk(m, t),
        seed=0,
    )
    assert acts(t)[1] == "decline_handoff" and stop.reason == StopReason.goal_met
