"""One redacted JSON analytics line per turn."""

from __future__ import annotations

import io
import json
import logging

from _agent_helpers import agent

from reference_agent.analytics import TurnLogger


def test_one_redacted_line_per_turn():
    buf = io.StringIO()
    a = agent(analytics=TurnLogger(buf), session_id="sess-1")
    a.reply("my card is 4111 1111 1111 1111, email ana.silva@example.com, phone +1 555 123 4567")
    a.reply("cancel ORD-10006")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["session"] == "sess-1" and first["turn"] == 1 and first["channel"] == "web"
    assert sorted(first["pii"]) == ["card", "email", "phone"]
    raw = buf.getvalue()
    # The whole number, not "4111": a timestamp such as 10:45:55.441118Z contains that.
    assert "4111 1111 1111 1111" not in raw and "4111111111111111" not in raw
    assert "ana.silva@example.com" not in raw and "555 123 4567" not in raw
    assert "[CARD]" in first["message"]
    assert second["intent"] == "cancel" and second["outcome"] == "confirm"
    assert second["tools"] == [{"name": "check_order_status", "error": None}]
    assert second["latency_ms"] >= 0 and second["engine"] == "rules"


def test_file_logger_and_env(tmp_path, monkeypatch):
    path = tmp_path / "turns.jsonl"
    monkeypatch.setenv("REFERENCE_AGENT_ANALYTICS", str(path))
    a = agent()
    a.reply("I want to talk to a human")
    line = json.loads(path.read_text().splitlines()[0])
    assert line["outcome"] == "handoff" and line["handoff"] == "TCK-00021"


def test_logging_logger(caplog):
    log = logging.getLogger("test.analytics")
    with caplog.at_level(logging.INFO, logger="test.analytics"):
        agent(analytics=TurnLogger(log)).reply("hi")
    assert json.loads(caplog.records[0].getMessage())["intent"] == "greeting"


def test_off_by_default(monkeypatch):
    monkeypatch.delenv("REFERENCE_AGENT_ANALYTICS", raising=False)
    assert agent().analytics is None
