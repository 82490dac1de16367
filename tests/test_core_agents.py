"""Agent specs: python factories (sync/async/str/junk, query kwargs, session), the HTTP adapter."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from _http_helpers import send_json

from evalkit.agents import AgentJunk, AgentReply, SessionInfo, TurnContext, load_agent, normalize_reply
from evalkit.agents.http import AgentHTTPError, HttpAgentProvider
from evalkit.agents.loader import SCHEMES
from evalkit.agents.session import end_state, respond
from evalkit.core.errors import AgentSpecError

INFO = SessionInfo(session_id="run-s1-0", scenario_id="s1", customer={"email": "a@b.c"})


def ctx(message: str = "hello", turn: int = 1, **kw: Any) -> TurnContext:
    return TurnContext(session=INFO, message=message, turn=turn, **kw)


# -- python factories (defined here, loaded by spec "test_core_agents:...") ------------

CREATED: list[dict[str, Any]] = []


def make_sync(greeting: str = "hi", times: int = 1, flag: bool = False, session: SessionInfo | None = None):
    CREATED.append({"greeting": greeting, "times": times, "flag": flag, "session": session})

    class Agent:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def respond(self, c: TurnContext) -> str:
            self.seen.append(c.message)
            return f"{greeting * times} ({len(self.seen)})"

        def end_state(self) -> dict[str, Any]:
            return {"seen": list(self.seen)}

    return Agent()


class AsyncAgent:
    async def respond(self, c: TurnContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"content": "async " + c.message, "tool_calls": [{"name": "lookup", "arguments": {"q": 1}}]}


def make_junk():
    class Junk:
        def respond(self, c: TurnContext) -> Any:
            return 12345

    return Junk()


NOT_A_FACTORY = 42


def test_python_spec_sync_factory_fresh_per_conversation() -> None:
    CREATED.clear()
    provider = load_agent("test_core_agents:make_sync?greeting=yo&times=2&flag=true")
    assert provider.spec.startswith("test_core_agents:")
    a1 = provider.new_session(INFO)
    a2 = provider.new_session(INFO)
    r1 = asyncio.run(respond(a1, ctx()))
    r1b = asyncio.run(respond(a1, ctx("again")))
    r2 = asyncio.run(respond(a2, ctx()))
    assert (r1.content, r1b.content, r2.content) == ("yoyo (1)", "yoyo (2)", "yoyo (1)")  # isolated state
    assert CREATED[0] == {"greeting": "yo", "times": 2, "flag": True, "session": INFO}
    assert asyncio.run(end_state(a1)) == {"seen": ["hello", "again"]}


def test_python_spec_async_class_and_mapping_reply() -> None:
    agent = load_agent("test_core_agents:AsyncAgent").new_session(INFO)
    reply = asyncio.run(respond(agent, ctx("x")))
    assert reply.content == "async x" and reply.tool_calls[0].name == "lookup"
    assert asyncio.run(end_state(agent)) is None  # no end_state(): none


def test_junk_replies_are_agent_junk() -> None:
    agent = load_agent("test_core_agents:make_junk").new_session(INFO)
    with pytest.raises(AgentJunk, match="returned int 12345"):
        asyncio.run(respond(agent, ctx()))
    with pytest.raises(AgentJunk, match="reply field 'content'"):
        normalize_reply({"content": ["not", "text"]})
    with pytest.raises(AgentJunk, match="reply field 'surprise'"):
        normalize_reply({"content": "x", "surprise": 1})
    assert normalize_reply("plain").content == "plain"
    assert normalize_reply(AgentReply(content="r")).content == "r"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "no agent given"),
        ("just_a_name", "expected 'module:factory'"),
        ("no_such_module_xyz:make", "no module named 'no_such_module_xyz'"),
        ("test_core_agents:missing", "has no 'missing'"),
        ("test_core_agents:NOT_A_FACTORY", "is int, not a factory"),
        ("test_core_agents:make_sync?nope=1", "cannot call the factory with ['nope']"),
        ("test_core_agents:make_sync?a=1&a=2", "given twice"),
        ("http://", "expected an http(s)://HOST"),
        ("http://localhost:1?x=1", "takes no query"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: str, problem: str) -> None:
    with pytest.raises(AgentSpecError) as info:
        load_agent(spec)
    text = str(info.value)
    assert problem in text and "\n" not in text


def test_scheme_registry_is_lazy_and_reports_missing_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCHEMES.builtin, "fake-scheme", "evalkit_no_such_adapter_module:Provider")
    with pytest.raises(AgentSpecError, match="'fake-scheme:' agent adapter .* is not available"):
        load_agent("fake-scheme:model-x")
    assert "openai-chat" in SCHEMES


def test_testing_doubles_load_by_spec() -> None:
    scripted = load_agent(
        'evalkit.testing.agents:ScriptedAgent?replies=["a", {"tool": "t", "args": {"x": 1}}]'
    )
    agent = scripted.new_session(INFO)
    assert asyncio.run(respond(agent, ctx())).content == "a"
    second = asyncio.run(respond(agent, ctx()))
    assert second.tool_calls[0].name == "t" and second.tool_calls[0].arguments == {"x": 1}
    rules = load_agent(
        'evalkit.testing.agents:ScriptedAgent?rules={"human": {"content": "ok", "handoff": "asked"}}'
    )
    reply = asyncio.run(respond(rules.new_session(INFO), ctx("get me a HUMAN")))
    assert reply.handoff is not None and reply.handoff.reason == "asked"
    stateful = load_agent("evalkit.testing.agents:StatefulAgent").new_session(
        SessionInfo(session_id="s", scenario_id="s", initial_state={"orders": {"ORD-7": "placed"}})
    )
    asyncio.run(respond(stateful, ctx("please cancel ORD-7")))
    assert asyncio.run(end_state(stateful)) == {"orders": {"ORD-7": "cancelled"}, "tickets": []}


# -- HTTP adapter against a local server ------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[tuple[str, str, Any]] = []
    healthy = True

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, None))
        if self.path == "/bot/healthz":
            send_json(self, 200 if self.healthy else 503, {"status": "ok"})
        elif self.path.endswith("/state"):
            if "nostate" in self.path:
                send_json(self, 404, {"error": "no such session"})
            else:
                send_json(self, 200, {"end_state": {"orders": [{"id": "ORD-1", "status": "cancelled"}]}})
        else:
            send_json(self, 404, {"error": "not found"})

    def do_DELETE(self) -> None:
        self.requests.append(("DELETE", self.path, None))
        send_json(self, 404, {"error": "gone"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path, body))
        message = body["message"]
        if message == "boom":
            send_json(self, 500, {"error": "database on fire"})
        elif message == "notjson":
            raw = b"<html>oops</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        elif body.get("stream") and message.startswith("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            events = [("token", {"text": "Your order "}), ("token", {"text": "shipped."})]
            if message == "stream-error":
                events.append(("error", {"message": "model overloaded"}))
            else:
                events.append(
                    (
                        "reply",
                        {
                            "content": "Your order shipped.",
                            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                        },
                    )
                )
            time.sleep(0.05)  # before the first token: TTFT >= 50 ms
            for i, (event, data) in enumerate(events):
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                if i == 0:
                    time.sleep(0.15)  # the rest arrives much later: latency >> TTFT
            self.close_connection = True
        else:
            send_json(self,
                200,
                {
                    "content": f"echo {message}",
                    "handoff": {"ticket_id": "T1", "reason": "r"} if message == "human" else None,
                },
            )


@pytest.fixture()
def server() -> Iterator[str]:
    _Handler.requests = []
    _Handler.healthy = True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/bot"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _first_token_recorder() -> tuple[list[float], Any]:
    marks: list[float] = []
    return marks, lambda: marks.append(time.monotonic()) if not marks else None


def test_http_json_reply_health_end_state_and_delete(server: str) -> None:
    async def go() -> tuple[Any, Any, Any]:
        provider = load_agent(server)
        assert isinstance(provider, HttpAgentProvider)
        await provider.start()
        session = provider.new_session(INFO)
        reply = await respond(session, ctx("human"))
        state = await end_state(session)
        await session.aclose()
        await provider.aclose()
        return reply, state, list(_Handler.requests)

    reply, state, requests = asyncio.run(go())
    assert reply.content == "echo human" and reply.handoff is not None and reply.handoff.ticket_id == "T1"
    assert state == {"orders": [{"id": "ORD-1", "status": "cancelled"}]}
    methods = [(m, p) for m, p, _ in requests]
    assert methods[0] == ("GET", "/bot/healthz")
    assert ("POST", "/bot/v1/sessions/run-s1-0/messages") in methods
    assert ("DELETE", "/bot/v1/sessions/run-s1-0") in methods
    post = next(b for m, _, b in requests if m == "POST")
    assert post == {
        "message": "human",
        "turn": 1,
        "channel": "web",
        "customer": {"email": "a@b.c"},
        "initial_state": None,
        "stream": True,
    }


def test_http_sse_streaming_measures_ttft(server: str) -> None:
    async def go() -> tuple[AgentReply, float, float]:
        provider = HttpAgentProvider(server)
        marks, on_first = _first_token_recorder()
        t0 = time.monotonic()
        reply = await respond(provider.new_session(INFO), ctx("stream", _on_first_token=on_first))
        total = time.monotonic() - t0
        await provider.aclose()
        return reply, marks[0] - t0, total

    reply, ttft, total = asyncio.run(go())
    assert (
        reply.content == "Your order shipped." and reply.usage is not None and reply.usage.total_tokens == 7
    )
    assert 0.04 <= ttft < total - 0.1  # first token well before the end of the stream


def test_http_failures_raise_agent_errors(server: str) -> None:
    async def go(message: str, session: SessionInfo = INFO) -> Exception:
        provider = HttpAgentProvider(server)
        try:
            await respond(provider.new_session(session), ctx(message))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc
        finally:
            await provider.aclose()
        raise AssertionError("expected a failure")

    err = asyncio.run(go("boom"))
    assert isinstance(err, AgentHTTPError) and str(err) == "HTTP 500: database on fire"
    assert "reply is not JSON" in str(asyncio.run(go("notjson")))
    assert str(asyncio.run(go("stream-error"))) == "agent streamed an error: model overloaded"

    async def nostate() -> Any:
        provider = HttpAgentProvider(server)
        try:
            return await end_state(provider.new_session(SessionInfo(session_id="nostate", scenario_id="x")))
        finally:
            await provider.aclose()

    assert asyncio.run(nostate()) is None


def test_http_health_check_failures(server: str) -> None:
    _Handler.healthy = False

    async def check(url: str) -> None:
        provider = HttpAgentProvider(url)
        try:
            await provider.start()
        finally:
            await provider.aclose()

    with pytest.raises(AgentSpecError, match="health check failed: HTTP 503"):
        asyncio.run(check(server))
    with pytest.raises(AgentSpecError, match="health check failed: ConnectError"):
        asyncio.run(check("http://127.0.0.1:9"))


def test_runner_against_http_agent(server: str, tmp_path: Any) -> None:
    from _core_helpers import write

    from evalkit.run.runner import RunConfig, Runner

    write(tmp_path / "s" / "a.yaml", "id: web\nuser: {script: [stream, human]}\n")
    write(tmp_path / "s" / "b.yaml", "id: broken\nuser: {script: [boom]}\n")
    config = RunConfig(
        suite=[tmp_path / "s"], agent=server, out=tmp_path / "r", progress=False, handle_signals=False
    )
    run = Runner(config).run_sync()
    by = {c.transcript.scenario_id: c.transcript for c in run.conversations}
    web = by["web"]
    assert web.outcome.value == "escalated" and web.end_state == {
        "orders": [{"id": "ORD-1", "status": "cancelled"}]
    }
    first = web.agent_turns[0]
    assert (
        first.ttft_ms is not None and first.latency_ms is not None and first.ttft_ms < first.latency_ms - 100
    )
    assert web.agent_turns[1].ttft_ms is None  # a JSON reply has no first token
    assert by["broken"].error == "turn 1: agent raised AgentHTTPError: HTTP 500: database on fire"
    paths = {p for m, p, _ in _Handler.requests if m == "POST"}
    assert f"/bot/v1/sessions/{run.manifest.run_id}-web-0/messages" in paths
    assert sum(1 for m, p, _ in _Handler.requests if p == "/bot/healthz") == 1
