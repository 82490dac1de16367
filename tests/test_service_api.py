"""The reference agent's HTTP service: every endpoint, the SSE stream, bad requests, isolation."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from _service_client import FRONT_END_KEY, TokenJar, service_client
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_agent.service import create_app, to_protocol_reply

ANA = "ana.silva@example.com"
BEN = "ben.carter@example.com"


@pytest.fixture()
def client():
    with service_client(create_app(max_sessions=50, identity_key=FRONT_END_KEY)) as c:
        yield c


def post(client: TestClient, sid: str, message: str, **extra: Any):
    body = {"message": message, "turn": 1, "channel": "web", "customer": {"email": ANA}, **extra}
    return client.post(f"/v1/sessions/{sid}/messages", json=body)


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        events.append((name, json.loads("\n".join(data))))
    return events


# -- happy paths ---------------------------------------------------------------------------


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_message_json_reply_has_protocol_shape(client):
    r = post(client, "s1", "Where is my order ORD-10001?")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    reply = r.json()
    assert set(reply) >= {"content", "tool_calls", "handoff", "usage", "end_conversation", "metadata"}
    assert isinstance(reply["content"], str) and reply["content"]
    calls = reply["tool_calls"]
    assert [c["name"] for c in calls] == ["check_order_status"]
    assert calls[0]["arguments"] == {"order_id": "ORD-10001"}
    assert calls[0]["result"]["status"] == "shipped"
    assert "ORD-10001" in reply["content"]
    assert reply["handoff"] is None


def test_sse_stream_sends_tokens_then_one_reply(client):
    r = post(client, "s-sse", "Where is my order ORD-10001?", stream=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [n for n, _ in events]
    assert names[-1] == "reply" and names.count("reply") == 1
    assert names[0] == "token" and set(names[:-1]) == {"token"}
    streamed = "".join(d["text"] for n, d in events if n == "token")
    reply = events[-1][1]
    assert reply["content"]
    # The tokens spell out the reply (whitespace may differ at the edges).
    assert " ".join(streamed.split()) == " ".join(reply["content"].split())
    assert reply["tool_calls"][0]["name"] == "check_order_status"


def test_accept_header_selects_streaming(client):
    r = client.post(
        "/v1/sessions/s-acc/messages",
        json={"message": "How long does shipping take?"},
        headers={"Accept": "text/event-stream"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert parse_sse(r.text)[-1][0] == "reply"


def test_state_reports_what_the_conversation_changed(client):
    sid = "s-cancel"
    post(client, sid, "Please cancel order ORD-10006")
    r = client.get(f"/v1/sessions/{sid}/state")
    assert r.status_code == 200
    before = r.json()["end_state"]
    assert not any(o.get("status") == "cancelled" for o in before.get("orders", []))
    post(client, sid, "yes")
    after = client.get(f"/v1/sessions/{sid}/state").json()["end_state"]
    assert {"order_id": "ORD-10006", "status": "cancelled"}.items() <= next(
        o for o in after["orders"] if o["order_id"] == "ORD-10006"
    ).items()


def test_sessions_are_isolated(client):
    # Session A cancels ORD-10006; session B (same customer) still sees it pending.
    post(client, "iso-a", "Please cancel order ORD-10006")
    post(client, "iso-a", "yes")
    a = client.get("/v1/sessions/iso-a/state").json()["end_state"]
    assert any(o["order_id"] == "ORD-10006" and o["status"] == "cancelled" for o in a["orders"])
    r = post(client, "iso-b", "What is the status of ORD-10006?")
    assert r.json()["tool_calls"][0]["result"]["status"] == "pending"
    b = client.get("/v1/sessions/iso-b/state").json()["end_state"]
    assert not any(o.get("order_id") == "ORD-10006" for o in b.get("orders", []))


def test_session_identity_is_per_session(client):
    # Ben's session cannot read Ana's order; Ana's session can.
    r = client.post(
        "/v1/sessions/ben/messages",
        json={"message": "Where is ORD-10001?", "customer": {"email": BEN}},
    ).json()
    assert r["tool_calls"][0]["result"].get("error") == "not_your_order" or r["tool_calls"][0]["error"]
    ok = post(client, "ana", "Where is ORD-10001?").json()
    assert ok["tool_calls"][0]["result"]["status"] == "shipped"


def test_delete_session(client):
    post(client, "gone", "hello")
    assert client.delete("/v1/sessions/gone").json() == {"status": "deleted"}
    assert client.get("/v1/sessions/gone/state").status_code == 404
    r = client.delete("/v1/sessions/gone")
    assert r.status_code == 404 and "unknown session" in r.json()["error"]


def test_feedback_is_stored_in_the_sessions_feedback_table(client):
    token = post(client, "fb", "How long does shipping take?").headers["Session-Token"]
    r = client.post("/v1/sessions/fb/feedback", json={"rating": "down", "comment": "too vague"})
    assert r.status_code == 201
    assert r.json()["status"] == "stored"
    r = client.post("/v1/sessions/fb/feedback", json={"rating": "up"})
    assert r.status_code == 201
    agent = client.app.state.pool.get("fb", token).agent
    rows = agent.store.all("SELECT session_id, rating, comment FROM feedback ORDER BY rowid")
    assert [(r["session_id"], r["rating"], r["comment"] or "") for r in rows] == [
        ("fb", "down", "too vague"),
        ("fb", "up", ""),
    ]


def test_chat_page_and_assets(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/static/chat.js" in r.text and "script-src 'self'" in r.headers["content-security-policy"]
    assert "https://" not in r.text  # self-contained: no CDN
    for name, kind in (("chat.js", "javascript"), ("chat.css", "text/css")):
        a = client.get(f"/static/{name}")
        assert a.status_code == 200 and kind in a.headers["content-type"]
    # The renderer never assigns untrusted text to innerHTML.
    assert ".innerHTML =" not in client.get("/static/chat.js").text


# -- bad requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b"[1, 2]", 422, "JSON object"),
        (b'"hello"', 422, "JSON object"),
        (b"{}", 422, "'message' is required"),
        (b'{"message": 42}', 422, "'message' must be a string"),
        (b'{"message": null}', 422, "'message' must be a string"),
        (b'{"message": "   "}', 422, "must not be empty"),
        (b'{"message": "hi", "channel": "fax"}', 422, "unknown channel"),
        (b'{"message": "hi", "channel": 3}', 422, "'channel' must be a string"),
        (b'{"message": "hi", "stream": "yes"}', 422, "'stream' must be a boolean"),
        (b'{"message": "hi", "turn": "one"}', 422, "'turn'"),
        (b'{"message": "hi", "customer": "ana"}', 422, "'customer' must be an object"),
        (b'{"message": "hi", "customer": {"email": 7}}', 422, "customer.email"),
        (b'{"message": "hi", "initial_state": [1]}', 422, "'initial_state'"),
        (b"[" * 60000, 400, "nested too deeply"),
        (b'{"message": "hi", "initial_state": {"x": NaN}}', 400, "NaN is not a JSON value"),
        (b'{"message": "hi \\ud800 there"}', 422, "not valid Unicode"),
        (b'{"message": "hi", "customer": {"email": "a@b.c\\nX-Injected: 1"}}', 422, "not an email"),
    ],
)
def test_bad_message_bodies_get_clear_4xx(client, body, status, needle):
    r = client.post("/v1/sessions/bad/messages", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err and "\n" not in err
    # A refused request never creates a session.
    assert "bad" not in client.app.state.pool


def test_oversized_body_is_413(client):
    big = json.dumps({"message": "x" * (70 * 1024)})
    r = client.post("/v1/sessions/big/messages", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]


def test_oversized_body_without_content_length_is_413(client):
    def chunks():
        for _ in range(80):
            yield b"x" * 1024

    r = client.post("/v1/sessions/big/messages", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_long_message_inside_body_limit_is_413():
    with service_client(create_app(max_body_bytes=64 * 1024, identity_key=FRONT_END_KEY)) as c:
        r = c.post("/v1/sessions/long/messages", json={"message": "a" * 9000})
    assert r.status_code == 413 and "longer than" in r.json()["error"]


@pytest.mark.parametrize("sid", ["has space", "..", "-leading", "x" * 201, "semi;colon"])
def test_bad_session_ids(client, sid):
    r = client.post(f"/v1/sessions/{sid}/messages", json={"message": "hi"})
    assert r.status_code in (400, 404)
    assert "error" in r.json()


def test_unknown_session_state_and_feedback_are_401_without_a_token_and_404_with_one(client):
    r = client.get("/v1/sessions/nobody/state")
    assert r.status_code == 401 and "Session-Token header is required" in r.json()["error"]
    r = client.post("/v1/sessions/nobody/feedback", json={"rating": "up"})
    assert r.status_code == 401
    r = client.get("/v1/sessions/nobody/state", headers={"Session-Token": "made-up"})
    assert r.status_code == 404 and r.json() == {"error": "unknown session 'nobody' or wrong session token"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"rating": "meh"}, "'rating'"),
        ({"comment": "no rating"}, "'rating'"),
        ({"rating": "up", "comment": 5}, "'comment' must be a string"),
    ],
)
def test_bad_feedback(client, body, needle):
    post(client, "fbad", "hello")
    r = client.post("/v1/sessions/fbad/feedback", json=body)
    assert r.status_code == 422 and needle in r.json()["error"]


def test_unknown_routes_and_wrong_methods_are_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"].startswith("no such endpoint")
    r = client.get("/static/../service.py")
    assert r.status_code == 404
    r = client.get("/v1/sessions/x/messages")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]
    r = client.put("/healthz")
    assert r.status_code == 405 and r.headers["content-type"].startswith("application/json")


# -- sessions: eviction and agent failures (a stand-in agent makes these observable) --------


@dataclass
class _Reply:
    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    handoff: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    end_conversation: bool = False
    intent: str | None = None
    messages: list[str] = field(default_factory=list)


class _CountingAgent:
    made: list[str] = []

    def __init__(self, *, session_id: str, channel: str = "web", **_: Any) -> None:
        self.session_id, self.channel, self.n = session_id, channel, 0
        _CountingAgent.made.append(session_id)

    def reply(self, message: str, *, on_token=None) -> _Reply:
        if message == "boom":
            raise RuntimeError("kaboom")
        self.n += 1
        if on_token:
            on_token(f"{self.channel} ")
            on_token(str(self.n))
        return _Reply(f"{self.channel} {self.n}")

    def end_state(self) -> dict[str, Any]:
        return {"turns": self.n}


def test_a_full_session_table_refuses_new_sessions_and_keeps_the_live_ones():
    with service_client(create_app(max_sessions=3, agent_factory=_CountingAgent, identity_key=FRONT_END_KEY)) as c:
        for sid in ["a", "b", "c"]:
            c.post(f"/v1/sessions/{sid}/messages", json={"message": "hi"})
        full = c.post("/v1/sessions/d/messages", json={"message": "hi"})
        assert full.status_code == 503 and "limit of 3 live sessions" in full.json()["error"]
        assert 1 <= int(full.headers["Retry-After"]) <= 3600
        pool = c.app.state.pool
        assert len(pool) == 3 and "d" not in pool and pool.refused >= 1
        assert c.post("/v1/sessions/b/messages", json={"message": "hi again"}).json()["content"] == "web 2"
        assert c.delete("/v1/sessions/a").status_code == 200  # room again
        assert c.post("/v1/sessions/d/messages", json={"message": "hi"}).status_code == 200


def test_channel_is_fixed_per_session_and_turns_accumulate():
    with service_client(create_app(agent_factory=_CountingAgent, identity_key=FRONT_END_KEY)) as c:
        assert c.post("/v1/sessions/v/messages", json={"message": "hi", "channel": "voice"}).json()[
            "content"
        ] == "voice 1"
        assert c.post("/v1/sessions/v/messages", json={"message": "hi"}).json()["content"] == "voice 2"


def test_agent_failure_is_a_500_json_error_and_an_sse_error_event():
    with service_client(create_app(agent_factory=_CountingAgent, identity_key=FRONT_END_KEY)) as c:
        r = c.post("/v1/sessions/f/messages", json={"message": "boom"})
        assert r.status_code == 500 and "kaboom" in r.json()["error"]
        r = c.post("/v1/sessions/f/messages", json={"message": "boom", "stream": True})
        assert r.status_code == 200
        events = parse_sse(r.text)
        assert events == [("error", {"message": "agent error: RuntimeError: kaboom"})]
        # The session survives its agent's failure.
        assert c.post("/v1/sessions/f/messages", json={"message": "ok"}).json()["content"] == "web 1"


@pytest.mark.parametrize("shared", [False, True])
def test_long_term_profiles_are_per_session_unless_shared(shared):
    chloe = {"email": "chloe.nguyen@example.com"}  # no profile in the fixtures
    with service_client(create_app(shared_profiles=shared, identity_key=FRONT_END_KEY)) as c:
        c.post("/v1/sessions/visit-1/messages", json={"message": "Where is ORD-10032?", "customer": chloe})
        hello = c.post("/v1/sessions/visit-2/messages", json={"message": "Hello!", "customer": chloe}).json()
    assert ("welcome back" in hello["content"].lower()) is shared


def test_log_file_gets_one_redacted_json_line_per_turn(tmp_path):
    log = tmp_path / "turns.jsonl"
    with service_client(create_app(log_file=log, identity_key=FRONT_END_KEY)) as c:
        c.post("/v1/sessions/l1/messages", json={"message": "Where is ORD-10001?", "customer": {"email": ANA}})
        c.post("/v1/sessions/l2/messages", json={"message": "my card is 4111 1111 1111 1111, hi"})
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["session"] for x in lines] == ["l1", "l2"]
    assert lines[0]["intent"] == "track_order"
    assert "4111 1111 1111 1111" not in log.read_text()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_bodies = st.one_of(
    _json,
    st.fixed_dictionaries(
        {"message": st.one_of(st.text(max_size=300), _json)},
        optional={
            "channel": st.one_of(st.sampled_from(["web", "whatsapp", "slack", "voice"]), _json),
            "customer": st.one_of(st.fixed_dictionaries({"email": st.sampled_from([ANA, BEN, "x@y.z"])}), _json),
            "stream": st.one_of(st.booleans(), _json),
            "turn": _json,
        },
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
def test_no_request_body_causes_a_server_error(client, body):
    r = client.post("/v1/sessions/fuzz/messages", json=body)
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == {"error"}
    elif r.headers["content-type"].startswith("text/event-stream"):
        assert parse_sse(r.text)[-1][0] == "reply"
    else:
        assert isinstance(r.json()["content"], str)


def test_agent_that_cannot_start_is_a_json_500():
    def broken(**_: Any) -> Any:
        raise RuntimeError("no model configured")

    with service_client(create_app(agent_factory=broken, identity_key=FRONT_END_KEY)) as c:
        r = c.post("/v1/sessions/x/messages", json={"message": "hi"})
    assert r.status_code == 500
    assert r.json() == {"error": "agent could not start: RuntimeError: no model configured"}


def test_idle_sessions_expire():
    import time

    with service_client(create_app(idle_timeout_s=0.2, agent_factory=_CountingAgent, identity_key=FRONT_END_KEY)) as c:
        c.post("/v1/sessions/old/messages", json={"message": "hi"})
        time.sleep(0.3)
        c.post("/v1/sessions/new/messages", json={"message": "hi"})  # creating a session sweeps idle ones
        assert c.get("/v1/sessions/old/state").status_code == 404
        assert c.get("/v1/sessions/new/state").json() == {"end_state": {"turns": 1}}
        assert c.app.state.pool.evicted == 1


class _SlowAgent(_CountingAgent):
    overlaps = 0  # replies of one session that ran at once (must stay 0)
    in_flight = 0  # replies of all sessions running now
    peak = 0
    lock = threading.Lock()

    def reply(self, message: str, *, on_token=None) -> _Reply:
        import time

        lock = _SlowAgent.lock
        # Two replies of the SAME session at once would be a race on its dialog state.
        self.busy = getattr(self, "busy", 0) + 1
        if self.busy > 1:
            _SlowAgent.overlaps += 1
        with lock:
            _SlowAgent.in_flight += 1
            _SlowAgent.peak = max(_SlowAgent.peak, _SlowAgent.in_flight)
        time.sleep(0.3)
        with lock:
            _SlowAgent.in_flight -= 1
        self.busy -= 1
        return super().reply(message, on_token=on_token)


def test_one_session_answers_in_order_while_others_run_concurrently():
    import asyncio

    import httpx
    from _service_server import serve

    async def go(base: str) -> list[str]:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            TokenJar().install(client)
            await client.post("/v1/sessions/one/messages", json={"message": "first"})  # the session and its token
            same = [client.post("/v1/sessions/one/messages", json={"message": f"same {i}"}) for i in range(3)]
            others = [client.post(f"/v1/sessions/o{i}/messages", json={"message": "other"}) for i in range(3)]
            replies = await asyncio.gather(*same, *others)
            return [r.json()["content"] for r in replies]

    _SlowAgent.peak = _SlowAgent.in_flight = 0
    with serve(agent_factory=_SlowAgent) as (_app, base):
        contents = asyncio.run(go(base))
    assert sorted(contents[:3]) == ["web 2", "web 3", "web 4"]  # one session: strictly one at a time
    assert _SlowAgent.overlaps == 0
    # Other sessions ran beside the busy one (counted by the agents, not timed: no flake under load).
    assert _SlowAgent.peak >= 2


def test_state_reports_the_sessions_redacted_analytics_lines(client):
    post(client, "an", "Refund $20 for ORD-10002 to my card 4111 1111 1111 1111 please")
    lines = client.get("/v1/sessions/an/state").json()["end_state"]["analytics"]
    assert len(lines) == 1 and lines[0]["turn"] == 1 and "card" in lines[0]["pii"]
    assert "4111" not in lines[0]["message"] and "ORD-10002" in lines[0]["message"]
    # Only this session's lines.
    post(client, "an2", "hello")
    assert len(client.get("/v1/sessions/an/state").json()["end_state"]["analytics"]) == 1


def test_reply_usage_carries_only_the_protocols_fields():
    # The LLM engine's usage also names the model and counts its calls; the protocol's usage
    # object takes three fields, and evalkit's HTTP adapter refuses a reply with more.
    @dataclass
    class _Resp:
        text: str = "hi"
        usage: dict[str, Any] = field(default_factory=lambda: {
            "prompt_tokens": 12, "completion_tokens": 3, "cost_usd": None, "model": "scripted", "model_calls": 1})

    assert to_protocol_reply(_Resp())["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "cost_usd": None}
    assert to_protocol_reply(_Resp(usage={}))["usage"] is None
