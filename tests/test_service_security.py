"""The reference agent's HTTP service, attacked from another user's seat (issue 13).

Each test replays one attack that worked before the fix: a claimed email showed a
stranger's orders and address; a session id alone read, continued or deleted someone
else's session; ``text/plain`` and form posts were processed (CSRF) and any ``Host`` was
served (DNS rebinding); a flood of new sessions evicted a live one mid-cancellation; and
with shared profiles a fake "Ana" rewrote the real one's profile. ``docs/robustness.md``
lists the promises these tests hold the service to.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from _http_helpers import send_json
from _service_client import FRONT_END_KEY, service_client
from _service_server import serve

from evalkit.agents.base import SessionInfo, TurnContext
from evalkit.agents.http import HttpAgentProvider
from evalkit.agents.session import end_state, respond
from reference_agent.service import create_app

ANA = {"email": "ana.silva@example.com"}
ANA_ADDRESS = "405 Oak Ave"
ANA_TRACKING = "1ZHFE865U215DEZ1CT"


def _stranger(app: Any) -> Any:
    """A client with no identity key and no token jar: it sends exactly what a test says."""
    return service_client(app, front_end=False)


def _say(client: Any, sid: str, message: str, token: str | None = None, **body: Any) -> httpx.Response:
    headers = {"Session-Token": token} if token else {}
    return client.post(f"/v1/sessions/{sid}/messages", json={"message": message, **body}, headers=headers)


def _seen(reply: httpx.Response) -> str:
    """Everything a reply shows: the text and every tool result."""
    return json.dumps(reply.json())


# -- a scripted model is for a trusted test harness only --------------------------------------


def test_only_a_caller_holding_the_identity_key_may_script_the_model():
    script = {"model_script": [{"say": "Refund approved for everyone!"}]}
    with _stranger(create_app(identity_key=FRONT_END_KEY)) as c:
        r = _say(c, "scripted", "hi", initial_state=script)
        assert r.status_code == 403 and "initial_state.model_script" in r.json()["error"]
    with service_client(create_app(identity_key=FRONT_END_KEY)) as c:
        r = _say(c, "scripted", "hi", customer=ANA, initial_state=script)
        assert r.status_code == 200 and r.json()["content"] == "Refund approved for everyone!"
        bad = _say(c, "bad-script", "hi", customer=ANA, initial_state={"model_script": [{"sey": "x"}]})
        assert bad.status_code == 422
        assert bad.json()["error"] == "initial_state.model_script[0]: unknown key 'sey' (use say, call or calls)"


# -- identity: an email is a claim, an order id + its postcode is proof ----------------------


def test_a_claimed_email_shows_no_order_address_or_name_until_the_order_is_proved():
    with _stranger(create_app(identity_key=FRONT_END_KEY)) as c:
        first = _say(c, "claim", "Where is my order ORD-10001? What address does it ship to?", customer=ANA)
        assert first.status_code == 200
        token = first.headers["Session-Token"]
        shown = _seen(first)
        assert ANA_ADDRESS not in shown and ANA_TRACKING not in shown and "Ana" not in shown
        assert first.json()["tool_calls"] == []  # nothing was looked up for a mere claim
        assert "ZIP code" in first.json()["content"]
        # A wrong postcode (and a list of guesses in one answer) proves nothing and says nothing.
        for guess in ("90210", "97201 97202 97203"):
            wrong = _say(c, "claim", guess, token)
            assert ANA_ADDRESS not in _seen(wrong) and ANA_TRACKING not in _seen(wrong)
        # The right postcode for that order is proof: now the order is shown.
        ok = _say(c, "claim", "97201", token)
        assert ANA_TRACKING in ok.json()["content"]
        assert ok.json()["tool_calls"][0]["result"]["shipping_address"].startswith(ANA_ADDRESS)


def test_an_email_typed_in_the_chat_is_only_a_claim_too():
    with _stranger(create_app()) as c:
        r = _say(c, "typed", "hi, my email is ana.silva@example.com")
        token = r.headers["Session-Token"]
        assert "Ana" not in r.json()["content"]
        r = _say(c, "typed", "cancel order ORD-10006", token)
        assert r.json()["tool_calls"] == [] and "ZIP code" in r.json()["content"]
        # Another customer's postcode does not unlock Ana's order.
        r = _say(c, "typed", "73301", token)
        assert r.json()["tool_calls"] == []


def test_guessing_postcodes_stops_after_three_tries():
    with _stranger(create_app()) as c:
        token = _say(c, "guess", "Where is ORD-10001?", customer=ANA).headers["Session-Token"]
        replies = [_say(c, "guess", z, token).json() for z in ("10001", "10002", "10003", "97201")]
    assert replies[2]["handoff"] is not None  # the third wrong answer goes to a human
    assert all(ANA_TRACKING not in json.dumps(r) for r in replies)  # the right one, late, shows nothing


def test_a_front_end_with_the_identity_key_vouches_for_its_customer():
    with service_client(create_app(identity_key=FRONT_END_KEY)) as c:
        r = _say(c, "vouched", "Where is my order ORD-10001?", customer=ANA)
        assert ANA_TRACKING in r.json()["content"]
        basic = httpx.BasicAuth("shop", FRONT_END_KEY).auth_flow(httpx.Request("GET", "http://x")).__next__()
        r = c.post("/v1/sessions/vouched-basic/messages", json={"message": "Where is ORD-10001?", "customer": ANA},
                   headers={"Authorization": basic.headers["Authorization"]})
        assert ANA_TRACKING in r.json()["content"]
        # A wrong key is refused outright (a misconfigured front end is told, not demoted).
        r = c.post("/v1/sessions/wrong-key/messages", json={"message": "hi", "customer": ANA},
                   headers={"Authorization": "Bearer not-the-key"})
        assert r.status_code == 401 and "identity key" in r.json()["error"]
    # No key configured: nobody can vouch.
    with service_client(create_app()) as c:
        r = _say(c, "nokey", "Where is ORD-10001?", customer=ANA)
        assert r.status_code == 401


# -- sessions: the id is a label, the token is the key --------------------------------------


def test_another_sessions_id_alone_reads_continues_or_deletes_nothing():
    app = create_app(identity_key=FRONT_END_KEY)
    with service_client(app) as victim, _stranger(app) as attacker:
        r = _say(victim, "victim-1", "Please cancel order ORD-10006", customer=ANA)
        assert "Shall I go ahead" in r.json()["content"]
        # Reading, rating or deleting it without its token: 401; with a guessed token: 404,
        # word for word what an id nobody uses gets.
        for sid in ("victim-1", "nobody-uses-this"):
            assert attacker.get(f"/v1/sessions/{sid}/state").status_code == 401
            assert attacker.delete(f"/v1/sessions/{sid}").status_code == 401
            assert attacker.post(f"/v1/sessions/{sid}/feedback", json={"rating": "down"}).status_code == 401
        guessed = {"Session-Token": "x" * 43}
        answers = [attacker.get(f"/v1/sessions/{sid}/state", headers=guessed) for sid in ("victim-1", "nobody")]
        assert [a.status_code for a in answers] == [404, 404]
        assert answers[0].json()["error"].replace("victim-1", "ID") == answers[1].json()["error"].replace("nobody", "ID")
        assert attacker.delete("/v1/sessions/victim-1", headers=guessed).status_code == 404
        # Posting "yes" to the id starts the attacker's own session; the victim's pending
        # cancellation is not confirmed by it.
        hijack = _say(attacker, "victim-1", "yes")
        assert hijack.status_code == 200 and "cancelled" not in hijack.json()["content"]
        assert hijack.headers["Session-Token"] != r.headers["Session-Token"]
        state = victim.get("/v1/sessions/victim-1/state").json()["end_state"]
        assert not any(o.get("status") == "cancelled" for o in state["orders"])
        done = _say(victim, "victim-1", "yes")
        assert "has been cancelled" in done.json()["content"]


def test_session_tokens_are_long_random_and_unique():
    with _stranger(create_app()) as c:
        tokens = {_say(c, f"t{i}", "hello").headers["Session-Token"] for i in range(20)}
    assert len(tokens) == 20 and all(len(t) >= 40 for t in tokens)


# -- cross-site requests and DNS rebinding ---------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     None],
)
def test_only_json_bodies_are_read(content_type):
    body = json.dumps({"message": "Where is ORD-10001?", "customer": ANA}).encode()
    with service_client(create_app(identity_key=FRONT_END_KEY)) as c:
        headers = {"Content-Type": content_type} if content_type else {}
        r = c.post("/v1/sessions/csrf/messages", content=body, headers=headers)
        assert r.status_code == 415 and "application/json" in r.json()["error"]
        assert "csrf" not in c.app.state.pool
        token = _say(c, "csrf-fb", "hello").headers["Session-Token"]
        r = c.post("/v1/sessions/csrf-fb/feedback", content=b'{"rating": "down"}',
                   headers={**headers, "Session-Token": token})
        assert r.status_code == 415
        ok = c.post("/v1/sessions/csrf-ok/messages", content=body,
                    headers={"Content-Type": "application/json; charset=utf-8"})
        assert ok.status_code == 200


@pytest.mark.parametrize(("host", "status"), [
    ("evil.example", 400), ("evil.example:8000", 400), ("127.0.0.1.nip.io", 400),
    ("localhost:8000", 200), ("127.0.0.1", 200), ("[::1]:8000", 200),
])
def test_only_allowed_host_names_are_served(host, status):
    with _stranger(create_app()) as c:
        assert c.get("/healthz", headers={"Host": host}).status_code == status
        r = c.post("/v1/sessions/h/messages", json={"message": "hi"}, headers={"Host": host})
        assert r.status_code == status


def test_the_host_allow_list_is_configurable():
    with _stranger(create_app(allowed_hosts=["support.acme.example"])) as c:
        assert c.get("/healthz", headers={"Host": "support.acme.example"}).status_code == 200
        assert c.get("/healthz").status_code == 400  # localhost is no longer on the list


# -- a full session table ------------------------------------------------------------------


def test_a_flood_of_new_sessions_never_drops_a_live_one_mid_cancellation():
    app = create_app(max_sessions=5, identity_key=FRONT_END_KEY)
    with service_client(app) as victim, _stranger(app) as flood:
        assert "Shall I go ahead" in _say(victim, "victim", "Please cancel order ORD-10006", customer=ANA).text
        answers = [_say(flood, f"flood-{i}", "hello") for i in range(8)]
        assert [a.status_code for a in answers] == [200] * 4 + [503] * 4
        assert all(int(a.headers["Retry-After"]) >= 1 for a in answers[4:])
        # The victim's "yes" still reaches the pending question.
        done = _say(victim, "victim", "yes")
        assert "has been cancelled" in done.json()["content"]
        assert app.state.pool.evicted == 0


# -- shared profiles follow verified identity only -----------------------------------------


def test_a_fake_customer_cannot_read_or_change_a_shared_profile():
    app = create_app(shared_profiles=True, identity_key=FRONT_END_KEY)
    with _stranger(app) as fake, service_client(app) as real:
        r = _say(fake, "fake-ana", "Hola", customer=ANA)
        assert "Ana" not in r.json()["content"]  # no "welcome back, Ana", no past issues
        token = r.headers["Session-Token"]
        for line in ("¿Dónde está mi pedido ORD-10001? gracias", "no sé el código postal, por favor ayúdame",
                     "necesito ayuda con mi pedido por favor"):
            _say(fake, "fake-ana", line, token)
        greeting = _say(real, "real-ana", "Hello", customer=ANA).json()["content"]
    assert greeting.startswith("Welcome back, Ana!")  # her own language (English), not the fake's Spanish


# -- the HTTP adapter carries a server's session token (a protocol mechanism) -------------


class _TokenAgent(BaseHTTPRequestHandler):
    """A protocol server that issues a token on the first message and requires it after."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _check(self) -> bool:
        token = self.headers.get("Session-Token")
        self.seen.append((self.command, token))
        if token != "tok-1":
            send_json(self, 401, {"error": "session token required"})
            return False
        return True

    def do_GET(self) -> None:
        if self.path.endswith("/healthz"):
            send_json(self, 200, {"status": "ok"})
        elif self._check():
            send_json(self, 200, {"end_state": {"turns": 2}})

    def do_DELETE(self) -> None:
        if self._check():
            send_json(self, 200, {"status": "deleted"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        first = self.headers.get("Session-Token") is None and not self.seen
        if first:
            self.seen.append(("POST", None))
        elif not self._check():
            return
        send_json(self, 200, {"content": "ok"}, headers={"Session-Token": "tok-1"})


@pytest.fixture()
def token_server() -> Iterator[str]:
    _TokenAgent.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenAgent)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_http_adapter_sends_the_session_token_back_on_every_later_call(token_server):
    info = SessionInfo(session_id="run-s-0", scenario_id="s")

    async def go() -> tuple[str, dict[str, Any] | None]:
        provider = HttpAgentProvider(token_server, stream=False)
        try:
            session = provider.new_session(info)
            await respond(session, TurnContext(session=info, message="one", turn=1))
            reply = await respond(session, TurnContext(session=info, message="two", turn=2))
            state = await end_state(session)
            await session.aclose()
            return reply.content, state
        finally:
            await provider.aclose()

    content, state = asyncio.run(go())
    assert content == "ok" and state == {"turns": 2}
    assert _TokenAgent.seen == [("POST", None), ("POST", "tok-1"), ("GET", "tok-1"), ("DELETE", "tok-1")]


def test_evalkit_drives_a_verifying_service_over_http_with_the_key_in_the_url():
    """`--agent http://user:KEY@host`: httpx sends the key as Basic credentials, the adapter the token."""
    with serve(identity_key=FRONT_END_KEY) as (app, base):
        info = SessionInfo(session_id="url-key-0", scenario_id="s", customer=ANA)

        async def go() -> tuple[str, dict[str, Any] | None]:
            provider = HttpAgentProvider(base.replace("http://", f"http://evalkit:{FRONT_END_KEY}@"))
            try:
                session = provider.new_session(info)
                await respond(session, TurnContext(session=info, message="Please cancel ORD-10006", turn=1))
                await respond(session, TurnContext(session=info, message="yes", turn=2))
                state = await end_state(session)
                await session.aclose()
                return session.token or "", state
            finally:
                await provider.aclose()

        token, state = asyncio.run(go())
        assert len(app.state.pool) == 0  # deleted with its token
    assert token and state is not None
    assert any(o["order_id"] == "ORD-10006" and o["status"] == "cancelled" for o in state["orders"])

