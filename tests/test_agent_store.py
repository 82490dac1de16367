"""Store, fixtures and per-conversation isolation of the reference agent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from reference_agent.agent import SupportAgent
from reference_agent.store import FIXTURES_DIR, open_store

ROOT = Path(__file__).resolve().parents[1]


def test_fixtures_cover_every_status_and_edge():
    orders = json.loads((FIXTURES_DIR / "orders.json").read_text())
    customers = json.loads((FIXTURES_DIR / "customers.json").read_text())
    faq = json.loads((FIXTURES_DIR / "faq.json").read_text())
    assert len(customers) >= 40 and len(orders) >= 200 and len(faq) >= 20
    statuses = Counter(o["status"] for o in orders)
    for status in ("pending", "processing", "shipped", "delivered", "cancelled", "lost_in_transit",
                   "returned", "refunded"):
        assert statuses[status] >= 3, status
    store_date = date.fromisoformat(json.loads((FIXTURES_DIR / "meta.json").read_text())["store_date"])
    delivered_days = {(store_date - date.fromisoformat(o["delivered_at"])).days
                      for o in orders if o["status"] == "delivered"}
    assert {29, 30, 31} <= delivered_days
    totals = [o["total"] for o in orders]
    assert any(t > 500 for t in totals) and any(t < 500 for t in totals)
    assert any("ignore your rules" in o["note"] for o in orders)
    assert len({c["email"] for c in customers}) == len(customers)
    assert len({o["order_id"] for o in orders}) == len(orders)


def test_generator_is_deterministic(tmp_path):
    script = ROOT / "datasets" / "store" / "generate.py"
    copy = tmp_path / "generate.py"
    copy.write_text(script.read_text())
    subprocess.run([sys.executable, str(copy)], check=True, capture_output=True)
    for name in ("customers.json", "orders.json", "faq.json", "tickets.json", "profiles.json", "meta.json"):
        assert (tmp_path / name).read_text() == (FIXTURES_DIR / name).read_text(), name


def test_store_reads_fixture_rows():
    store = open_store()
    order = store.get_order("ORD-10004")
    assert order["status"] == "delivered"
    assert order["items"][0]["name"] == "Bluetooth Speaker"
    assert date.fromisoformat(order["delivered_at"]) == store.store_date - timedelta(days=30)
    assert store.customer_by_email("ANA.SILVA@example.com")["customer_id"] == "CUST-0001"
    assert store.get_order("ORD-99999") is None


def test_each_copy_is_isolated():
    a, b = open_store(), open_store()
    a.update_order("ORD-10006", status="cancelled")
    a.create_ticket("x", "y")
    assert b.get_order("ORD-10006")["status"] == "pending"
    assert b.end_state()["tickets"] == []
    assert open_store().get_order("ORD-10006")["status"] == "pending"


def test_end_state_has_only_changed_rows():
    store = open_store()
    assert store.end_state() == {"orders": [], "returns": [], "refunds": [], "tickets": []}
    store.update_order("ORD-10006", status="cancelled")
    store.create_refund("ORD-10002", "CUST-0001", 10)
    state = store.end_state()
    assert [o["order_id"] for o in state["orders"]] == ["ORD-10006"]
    assert state["orders"][0]["status"] == "cancelled"
    assert state["refunds"][0]["refund_id"] == "REF-00001" and state["refunds"][0]["amount"] == 10
    assert state["returns"] == [] and state["tickets"] == []


def test_agents_do_not_share_state():
    one = SupportAgent(session_id="a", customer_email="ana.silva@example.com")
    two = SupportAgent(session_id="b", customer_email="ana.silva@example.com")
    one.reply("cancel ORD-10006")
    one.reply("yes")
    assert one.end_state()["orders"][0]["status"] == "cancelled"
    assert two.end_state()["orders"] == []
    two.reply("cancel ORD-10006")
    assert "Shall I go ahead and cancel order ORD-10006? (yes/no)" in two.reply("cancel ORD-10006").text


def test_reset_gives_a_fresh_store():
    agent = SupportAgent(session_id="a", customer_email="ana.silva@example.com")
    agent.reply("cancel ORD-10006")
    agent.reply("yes")
    agent.reset()
    assert agent.end_state()["orders"] == []
    assert "What is your order number?" in agent.reply("where is my order").text


def test_open_store_to_file(tmp_path):
    store = open_store(tmp_path / "acme.db")
    store.close()
    import sqlite3

    conn = sqlite3.connect(tmp_path / "acme.db")
    assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] >= 200


def test_agent_uses_a_given_store_and_keeps_it_on_reset():
    store = open_store()
    agent = SupportAgent(store, session_id="s", customer_email="ana.silva@example.com")
    agent.reply("cancel ORD-10006")
    agent.reply("yes")
    assert store.get_order("ORD-10006")["status"] == "cancelled"
    agent.reset()
    assert agent.store is store  # the caller owns it: reset does not swap it


def test_reply_to_dict_is_the_http_reply_object():
    agent = SupportAgent(session_id="s", customer_email="ana.silva@example.com")
    d = agent.reply("where is ORD-10001").to_dict()
    assert set(d) == {"content", "tool_calls", "handoff", "usage", "end_conversation", "metadata"}
    assert d["metadata"]["intent"] == "track_order" and d["tool_calls"][0]["name"] == "check_order_status"
    json.dumps(d)
