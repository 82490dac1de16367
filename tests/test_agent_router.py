"""The learned router and what the dialog does with it: JSON inference, clarification, the
object of an action, FAQ topics, typo repair, and routing of held-out Bitext rows."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reference_agent.agent import SupportAgent
from reference_agent.faq import rank_faq
from reference_agent.nlu import analyze, route_intent, router_text
from reference_agent.router import ARTIFACT, FORMAT, Router, load_router, use_router
from reference_agent.store import open_store

BITEXT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bitext"
ANA = "ana.silva@example.com"
WRITES = ("cancel_order", "request_refund", "initiate_return", "update_shipping_address")


def chat(*lines: str) -> tuple[SupportAgent, list]:
    agent = SupportAgent(session_id="t", customer_email=ANA)
    return agent, [agent.reply(line) for line in lines]


def tool_names(replies: list) -> list[str]:
    return [c["name"] for r in replies for c in r.tool_calls]


# ---------------------------------------------------------------- the artifact

def test_artifact_is_plain_json_with_its_licence_note():
    data = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    assert data["format"] == FORMAT
    assert ARTIFACT.stat().st_size < 3_000_000
    note = ARTIFACT.with_name("router.LICENSE.md").read_text(encoding="utf-8")
    assert "CDLA-Sharing-1.0" in note and "Bitext" in note


def _sample_texts() -> list[str]:
    from reference_agent.training.train_router import load_suite_phrasings

    texts = [e.text for e in load_suite_phrasings()]
    texts += ["", "?!", "ORD-10001", "naïve café über", "a" * 300, "where is my order ORD-10001 and ORD-10002"]
    if (BITEXT / "customer_service_train.csv").is_file():
        from reference_agent.training.train_router import load_bitext

        texts += [e.text for e in random.Random(7).sample(load_bitext(BITEXT), 400)]
    return texts


def test_json_inference_equals_scikit_learn():
    pytest.importorskip("sklearn", reason="scikit-learn is a training extra: pip install -e '.[train]'")
    import numpy as np

    from reference_agent.training.train_router import pipeline_from_artifact

    data = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    router = Router(data)
    pipeline = pipeline_from_artifact(data)
    texts = [router_text(t) for t in _sample_texts()]
    expected = pipeline.predict_proba(texts)
    ours = np.vstack([router.probabilities(t) for t in texts])
    assert list(pipeline.classes_) == router.labels
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    assert list(pipeline.predict(texts)) == [router.labels[int(np.argmax(p))] for p in ours]


# ---------------------------------------------------------------- clarification

def _two_label_router(first: str, second: str) -> Router:
    """A hand-made router: the word "fee" means ``second``, "cancel" means ``first``."""
    shipped = load_router()
    return Router({
        "format": FORMAT,
        "vectorizers": [{"analyzer": "word", "ngram_range": [1, 1], "sublinear_tf": True,
                         "terms": ["cancel", "fee"], "idf": [1.0, 1.0]}],
        "labels": [first, second, "none"],
        "routes": {first: shipped.routes[first], second: shipped.routes[second], "none": "none"},
        "coef": [[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]],
        "intercept": [0.0, 0.0, 0.0],
        "known_words": sorted(shipped.known_words),
        "seen_words": ["cancel", "fee"],
        "faq_links": shipped.faq_links,
    })


def test_a_router_chosen_for_a_block_never_meets_another_routers_typo_repairs():
    from reference_agent.nlu import _repair

    assert _repair("cancle my ordr") == " cancel my order "  # the shipped word list: typos
    data = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    data["known_words"] = sorted({*data["known_words"], "cancle"})  # here "cancle" is a word
    with use_router(Router(data)):
        assert _repair("cancle my ordr") == " cancle my order "
    assert _repair("cancle my ordr") == " cancel my order "  # the block's router is gone with it


@pytest.fixture
def ambiguous_router():
    with use_router(_two_label_router("cancel_order", "check_cancellation_fee")):
        yield


def test_two_close_routes_get_a_clarifying_question_not_a_guess(ambiguous_router):
    agent, replies = chat("cancel fee", "ORD-10006", "yes")
    first = replies[0]
    assert first.intent == "clarify" and first.outcome == "asked"
    assert "cancel an order" in first.text and "cancellation fee" in first.text
    assert not any(name in WRITES for name in tool_names(replies))
    assert agent.end_state()["orders"] == []


def test_the_answer_to_a_clarifying_question_picks_the_route(ambiguous_router):
    _, replies = chat("cancel fee", "the second one")
    assert replies[1].intent == "faq" and "cancellation fee" in replies[1].text.lower()
    _, replies = chat("cancel fee", "cancel")
    assert replies[1].intent == "cancel" and "order number" in replies[1].text


def test_a_confident_route_is_taken_without_asking(ambiguous_router):
    _, replies = chat("cancel cancel")
    assert replies[0].intent == "cancel"


# ---------------------------------------------------------------- the object of the action

@pytest.mark.parametrize("text", [
    "cancel my subscription", "please cancel the newsletter", "I want to cancel my membership",
    "cancel my user profile", "refund the fee on my card",
])
def test_an_order_action_on_another_object_is_not_an_order_action(text):
    assert route_intent("cancel", "cancel_order", text) == "info"


@pytest.mark.parametrize("first", [
    "I'd like to close my user account, can you help?",
    "how do I stop getting your newsletter",
    "help me cancel my profile",
    "I want to write a review of my purchase experience",
    "I don't need my membership anymore and I want to cancel it",  # the object is in the other clause
    "can you tell me more abuot your shipping",  # "abuot" is "about", not "abort"
])
def test_no_order_is_written_when_the_request_is_not_about_an_order(first):
    agent, replies = chat(first, "ORD-10006", "yes")
    assert not any(name in WRITES for name in tool_names(replies)), [r.text for r in replies]
    assert agent.end_state()["orders"] == [] and agent.end_state()["refunds"] == []


def test_an_order_cancellation_still_works_end_to_end():
    agent, replies = chat("I need to cancel an order", "ORD-10006", "yes")
    assert tool_names(replies).count("cancel_order") == 1
    assert agent.end_state()["orders"][0]["status"] == "cancelled"


# ---------------------------------------------------------------- FAQ topics

@pytest.mark.parametrize("question,faq_id", [
    ("is there any charge if I cancel my purchase?", "cancellation-fee"),
    ("what forms of payment are accepted", "payment-methods"),
    ("what shipping methods can I pick from", "delivery-options"),
    ("where can i download the bill for my purchase", "invoice"),
    ("how much time does delivery usually take", "shipping-times"),
])
def test_faq_retrieval_answers_the_asked_topic(question, faq_id):
    ranked = rank_faq(question, open_store().faq_entries())
    assert ranked[0][1]["faq_id"] == faq_id


@pytest.mark.parametrize("question", [
    "can you recommend a good restaurant nearby?",
    "what is the population of Brazil",
    "tell me about the history of the Roman empire",
])
def test_faq_says_it_has_no_answer_rather_than_another_topic(question):
    agent = SupportAgent(session_id="t", customer_email=ANA)
    from reference_agent.tools import call_tool

    result = call_tool(agent.conv.tool_ctx, "lookup_faq", {"question": question})
    assert result["matches"] == []


# ---------------------------------------------------------------- typo repair

@pytest.mark.parametrize("text,not_intent", [
    ("I'd like to leave a review about your company", "complaint"),
    ("I was talking to your colleague yesterday", "track_order"),
    ("the retina display is great", "return"),
])
def test_typo_repair_never_changes_a_dictionary_word(text, not_intent):
    analysis = analyze(text)
    assert not_intent not in analysis.intents and not analysis.scores.get(not_intent)


def test_a_typo_an_ordinary_word_explains_as_well_is_not_read_as_an_action():
    analysis = analyze("please tell me abuot the options")  # "about" fits as well as "abort"
    assert "cancel" not in analysis.intents and not analysis.scores.get("cancel")


@pytest.mark.parametrize("text,intent", [("cancle my ordr", "cancel"), ("i wnat a refnud", "refund")])
def test_typo_repair_still_fixes_misspellings(text, intent):
    assert analyze(text).top == intent


# ---------------------------------------------------------------- held-out Bitext rows

@pytest.mark.slow
def test_routing_of_held_out_bitext_rows():
    if not (BITEXT / "customer_service_train.csv").is_file():
        pytest.skip(f"{BITEXT}/customer_service_train.csv is absent: the shared Bitext data is needed")
    pytest.importorskip("sklearn", reason="scikit-learn is a training extra: pip install -e '.[train]'")
    from sklearn.model_selection import StratifiedKFold

    from reference_agent.training.evaluate import is_correct
    from reference_agent.training.train_router import (
        build_artifact,
        load_bitext,
        load_lexicon,
        load_suite_phrasings,
        seen_words,
        train,
    )

    rows = load_bitext(BITEXT)
    train_idx, test_idx = next(StratifiedKFold(5, shuffle=True, random_state=1).split(
        [r.text for r in rows], [r.label for r in rows]))
    examples = [*(rows[i] for i in train_idx), *load_suite_phrasings(), *load_lexicon()]
    model = train(examples)
    held_out = [rows[i] for i in random.Random(3).sample(list(test_idx), 500)]
    with use_router(Router(build_artifact(model, known_words=sorted(load_router().known_words),
                                          seen=seen_words(examples)))):
        correct = 0
        for example in held_out:
            agent = SupportAgent(session_id="t", customer_email=ANA)
            correct += is_correct(example.label, agent.reply(example.text))
    assert correct / len(held_out) >= 0.95
