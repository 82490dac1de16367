"""Short-term window and long-term customer profiles."""

from __future__ import annotations

from _agent_helpers import agent, chat

from reference_agent.agent import SupportAgent
from reference_agent.memory import ProfileStore, ShortTermMemory, detect_language, detect_style


def test_short_term_window_keeps_last_20_messages():
    mem = ShortTermMemory()
    for i in range(30):
        mem.add("user" if i % 2 == 0 else "agent", f"m{i}")
    assert len(mem.messages) == 20 and mem.messages[0].text == "m10" and mem.total == 30


def test_agent_memory_window_and_redaction():
    a = agent()
    for i in range(15):
        a.reply(f"my email is ana.silva@example.com, note {i}")
    msgs = a.memory.messages
    assert len(msgs) == 20 and a.memory.total == 30
    assert all("@" not in m.text for m in msgs)


def test_order_id_remembered_beyond_many_turns():
    a = agent()
    r = chat(a, "where is ORD-10002?", "how long does shipping take?", "do you accept paypal?",
             "ok, I want to return it", "it's damaged", "yes")
    assert r[-1].tool_calls[0]["arguments"] == {"order_id": "ORD-10002", "reason": "damaged"}


def test_language_and_style_detection():
    assert detect_language(["Hola, ¿dónde está mi pedido? Gracias"]) == "es"
    assert detect_language(["Hallo, wo ist meine Bestellung? Danke"]) == "de"
    assert detect_language(["Bonjour, où est ma commande? Merci"]) == "fr"
    assert detect_language(["where is my order"]) == "en"
    assert detect_style(["status?", "ORD-10001"]) == "concise"
    assert detect_style(["Dear team, I would be grateful for an update. Kind regards"]) == "formal"


def test_returning_customer_profile_is_used_and_updated(tmp_path):
    profiles = ProfileStore.open(tmp_path / "profiles.db")
    first = SupportAgent(session_id="1", customer_email="david.okafor@example.com", profile_store=profiles)
    assert first.reply("hi").text.startswith("Hi David!")
    chat(first, "I want to cancel ORD-10036", "yes")
    saved = profiles.load("CUST-0004")
    assert saved.visits == 1 and "cancel:ORD-10036" in saved.past_issues
    again = SupportAgent(session_id="2", customer_email="david.okafor@example.com", profile_store=profiles)
    text = again.reply("hello").text
    assert text.startswith("Welcome back, David!") and "a cancellation for order ORD-10036" in text
    chat(again, "thanks, bye")
    assert profiles.load("CUST-0004").visits == 2
    # the file persists across processes/instances
    assert ProfileStore.open(tmp_path / "profiles.db").load("CUST-0004").visits == 2


def test_seeded_returning_customer_and_language():
    assert agent("ben.carter@example.com").reply("hi").text.startswith("Welcome back, Ben!")
    profiles = ProfileStore.open()
    agent_es = SupportAgent(session_id="es", customer_email="david.okafor@example.com", profile_store=profiles)
    chat(agent_es, "Hola, quiero saber dónde está mi pedido por favor, gracias")
    assert profiles.load("CUST-0004").language == "es"
    back = SupportAgent(session_id="es2", customer_email="david.okafor@example.com", profile_store=profiles)
    assert back.reply("hola").text.startswith("¡Hola de nuevo, David!")


def test_default_profiles_do_not_leak_between_conversations():
    a = agent("david.okafor@example.com")
    chat(a, "hi", "thanks")
    assert agent("david.okafor@example.com").reply("hi").text.startswith("Hi David!")


def test_concise_profile_gets_shorter_status_replies():
    ben = agent("ben.carter@example.com").reply("status of ORD-10023").text  # Ben's profile: concise
    david = agent("david.okafor@example.com").reply("status of ORD-10038").text  # no profile
    assert "shipped on" in ben and "x " not in ben and "track it" not in ben
    assert "1 x HD Webcam" in david and "track it" in david
