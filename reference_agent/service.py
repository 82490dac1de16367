"""The reference agent as an HTTP service speaking evalkit's HTTP agent protocol.

``create_app()`` builds a FastAPI application; ``python -m reference_agent serve`` runs it
with uvicorn. Endpoints (see ``docs/http-protocol.md`` and ``docs/service.md``):

- ``POST /v1/sessions/{id}/messages``: one user message; JSON reply, or Server-Sent Events
  (``token`` events, then one ``reply`` event) with ``"stream": true`` or
  ``Accept: text/event-stream``.
- ``GET /v1/sessions/{id}/state``: ``{"end_state": {...}}`` (what the conversation changed).
- ``POST /v1/sessions/{id}/feedback``: thumbs up/down with a comment, stored in the
  session's SQLite ``feedback`` table.
- ``DELETE /v1/sessions/{id}``: forget a session.
- ``GET /healthz``: ``{"status": "ok"}``.
- ``GET /``: the web chat page (``reference_agent/static/``).

Every session id gets its own :class:`SupportAgent` with its own fresh copy of the store;
sessions are kept in a bounded LRU (idle ones are evicted first). Bad input always gets a
``4xx`` with ``{"error": "one line"}``, never a ``500``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "CHANNELS",
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_CHARS",
    "ServiceConfig",
    "SessionPool",
    "create_app",
    "to_protocol_reply",
]

log = logging.getLogger("reference_agent.service")

CHANNELS = ("web", "whatsapp", "slack", "voice")
MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 8000
MAX_COMMENT_CHARS = 2000
# evalkit session ids look like "<run>-<scenario>-<trial>"; allow what ids and URLs carry
# safely and nothing that could be a path trick.
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,199}$")

_STATIC_DIR = Path(__file__).resolve().parent / "static"
# The chat page: file name -> media type. Only these names are ever served.
_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
}
# The page loads only its own files and talks only to this origin.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class BadRequest(Exception):
    """A request the service refuses; rendered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ServiceConfig:
    """How the service builds agents and what it accepts."""

    engine: str = "rules"
    faults: tuple[str, ...] = ()
    max_sessions: int = 1000
    # Sessions idle longer than this are dropped (checked whenever a session is created).
    idle_timeout_s: float = 3600.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_message_chars: int = MAX_MESSAGE_CHARS


@dataclass
class _Session:
    agent: Any
    channel: str
    customer_email: str | None
    created: float
    last_used: float
    turns: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The session's analytics lines (stable fields only), reported with its end state.
    analytics: list[dict[str, Any]] | None = None


AgentFactory = Callable[..., Any]

# Analytics fields reported in the end state: no clock time or latency, so end states of
# identical conversations are identical (the same fields as the evalkit adapter reports).
_ANALYTICS_FIELDS = ("turn", "intent", "outcome", "pii", "message", "reply")


def _session_recorder(records: list[dict[str, Any]], forward: Any) -> Any:
    """A TurnLogger that keeps each line's stable fields in ``records`` and passes the full
    line on to ``forward`` (the --log-file sink, ``REFERENCE_AGENT_ANALYTICS``, or nothing)."""
    import io

    from reference_agent.analytics import TurnLogger

    class _Recorder(TurnLogger):
        def emit(self, record: Any) -> str:
            records.append({name: getattr(record, name, None) for name in _ANALYTICS_FIELDS})
            return forward.emit(record) if forward is not None else ""

    return _Recorder(io.StringIO())


def _default_factory(**kwargs: Any) -> Any:
    # Imported lazily so `python -m reference_agent --help` stays fast.
    from reference_agent.agent import SupportAgent

    return SupportAgent(**kwargs)


