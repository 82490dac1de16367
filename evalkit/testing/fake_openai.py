"""A fake OpenAI-compatible server on 127.0.0.1, for offline tests (evalkit's and yours).

It is a real HTTP server (stdlib :class:`http.server.ThreadingHTTPServer` in a background
thread), so the code under test runs its real HTTP client, retries, timeouts and streaming
exactly as against a hosted model. It answers ``POST /v1/chat/completions`` deterministically:

1. an injected failure, if the call number is listed in ``fail_on`` or the seeded
   ``failure_rate`` draw says so (429 with ``Retry-After``, 500, hang, dropped connection,
   invalid JSON, ...);
2. else the next entry of ``script`` (replies served in order), if any is left;
3. else the first matching :class:`Rule`;
4. else a default: for evalkit's own simulated user (``customer_turn``) a plausible
   customer line built from the persona in its prompt (the goal, then the facts the agent
   asks for, then a goodbye claiming the goal, which evalkit checks); for a judge's answer
   (a ``reason``, maybe a ``score``) a reason saying no model judged and a middling-good
   score; for
   any other ``response_format`` a JSON instance of the schema; otherwise an echo of the
   last user message.

From a shell it serves until stopped (Ctrl-C), printing its URL::

    python -m evalkit.testing.fake_openai --port 8765

Every request is recorded (``server.requests``) for assertions. ``GET /v1/models`` lists
``models``. Typical use::

    from evalkit.testing.fake_openai import FakeOpenAIServer, Reply, Rule

    with FakeOpenAIServer(rules=[Rule(Reply("Your order shipped."), contains="order")]) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="test")
        ...
        assert srv.requests[0].body["model"] == "fake-model"
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from evalkit.core._plural import plural

__all__ = [
    "FAILURE_KINDS",
    "Failure",
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "Rule",
    "example_for_schema",
]

FAILURE_KINDS = ("429", "500", "502", "503", "400", "401", "404", "hang", "drop", "invalid_json")


@dataclass
class Reply:
    """A successful answer: text, tool calls and/or a JSON object (sent as the content).

    ``tool_calls`` items are ``{"name": ..., "arguments": {...}}`` (an ``id`` is added).
    ``usage`` overrides the (deterministic, ~4 characters a token) token counts.
    """

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    json: Any = None
    usage: tuple[int, int] | None = None
    delay_s: float = 0.0
    finish_reason: str | None = None
    refusal: str | None = None  # sent as the message's ``refusal`` (content null), as OpenAI does

    def text(self) -> str | None:
        if self.json is not None:
            return json.dumps(self.json)
        return self.content


@dataclass
class Failure:
    """An injected failure: one of :data:`FAILURE_KINDS` (an HTTP status as a string, ``hang``
    = never answer until the client gives up, ``drop`` = close the connection without a
    response, ``invalid_json`` = a 200 whose body is not JSON)."""

    kind: str
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {self.kind!r}; one of {', '.join(FAILURE_KINDS)}")


Answer = Reply | Failure
Responder = Answer | str | Callable[["RecordedRequest"], "Answer | str | dict[str, Any]"]


@dataclass
class RecordedRequest:
    """One request the server received."""

    n: int  # 1-based number among chat-completion requests (0 for other paths)
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def last_message(self) -> dict[str, Any]:
        return self.messages[-1] if self.messages else {}

    @property
    def system(self) -> str:
        return "\n".join(_text(m) for m in self.messages if m.get("role") in ("system", "developer"))

    @property
    def last_user(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return _text(m)
        return ""

    @property
    def schema(self) -> dict[str, Any] | None:
        rf = self.body.get("response_format") or {}
        if rf.get("type") == "json_schema":
            return (rf.get("json_schema") or {}).get("schema") or {}
        return None

    @property
    def schema_name(self) -> str | None:
        rf = self.body.get("response_format") or {}
        return (rf.get("json_schema") or {}).get("name") if rf.get("type") == "json_schema" else None

    @property
    def tool_names(self) -> list[str]:
        return [(t.get("function") or {}).get("name", "") for t in self.body.get("tools") or []]

    def all_text(self) -> str:
        return "\n".join(_text(m) for m in self.messages)


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


@dataclass
class Rule:
    """Answer with ``reply`` when every given condition holds.

    ``contains``: regex searched in the last message (any role); ``user_contains``: in the
    last user message; ``system_contains``: in the system prompt; ``schema``: the
    ``response_format`` schema name; ``tools``: the request offers tools (or not);
    ``after_tool``: the last message is a tool result; ``model``; ``match``: any predicate
    on the :class:`RecordedRequest`. ``times`` bounds how often the rule fires.
    ``reply`` may be a :class:`Reply`, a :class:`Failure`, a string, or a callable taking
    the request and returning one of those or a JSON-able dict (sent as JSON content).
    """

    reply: Responder
    contains: str | None = None
    user_contains: str | None = None
    system_contains: str | None = None
    schema: str | None = None
    tools: bool | None = None
    after_tool: bool | None = None
    model: str | None = None
    match: Callable[[RecordedRequest], bool] | None = None
    times: int | None = None
    fired: int = field(default=0, init=False)

    def matches(self, req: RecordedRequest) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        checks: list[bool] = []
        if self.contains is not None:
            checks.append(re.search(self.contains, _text(req.last_message), re.I | re.S) is not None)
        if self.user_contains is not None:
            checks.append(re.search(self.user_contains, req.last_user, re.I | re.S) is not None)
        if self.system_contains is not None:
            checks.append(re.search(self.system_contains, req.system, re.I | re.S) is not None)
        if self.schema is not None:
            checks.append(req.schema_name == self.schema)
        if self.tools is not None:
            checks.append(bool(req.body.get("tools")) == self.tools)
        if self.after_tool is not None:
            checks.append((req.last_message.get("role") == "tool") == self.after_tool)
        if self.model is not None:
            checks.append(req.body.get("model") == self.model)
        if self.match is not None:
            checks.append(bool(self.match(req)))
        return all(checks)


def example_for_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A deterministic JSON value valid for ``schema`` (enough of JSON Schema for answers:
    objects, arrays, enums, const, anyOf/oneOf, ``$ref`` into ``$defs``, bounds)."""
    root = schema if root is None else root
    if "$ref" in schema:
        ref = str(schema["$ref"]).rsplit("/", 1)[-1]
        defs = root.get("$defs") or root.get("definitions") or {}
        return example_for_schema(defs.get(ref, {}), root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_for_schema(options[0], root)
    typ = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ == "object":
        props = schema.get("properties") or {}
        return {k: example_for_schema(v, root) for k, v in props.items()}
    if typ == "array":
        n = int(schema.get("minItems", 0))
        return [example_for_schema(schema.get("items") or {}, root) for _ in range(n)]
    if typ in ("integer", "number"):
        value = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return int(value) if typ == "integer" else float(value)
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    return "fake"


# -- plausible default answers ----------------------------------------------------------------
# Enough to watch evalkit's LLM user and judges work end to end without a model: they read
# the prompts evalkit itself renders (evalkit/simulators/prompts/user.j2), nothing else.

_FACT = re.compile(r"^- ([A-Za-z0-9_ ]+): (.+)$", re.M)
_GOAL = re.compile(r"^## What you want\n(.+?)\n", re.M)
_TRANSFERRED = "transferred you to a human"
_CLAIM_REJECTED = "(Note for the customer:"
# Words in a fact's name too common to show the agent asked for that fact.
_GENERIC = {"id", "number", "no", "the", "my", "your", "code", "name"}
_CLOSING = re.compile(r"\b(anything else|something else|any other (question|thing)s?)\b", re.I)
# A yes/no question opens with an auxiliary verb ("Shall I cancel it?"), an open one with a
# question word ("How much would you like refunded?").
_YES_NO = re.compile(r"^(shall|should|would|do|does|can|could|may|is|are|will|want|ok|okay)\b", re.I)
FAKE_REASON = "evalkit's fake model server answered this; no model judged the conversation."


def _first_person(goal: str) -> str:
    goal = goal.strip().rstrip(".")
    goal = re.sub(r"^you (want|need|would like) to ", "", goal, flags=re.I)
    swapped = re.sub(r"\byour\b", "my", re.sub(r"\byou\b", "I", goal, flags=re.I), flags=re.I)
    return swapped[:1].lower() + swapped[1:]


def _alnum(text: str) -> str:
    """Letters and digits only, lower case: "O R D 1 0 0 3 7" (a voice reply) is ORD-10037."""
    return re.sub(r"[\W_]+", "", text).lower()


def _questions(text: str) -> list[str]:
    """The sentences of ``text`` that end with a question mark (links removed first)."""
    text = re.sub(r"\(?https?://\S+", " ", text)
    # A sentence ends at . ! ? followed by a space ("$15.00" is not an end).
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [q.strip().lower() for q in sentences if q.strip().endswith("?")]


def customer_turn(req: RecordedRequest) -> dict[str, str]:
    """A plausible next customer message for evalkit's LLM user (``{"message", "end"}``).

    Opens with the persona's goal; gives a fact when a question of the agent names it (as
    the prompt lists it); agrees when asked to confirm; restates the goal to any other
    question; says goodbye with ``goal_met`` once the agent answers without a question or
    asks if there is anything else (evalkit accepts the claim only if the goal's checks
    pass, and then this asks the agent to finish the job). Gives up after 8 messages.
    """
    system = req.system
    said = [m for m in req.messages if m.get("role") == "assistant"]
    agent = req.last_user
    known = system.split("## What you know", 1)[-1].split("##", 1)[0]
    facts = [(k.strip(), v.strip()) for k, v in _FACT.findall(known)]
    goal_match = _GOAL.search(system)
    goal = _first_person(goal_match.group(1)) if goal_match else "get some help with my order"
    if _TRANSFERRED in agent:
        return {"message": "Okay, I will wait for your colleague. Thank you.", "end": "transferred"}
    if agent.startswith(_CLAIM_REJECTED):
        return {"message": "Sorry, is that actually done now? Please go ahead and complete it.", "end": "continue"}
    if len(said) >= 8:
        return {"message": "This is taking too long, I will try again later.", "end": "gave_up"}
    if not said or agent.startswith("(The support chat is open"):
        return {"message": f"Hi, I'd like to {goal}.", "end": "continue"}
    questions = _questions(agent)
    goodbye = {"message": "No, that's all I needed. Thanks for your help!", "end": "goal_met"}
    if not questions or any(_CLOSING.search(q) for q in questions):
        return goodbye
    for key, value in facts:
        words = [w for w in re.split(r"[_\s]+", key.lower()) if w and w not in _GENERIC]
        # The agent asks for it: a question names it, and the agent does not already have it.
        if words and _alnum(value) not in _alnum(agent) and any(w in q for q in questions for w in words):
            return {"message": f"Sure, the {key.replace('_', ' ')} is {value}.", "end": "continue"}
    if any(_YES_NO.search(q) for q in questions):
        return {"message": "Yes, please go ahead.", "end": "continue"}
    earlier = " ".join(_text(m) for m in said)
    untold = [(k, v) for k, v in facts if v not in earlier]
    if untold:
        key, value = untold[0]
        return {"message": f"The {key.replace('_', ' ')} is {value}, if that helps.", "end": "continue"}
    return {"message": f"I just want to {goal}.", "end": "continue"}


def judge_answer(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A judge's answer that is valid for ``schema`` and plainly not a judgement: a score (if
    asked for) three quarters up the scale, 4 on 1-5, and a reason that says a fake model
    gave it."""
    value = example_for_schema(schema)
    score = (schema.get("properties") or {}).get("score") or {}
    lo, hi = score.get("minimum"), score.get("maximum")
    if isinstance(lo, int | float) and isinstance(hi, int | float):
        value["score"] = round(lo + 0.75 * (hi - lo))
    value["reason"] = FAKE_REASON
    return value


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
        pass

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send_raw(status, body, "application/json", headers)

    def _send_raw(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        fake = self.server.fake
        fake._record(self, {}, chat=False)
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "evalkit"} for m in fake.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            fake._record(self, body, chat=False)
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        req = fake._record(self, body, chat=True)
        answer = fake._answer(req)
        if fake.latency_s:
            time.sleep(fake.latency_s)
        if isinstance(answer, Failure):
            self._fail(answer)
            return
        if answer.delay_s:
            time.sleep(answer.delay_s)
        if body.get("stream"):
            self._stream(req, answer)
        else:
            self._send_json(200, fake._completion(req, answer))

    def _fail(self, f: Failure) -> None:
        fake = self.server.fake
        if f.kind == "hang":
            fake._stop.wait(fake.hang_s)
            self._drop()
            return
        if f.kind == "drop":
            self._drop()
            return
        if f.kind == "invalid_json":
            self._send_raw(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
            return
        status = int(f.kind)
        headers: dict[str, str] = {}
        if status == 429:
            headers["Retry-After"] = f"{f.retry_after if f.retry_after is not None else fake.retry_after:g}"
        messages = {429: "Rate limit reached", 400: "Bad request", 401: "Incorrect API key provided",
                    404: "The model does not exist or you do not have access to it"}
        self._send_json(
            status,
            {"error": {"message": messages.get(status, "The server had an error"), "type": "fake_failure",
                       "code": str(status)}},
            headers,
        )

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stream(self, req: RecordedRequest, answer: Reply) -> None:
        fake = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        cid, created, model = f"chatcmpl-fake{req.n}", 0, req.body.get("model", "fake-model")

        def send(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
            chunk: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                                     "model": model, "choices": choices}
            if usage is not None:
                chunk["usage"] = usage
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        try:
            send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            text = answer.text() or ""
            step = max(1, fake.stream_chunk_chars)
            for i in range(0, len(text), step):
                if fake.stream_delay_s:
                    time.sleep(fake.stream_delay_s)
                send([{"index": 0, "delta": {"content": text[i : i + step]}, "finish_reason": None}])
            for i, call in enumerate(fake._tool_calls(req, answer)):
                send([{"index": 0, "delta": {"tool_calls": [{
                    "index": i, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]},
                }]}, "finish_reason": None}])
            send([{"index": 0, "delta": {}, "finish_reason": fake._finish(answer)}])
            if (req.body.get("stream_options") or {}).get("include_usage"):
                send([], fake._usage(req, answer))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The stdlib default backlog is 5: with dozens of concurrent clients, connections beyond
    # it wait for a SYN retry (~1 s) and show up as spurious timeouts in the code under test.
    request_queue_size = 1024
    fake: FakeOpenAIServer


class FakeOpenAIServer:
    """A deterministic OpenAI-compatible HTTP server (use as a context manager).

    ``script``: answers served in order (each a :class:`Reply`, :class:`Failure`, string or
    callable), then ``rules`` (first match wins), then the default. ``fail_on``: call
    numbers (1-based) that fail, e.g. ``{1: "429", 2: Failure("500")}``. ``failure_rate``
    with ``failure_kinds`` and ``seed``: random failures, reproducible. ``latency_s``: delay
    before every answer. ``retry_after``: seconds sent with 429s. ``hang_s``: how long a
    ``hang`` lasts (the server stops hanging when it shuts down). ``host`` / ``port``: where
    it listens (default 127.0.0.1 and a free port).
    """

    def __init__(
        self,
        *,
        rules: Iterable[Rule] = (),
        script: Sequence[Responder] = (),
        fail_on: Mapping[int, Failure | str] | None = None,
        failure_rate: float = 0.0,
        failure_kinds: Sequence[str] = ("429", "500"),
        seed: int = 0,
        latency_s: float = 0.0,
        retry_after: float = 0.05,
        hang_s: float = 30.0,
        stream_chunk_chars: int = 8,
        stream_delay_s: float = 0.0,
        models: Sequence[str] = ("fake-model",),
        default: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.rules: list[Rule] = list(rules)
        self.script: list[Responder] = list(script)
        self.fail_on = {int(k): v if isinstance(v, Failure) else Failure(str(v)) for k, v in (fail_on or {}).items()}
        self.failure_rate = failure_rate
        self.failure_kinds = [Failure(k) for k in failure_kinds]
        self.latency_s = latency_s
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.stream_chunk_chars = stream_chunk_chars
        self.stream_delay_s = stream_delay_s
        self.models = list(models)
        self.default = default
        self.host = host
        self.requested_port = port
        self.requests: list[RecordedRequest] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._n = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        self._stop.clear()
        self._httpd = _Server((self.host, self.requested_port), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: give this to the openai client or ``--base-url``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    # -- configuration helpers ---------------------------------------------------------------

    def add_rule(self, reply: Responder, **conditions: Any) -> Rule:
        """Append a :class:`Rule` (conditions as keyword arguments) and return it."""
        rule = Rule(reply, **conditions)
        self.rules.append(rule)
        return rule

    def enqueue(self, *answers: Responder) -> None:
        """Append answers to the script (served in order before any rule)."""
        with self._lock:
            self.script.extend(answers)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.n > 0]

    def settings(self, model: str = "fake-model", **options: Any) -> Any:
        """:class:`evalkit.llm.ModelSettings` pointing at this server (fast retries for tests)."""
        from evalkit.llm.settings import ModelSettings

        defaults: dict[str, Any] = {"api_key": "sk-fake-test-key", "timeout": 5.0, "backoff_s": 0.01,
                                    "max_backoff_s": 0.05}
        return ModelSettings(model=model, base_url=self.base_url, **{**defaults, **options})

    # -- answering (called from handler threads) ---------------------------------------------

    def _record(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], *, chat: bool) -> RecordedRequest:
        with self._lock:
            if chat:
                self._n += 1
            req = RecordedRequest(
                n=self._n if chat else 0,
                method=handler.command,
                path=handler.path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                body=body,
                at=time.monotonic(),
            )
            self.requests.append(req)
        return req

    def _answer(self, req: RecordedRequest) -> Answer:
        with self._lock:
            if req.n in self.fail_on:
                f = self.fail_on[req.n]
                return f if isinstance(f, Failure) else Failure(str(f))
            if self.failure_rate and self._rng.random() < self.failure_rate:
                return self._rng.choice(self.failure_kinds)
            responder: Responder | None = self.script.pop(0) if self.script else None
            if responder is None:
                for rule in self.rules:
                    if rule.matches(req):
                        rule.fired += 1
                        responder = rule.reply
                        break
        if responder is None:
            responder = self.default if self.default is not None else self._default
        return self._resolve(responder, req)

    def _resolve(self, responder: Responder, req: RecordedRequest) -> Answer:
        value: Any = responder(req) if callable(responder) and not isinstance(responder, Reply | Failure) else responder
        if isinstance(value, Reply | Failure):
            return value
        if isinstance(value, str):
            return Reply(content=value)
        if isinstance(value, dict | list):
            return Reply(json=value)
        raise TypeError(f"fake server responder returned {type(value).__name__}")

    @staticmethod
    def _default(req: RecordedRequest) -> Reply:
        schema = req.schema
        if schema is not None:
            props = schema.get("properties") or {}
            if req.schema_name == "customer_turn" or {"message", "end"} <= set(props):
                return Reply(json=customer_turn(req))
            if "reason" in props:  # a judge: rubric (score + reason), pairwise (winner + reason), ...
                return Reply(json=judge_answer(schema))
            return Reply(json=example_for_schema(schema))
        return Reply(content=f"fake reply to: {req.last_user}"[:500])

    def _tool_calls(self, req: RecordedRequest, answer: Reply) -> list[dict[str, Any]]:
        out = []
        for i, call in enumerate(answer.tool_calls or []):
            args = call.get("arguments", {})
            out.append({
                "id": call.get("id") or f"call_{req.n}_{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": args if isinstance(args, str) else json.dumps(args)},
            })
        return out

    @staticmethod
    def _finish(answer: Reply) -> str:
        return answer.finish_reason or ("tool_calls" if answer.tool_calls else "stop")

    def _usage(self, req: RecordedRequest, answer: Reply) -> dict[str, int]:
        if answer.usage is not None:
            p, c = answer.usage
        else:
            p = _tokens(json.dumps(req.messages))
            c = _tokens((answer.text() or "") + json.dumps(answer.tool_calls or []))
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def _completion(self, req: RecordedRequest, answer: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text()}
        if answer.refusal is not None:
            message.update(content=None, refusal=answer.refusal)
        calls = self._tool_calls(req, answer)
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-fake{req.n}",
            "object": "chat.completion",
            "created": 0,
            "model": req.body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish(answer),
                         "logprobs": None}],
            "usage": self._usage(req, answer),
        }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evalkit.testing.fake_openai``: serve until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(
        prog="python -m evalkit.testing.fake_openai",
        description="A fake OpenAI-compatible server for trying evalkit's LLM user and judges "
        "offline: plausible customer lines and judge answers, no model, no key.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help="a model name GET /v1/models lists (repeatable; default fake-model)")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(host=args.host, port=args.port, latency_s=args.latency_ms / 1000,
                              models=args.models or ("fake-model",))
    try:
        server.start()
    except OSError as exc:
        print(f"fake_openai: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    # SIGTERM (kill, a CI job ending) stops it as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"fake OpenAI-compatible server on {server.base_url} (models: {', '.join(server.models)}); "
          "Ctrl-C stops it", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print(f"stopped after {plural(len(server.chat_requests), 'chat request')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