class SessionPool:
    """Session id -> live agent, bounded (LRU) and expiring idle sessions."""

    def __init__(self, config: ServiceConfig, factory: AgentFactory, *, shared: dict[str, Any] | None = None) -> None:
        self.config = config
        self._factory = factory
        # Objects every session's agent shares (the analytics sink, long-term profiles);
        # passed only to factories that accept them.
        self._shared = dict(shared or {})
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._mutex = threading.Lock()
        self._accepts = _accepted_kwargs(factory)
        # The built-in agent's analytics lines are kept per session and reported in its end
        # state (as the evalkit adapter does), so a suite can check what the agent logs.
        self._records_analytics = factory is _default_factory
        self.evicted = 0
        self.created = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def get(self, session_id: str) -> _Session | None:
        with self._mutex:
            sess = self._sessions.get(session_id)
            if sess is not None:
                sess.last_used = time.monotonic()
                self._sessions.move_to_end(session_id)
            return sess

    def get_or_create(
        self,
        session_id: str,
        *,
        channel: str,
        customer_email: str | None,
        initial_state: dict[str, Any] | None,
    ) -> _Session:
        existing = self.get(session_id)
        if existing is not None:
            return existing
        kwargs: dict[str, Any] = {
            "store": None,  # None: the agent opens its own fresh copy of the store
            "session_id": session_id,
            "channel": channel,
            "customer_email": customer_email,
            "engine": self.config.engine,
            "faults": tuple(self.config.faults),
        }
        if initial_state is not None:
            kwargs["initial_state"] = initial_state
        kwargs.update(self._shared)
        records: list[dict[str, Any]] | None = None
        if self._records_analytics:
            from reference_agent.analytics import logger_from_env

            records = []
            kwargs["analytics"] = _session_recorder(records, self._shared.get("analytics") or logger_from_env())
        kwargs = {k: v for k, v in kwargs.items() if k in self._accepts or "**" in self._accepts}
        agent = self._factory(**kwargs)
        now = time.monotonic()
        sess = _Session(agent=agent, channel=channel, customer_email=customer_email, created=now, last_used=now,
                        analytics=records)
        with self._mutex:
            # Another request may have created it meanwhile; keep the first one.
            if session_id in self._sessions:
                _close_agent(agent)
                return self._sessions[session_id]
            self._sessions[session_id] = sess
            self.created += 1
            self._evict_locked(now)
        return sess

    def _evict_locked(self, now: float) -> None:
        cutoff = now - self.config.idle_timeout_s
        for sid in [s for s, v in self._sessions.items() if v.last_used < cutoff and not v.lock.locked()]:
            self._drop_locked(sid)
        # LRU: the least recently used sessions go first; a session mid-turn is skipped.
        while len(self._sessions) > self.config.max_sessions:
            victim = next((s for s, v in self._sessions.items() if not v.lock.locked()), None)
            if victim is None:
                break
            self._drop_locked(victim)

    def _drop_locked(self, session_id: str) -> None:
        sess = self._sessions.pop(session_id, None)
        if sess is not None:
            self.evicted += 1
            _close_agent(sess.agent)

    def delete(self, session_id: str) -> bool:
        with self._mutex:
            sess = self._sessions.pop(session_id, None)
        if sess is None:
            return False
        _close_agent(sess.agent)
        return True

    def clear(self) -> None:
        with self._mutex:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for sess in sessions:
            _close_agent(sess.agent)


def _accepted_kwargs(factory: AgentFactory) -> set[str]:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {"**"}
    names = {p.name for p in params}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names.add("**")
    if factory is _default_factory:
        from reference_agent.agent import SupportAgent

        return _accepted_kwargs(SupportAgent)
    return names


def _close_agent(agent: Any) -> None:
    close = getattr(agent, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001 - closing a dropped session must never fail a request
            log.warning("closing an evicted session failed", exc_info=True)


# -- request parsing ----------------------------------------------------------------------


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, enforcing the size limit while reading."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BadRequest(413, f"request body is larger than {limit} bytes")
        except ValueError:
            raise BadRequest(400, "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest(400, "request body is empty; expected a JSON object")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest(400, "request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest(400, "request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(422, f"request body must be a JSON object, got {_json_type(data)}")
    return data


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and they cannot be echoed back.
    raise BadRequest(400, f"request body is not valid JSON: {name} is not a JSON value")


def _check_text(value: str, key: str) -> str:
    """Refuse strings that cannot be encoded as UTF-8 (lone surrogates from \\ud800 escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(422, f"field '{key}' is not valid Unicode (lone surrogate)") from None
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _optional(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """``data[key]`` checked against one JSON type; absent or null gives ``default``."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = {str: "a string", bool: "a boolean"}.get(kind, kind.__name__)
        raise BadRequest(422, f"field '{key}' must be {expected}, got {_json_type(value)}")
    return value


def _check_session_id(session_id: str) -> None:
    if not _SESSION_ID.match(session_id):
        raise BadRequest(
            400,
            "session id must be 1-200 characters of letters, digits and _ . : @ - (starting with a letter or digit)",
        )


@dataclass(frozen=True)
class _MessageRequest:
    message: str
    channel: str
    customer_email: str | None
    initial_state: dict[str, Any] | None
    stream: bool


def _parse_message(data: dict[str, Any], config: ServiceConfig, wants_sse: bool) -> _MessageRequest:
    if "message" not in data:
        raise BadRequest(422, "field 'message' is required")
    message = data["message"]
    if not isinstance(message, str):
        raise BadRequest(422, f"field 'message' must be a string, got {_json_type(message)}")
    if not message.strip():
        raise BadRequest(422, "field 'message' must not be empty")
    _check_text(message, "message")
    if len(message) > config.max_message_chars:
        raise BadRequest(413, f"field 'message' is longer than {config.max_message_chars} characters")
    turn = data.get("turn")
    if turn is not None and (isinstance(turn, bool) or not isinstance(turn, int) or turn < 0):
        raise BadRequest(422, "field 'turn' must be a non-negative integer")
    channel = _optional(data, "channel", str, "web")
    if channel not in CHANNELS:
        raise BadRequest(422, f"unknown channel '{channel[:40]}' (one of: {', '.join(CHANNELS)})")
    customer = data.get("customer")
    email: str | None = None
    if customer is not None:
        if not isinstance(customer, dict):
            raise BadRequest(422, f"field 'customer' must be an object or null, got {_json_type(customer)}")
        email = customer.get("email")
        if email is not None and not isinstance(email, str):
            raise BadRequest(422, f"field 'customer.email' must be a string, got {_json_type(email)}")
        if isinstance(email, str) and (len(email) > 254 or "@" not in email or "\n" in email):
            raise BadRequest(422, "field 'customer.email' is not an email address")
    initial_state = data.get("initial_state")
    if initial_state is not None and not isinstance(initial_state, dict):
        raise BadRequest(422, f"field 'initial_state' must be an object or null, got {_json_type(initial_state)}")
    stream = _optional(data, "stream", bool, False)
    return _MessageRequest(
        message=message,
        channel=channel,
        customer_email=email,
        initial_state=initial_state,
        stream=stream or wants_sse,
    )


# -- replies --------------------------------------------------------------------------------


def to_protocol_reply(resp: Any) -> dict[str, Any]:
    """An ``AgentResponse`` as the protocol's reply object (``content`` plus extras)."""
    metadata: dict[str, Any] = {}
    intent = getattr(resp, "intent", None)
    if intent is not None:
        metadata["intent"] = intent
    outcome = getattr(resp, "outcome", None)
    if outcome is not None:
        metadata["outcome"] = outcome
    messages = getattr(resp, "messages", None)
    if messages and len(messages) > 1:
        # Only when the channel split the reply (WhatsApp's 4,096-character cap).
        metadata["messages"] = list(messages)
    return {
        "content": getattr(resp, "text", "") or "",
        "tool_calls": [_jsonable(c) for c in (getattr(resp, "tool_calls", None) or [])],
        "handoff": _jsonable(getattr(resp, "handoff", None)),
        "usage": _jsonable(getattr(resp, "usage", None)),
        "end_conversation": bool(getattr(resp, "end_conversation", False)),
        "metadata": _jsonable(metadata),
    }


def _jsonable(value: Any) -> Any:
    # Round-trip through json with a str fallback so dates or Decimals in tool results
    # never break the reply.
    return json.loads(json.dumps(value, default=str))


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


# -- the application ------------------------------------------------------------------------


def create_app(
    *,
    engine: str = "rules",
    faults: Sequence[str] = (),
    max_sessions: int = 1000,
    idle_timeout_s: float = 3600.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    log_file: str | Path | None = None,
    shared_profiles: bool = False,
    agent_factory: AgentFactory | None = None,
) -> FastAPI:
    """Build the service. ``agent_factory`` (default: ``SupportAgent``) makes one agent per
    session; ``log_file`` appends every session's analytics lines (one JSON line per turn);
    ``shared_profiles`` keeps long-term customer profiles across sessions."""
    config = ServiceConfig(
        engine=engine,
        faults=tuple(faults),
        max_sessions=max_sessions,
        idle_timeout_s=idle_timeout_s,
        max_body_bytes=max_body_bytes,
    )
    shared: dict[str, Any] = {}
    if shared_profiles:
        from reference_agent.memory import ProfileStore

        # Long-term customer profiles outlive a session: a customer coming back in a new
        # chat is recognised. Off by default: evaluations need every session to start from
        # the same fixtures whatever ran before it.
        shared["profile_store"] = ProfileStore.open()
    if log_file is not None:
        from reference_agent.analytics import TurnLogger

        shared["analytics"] = TurnLogger(Path(log_file))
    pool = SessionPool(config, agent_factory or _default_factory, shared=shared)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.clear()

    app = FastAPI(
        lifespan=lifespan,
        title="AcmeCorp support agent (evalkit reference agent)",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.pool = pool
    app.state.config = config

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        response = _error(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sessions": len(pool), "engine": config.engine}

    @app.post("/v1/sessions/{session_id}/messages", response_model=None)
    async def post_message(session_id: str, request: Request) -> Response:
        _check_session_id(session_id)
        data = await _read_json(request, config.max_body_bytes)
        wants_sse = "text/event-stream" in request.headers.get("accept", "")
        req = _parse_message(data, config, wants_sse)
        try:
            sess = await asyncio.to_thread(
                pool.get_or_create,
                session_id,
                channel=req.channel,
                customer_email=req.customer_email,
                initial_state=req.initial_state,
            )
        except Exception as exc:  # noqa: BLE001 - the agent failing to start is the agent's failure
            log.exception("agent for session %s could not start", session_id)
            return _error(500, f"agent could not start: {type(exc).__name__}: {exc}")
        if req.stream:
            return StreamingResponse(
                _stream_reply(sess, req.message),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )
        async with sess.lock:
            try:
                resp = await asyncio.to_thread(sess.agent.reply, req.message)
            except Exception as exc:  # noqa: BLE001 - the agent failing is reported, not hidden
                log.exception("agent failed on session %s", session_id)
                return _error(500, f"agent error: {type(exc).__name__}: {exc}")
            sess.turns += 1
        return JSONResponse(to_protocol_reply(resp))

    async def _stream_reply(sess: _Session, message: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def on_token(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("token", text))

        def work() -> None:
            try:
                resp = sess.agent.reply(message, on_token=on_token)
            except Exception as exc:  # noqa: BLE001 - sent to the client as an error event
                log.exception("agent failed while streaming")
                loop.call_soon_threadsafe(queue.put_nowait, ("error", f"{type(exc).__name__}: {exc}"))
            else:
                loop.call_soon_threadsafe(queue.put_nowait, ("reply", resp))

        async with sess.lock:
            task = loop.run_in_executor(None, work)
            try:
                while True:
                    kind, payload = await queue.get()
                    if kind == "token":
                        if payload:
                            yield _sse("token", {"text": payload})
                    elif kind == "error":
                        yield _sse("error", {"message": f"agent error: {payload}"})
                        break
                    else:
                        sess.turns += 1
                        yield _sse("reply", to_protocol_reply(payload))
                        break
            finally:
                # If the client went away mid-stream, let the turn finish before the next one.
                if not task.done():
                    await asyncio.shield(task)

    @app.get("/v1/sessions/{session_id}/state")
    async def get_state(session_id: str) -> JSONResponse:
        _check_session_id(session_id)
        sess = pool.get(session_id)
        if sess is None:
            raise BadRequest(404, f"unknown session '{session_id}'")
        async with sess.lock:
            state = await asyncio.to_thread(sess.agent.end_state)
        if sess.analytics is not None and isinstance(state, dict):
            state = {**state, "analytics": list(sess.analytics)}
        return JSONResponse({"end_state": _jsonable(state)})

    @app.post("/v1/sessions/{session_id}/feedback")
    async def post_feedback(session_id: str, request: Request) -> JSONResponse:
        _check_session_id(session_id)
        data = await _read_json(request, config.max_body_bytes)
        rating = data.get("rating")
        if rating not in ("up", "down"):
            raise BadRequest(422, "field 'rating' must be \"up\" or \"down\"")
        comment = _check_text(_optional(data, "comment", str, ""), "comment")
        if len(comment) > MAX_COMMENT_CHARS:
            raise BadRequest(413, f"field 'comment' is longer than {MAX_COMMENT_CHARS} characters")
        sess = pool.get(session_id)
        if sess is None:
            raise BadRequest(404, f"unknown session '{session_id}'")
        async with sess.lock:
            row = await asyncio.to_thread(_store_feedback, sess.agent, session_id, rating, comment)
        return JSONResponse({"status": "stored", "feedback": _jsonable(row)}, status_code=201)

    @app.delete("/v1/sessions/{session_id}")
    async def delete_session(session_id: str) -> JSONResponse:
        _check_session_id(session_id)
        if not pool.delete(session_id):
            raise BadRequest(404, f"unknown session '{session_id}'")
        return JSONResponse({"status": "deleted"})

    @app.get("/", response_model=None)
    async def index() -> Response:
        return _static_response("index.html")

    @app.get("/static/{name}", response_model=None)
    async def static(name: str) -> Response:
        if name not in _STATIC:
            raise BadRequest(404, f"no such file: /static/{name[:80]}")
        return _static_response(name)

    return app


def _store_feedback(agent: Any, session_id: str, rating: str, comment: str) -> Any:
    record = getattr(agent, "record_feedback", None)
    if callable(record):
        return record(rating, comment)
    store = getattr(agent, "store", None)
    add = getattr(store, "add_feedback", None)
    if callable(add):
        return add(session_id=session_id, rating=rating, comment=comment)
    raise BadRequest(501, "this agent does not store feedback")


def _static_response(name: str) -> Response:
    body = (_STATIC_DIR / name).read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if name == "index.html":
        headers["Content-Security-Policy"] = _CSP
        headers["Referrer-Policy"] = "no-referrer"
    return Response(body, media_type=_STATIC[name], headers=headers)
