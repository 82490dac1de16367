"""The reference agent as an HTTP service speaking evalkit's HTTP agent protocol.

``create_app()`` builds a FastAPI application; ``python -m reference_agent serve`` runs it
with uvicorn. Endpoints (see ``docs/http-protocol.md`` and ``docs/service.md``):

- ``POST /v1/sessions/{id}/messages``: one user message; JSON reply, or Server-Sent Events
  (``token`` events, then one ``reply`` event) with ``"stream": true`` or
  ``Accept: text/event-stream``. A message without a ``Session-Token`` header starts a new
  session and its reply carries the session's token in the ``Session-Token`` header.
- ``GET /v1/sessions/{id}/state``: ``{"end_state": {...}}`` (what the conversation changed).
- ``POST /v1/sessions/{id}/feedback``: thumbs up/down with a comment, stored in the
  session's SQLite ``feedback`` table.
- ``DELETE /v1/sessions/{id}``: forget a session.
- ``GET /healthz``: ``{"status": "ok"}``.
- ``GET /``: the web chat page (``reference_agent/static/``).

Every session gets its own :class:`SupportAgent` with its own fresh copy of the store.
Bad input always gets a ``4xx`` with ``{"error": "one line"}``, never a ``500``.

Security (``docs/robustness.md``, "The reference agent's HTTP service"):

- a session is reached only with its token (``secrets.token_urlsafe``, compared with
  ``hmac.compare_digest``), sent back in the ``Session-Token`` header on every later call;
  a missing token is ``401``, a wrong one ``404`` exactly like an unknown session, and the
  id alone is a label (two clients using one id get two sessions), so nothing says whether
  someone else's session exists;
- the ``customer`` a request names is only a claim unless the request carries the
  configured identity key (a front end that signed the customer in): the agent then asks
  for an order id and the postcode it ships to before showing or changing anything;
- POST bodies must be ``application/json`` (``415`` otherwise: no form or ``text/plain``
  cross-site requests) and the ``Host`` header must be on an allow-list (no DNS rebinding),
  with Starlette's ``TrustedHostMiddleware``;
- a full session table refuses new sessions (``503`` + ``Retry-After``); a live session is
  never dropped to make room, only after ``idle_timeout_s`` without a message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import inspect
import json
import logging
import math
import re
import secrets
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
from starlette.middleware.trustedhost import TrustedHostMiddleware

from reference_agent.scripted_model import ModelScriptError

__all__ = [
    "CHANNELS",
    "DEFAULT_ALLOWED_HOSTS",
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_CHARS",
    "ServiceConfig",
    "SESSION_TOKEN_HEADER",
    "SessionPool",
    "SessionPoolFull",
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

# The header that carries a session's token both ways (docs/http-protocol.md).
SESSION_TOKEN_HEADER = "Session-Token"
# Host names a browser may use to reach the service (plus the one it is bound to): any other
# Host header is refused, so a rebound DNS name cannot turn a web page into a client.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")

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

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class SessionPoolFull(Exception):
    """No room for a new session; ``retry_after`` seconds until the oldest idle one expires."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"session table full; retry after {retry_after} s")
        self.retry_after = retry_after


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
    session_id: str
    token: str
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
    """Live sessions, each reached by its id and its token; bounded, expiring idle sessions.

    Sessions are keyed by a digest of their token (the id is only a label: two clients who
    pick the same id get two sessions). A full pool refuses new sessions
    (:class:`SessionPoolFull`) rather than dropping a live one.
    """

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
        self.refused = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        """Whether any live session carries this id (for tests and diagnostics)."""
        with self._mutex:
            return any(s.session_id == session_id for s in self._sessions.values())

    def get(self, session_id: str, token: str | None) -> _Session | None:
        """The session with this id and token, or None (unknown id, wrong or missing token)."""
        if not token:
            return None
        with self._mutex:
            sess = self._sessions.get(_token_key(token))
            if sess is None or not hmac.compare_digest(sess.token.encode(), token.encode()) \
                    or sess.session_id != session_id:
                return None
            sess.last_used = time.monotonic()
            self._sessions.move_to_end(_token_key(token))
            return sess

    def create(
        self,
        session_id: str,
        *,
        channel: str,
        customer_email: str | None,
        verified: bool,
        initial_state: dict[str, Any] | None,
    ) -> _Session:
        """A new session with a fresh token; :class:`SessionPoolFull` when there is no room.

        ``verified``: a trusted front end vouches for ``customer_email``; otherwise the
        email is only a claim and the agent verifies the customer itself."""
        with self._mutex:
            self._room_locked(time.monotonic())
        kwargs: dict[str, Any] = {
            "store": None,  # None: the agent opens its own fresh copy of the store
            "session_id": session_id,
            "channel": channel,
            "customer_email": customer_email,
            "engine": self.config.engine,
            "faults": tuple(self.config.faults),
            "verify_identity": not verified,
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
        if not verified and "verify_identity" not in kwargs:
            # A factory that cannot verify an identity never gets an unverified claim.
            kwargs.pop("customer_email", None)
        agent = self._factory(**kwargs)
        now = time.monotonic()
        token = secrets.token_urlsafe(32)
        sess = _Session(session_id=session_id, token=token, agent=agent, channel=channel,
                        customer_email=customer_email, created=now, last_used=now, analytics=records)
        with self._mutex:
            try:
                self._room_locked(now)  # others may have filled the pool meanwhile
            except SessionPoolFull:
                _close_agent(agent)
                raise
            self._sessions[_token_key(token)] = sess
            self.created += 1
        return sess

    def _room_locked(self, now: float) -> None:
        """Drop sessions idle past the timeout; raise :class:`SessionPoolFull` if still full."""
        cutoff = now - self.config.idle_timeout_s
        for key in [k for k, v in self._sessions.items() if v.last_used < cutoff and not v.lock.locked()]:
            self._drop_locked(key)
        if len(self._sessions) >= self.config.max_sessions:
            self.refused += 1
            oldest = min((v.last_used for v in self._sessions.values()), default=now)
            raise SessionPoolFull(max(1, math.ceil(oldest + self.config.idle_timeout_s - now)))

    def _drop_locked(self, key: str) -> None:
        sess = self._sessions.pop(key, None)
        if sess is not None:
            self.evicted += 1
            _close_agent(sess.agent)

    def delete(self, session_id: str, token: str | None) -> bool:
        sess = self.get(session_id, token)
        if sess is None:
            return False
        with self._mutex:
            self._sessions.pop(_token_key(sess.token), None)
        _close_agent(sess.agent)
        return True

    def clear(self) -> None:
        with self._mutex:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for sess in sessions:
            _close_agent(sess.agent)


def _token_key(token: str) -> str:
    # The table is keyed by a digest, so a lookup's timing says nothing about the tokens held.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


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
    """The request body as a JSON object, enforcing the size limit while reading.

    Only ``Content-Type: application/json`` is read: a browser sends form and ``text/plain``
    bodies cross-site without asking, but a JSON one only after a CORS preflight this
    service never grants."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        shown = media_type[:60] or "none"
        raise BadRequest(415, f"request body must be Content-Type: application/json, got {shown}")
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


def _session_token(request: Request) -> str | None:
    return request.headers.get(SESSION_TOKEN_HEADER) or None


def _no_session(session_id: str, token: str | None) -> BadRequest:
    """One answer for a missing token, and one for a wrong token or an unknown session, so
    nothing tells a stranger whether a session with this id exists."""
    if token is None:
        return BadRequest(401, f"a {SESSION_TOKEN_HEADER} header is required (the one the session's first reply sent)")
    return BadRequest(404, f"unknown session '{session_id}' or wrong session token")


def _vouched(request: Request, identity_key: str | None) -> bool:
    """Whether the request carries the identity key: ``Authorization: Bearer KEY``, or Basic
    credentials whose password is KEY (what an ``http://user:KEY@host`` URL sends).

    No Authorization header: False (the ``customer`` is a claim). A header that does not
    carry the key is refused, so a misconfigured front end is told rather than demoted."""
    header = request.headers.get("authorization")
    if header is None:
        return False
    scheme, _, value = header.partition(" ")
    offered: str | None = None
    if scheme.lower() == "bearer":
        offered = value.strip()
    elif scheme.lower() == "basic":
        try:
            offered = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            offered = None
    if identity_key and offered is not None and hmac.compare_digest(offered.encode(), identity_key.encode()):
        return True
    raise BadRequest(401, "the Authorization header does not carry this service's identity key",
                     headers={"WWW-Authenticate": 'Bearer realm="reference-agent"'})


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
        "usage": _protocol_usage(getattr(resp, "usage", None)),
        "end_conversation": bool(getattr(resp, "end_conversation", False)),
        "metadata": _jsonable(metadata),
    }


def _protocol_usage(usage: Any) -> dict[str, Any] | None:
    """The protocol's usage fields only: the LLM engine's usage also names the model, its
    calls and errors, which the protocol's ``usage`` object does not take (evalkit's HTTP
    adapter refuses a reply carrying them, as the in-process adapter never sends them)."""
    if not usage:
        return None
    return _jsonable({k: usage[k] for k in ("prompt_tokens", "completion_tokens", "cost_usd") if k in usage})


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
    identity_key: str | None = None,
    allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS,
) -> FastAPI:
    """Build the service. ``agent_factory`` (default: ``SupportAgent``) makes one agent per
    session; ``log_file`` appends every session's analytics lines (one JSON line per turn);
    ``shared_profiles`` keeps long-term customer profiles across sessions (of verified
    customers only). ``identity_key``: a request carrying it (``Authorization: Bearer KEY``)
    comes from a front end that signed the customer in, so its ``customer`` is trusted; all
    other customers must prove who they are. ``allowed_hosts``: the ``Host`` names accepted
    (``"*"`` for any)."""
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
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False)

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        response = _error(exc.status, exc.message)
        response.headers.update(exc.headers)
        return response

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
        verified = _vouched(request, identity_key)
        token = _session_token(request)
        if token is None and req.initial_state and "model_script" in req.initial_state and not verified:
            # A scripted model puts any words in the agent's mouth: only for a trusted caller
            # (a test harness holding the identity key), never for the public.
            raise BadRequest(403, "field 'initial_state.model_script': only a caller holding the identity key "
                                  "may script the model")
        if token is not None:
            found = pool.get(session_id, token)
            if found is None:
                raise _no_session(session_id, token)
            sess = found
        else:
            try:
                sess = await asyncio.to_thread(
                    pool.create,
                    session_id,
                    channel=req.channel,
                    customer_email=req.customer_email,
                    verified=verified,
                    initial_state=req.initial_state,
                )
            except SessionPoolFull as full:
                raise BadRequest(503, f"the service is at its limit of {config.max_sessions} live sessions; "
                                      f"retry in {full.retry_after} s", headers={"Retry-After": str(full.retry_after)},
                                 ) from None
            except ModelScriptError as err:
                raise BadRequest(422, str(err)) from None
            except Exception as exc:  # noqa: BLE001 - the agent failing to start is the agent's failure
                log.exception("agent for session %s could not start", session_id)
                return _error(500, f"agent could not start: {type(exc).__name__}: {exc}")
        headers = {SESSION_TOKEN_HEADER: sess.token, "Cache-Control": "no-store"}
        if req.stream:
            return StreamingResponse(
                _stream_reply(sess, req.message),
                media_type="text/event-stream",
                headers={**headers, "X-Accel-Buffering": "no"},
            )
        async with sess.lock:
            try:
                resp = await asyncio.to_thread(sess.agent.reply, req.message)
            except Exception as exc:  # noqa: BLE001 - the agent failing is reported, not hidden
                log.exception("agent failed on session %s", session_id)
                response = _error(500, f"agent error: {type(exc).__name__}: {exc}")
                response.headers.update(headers)
                return response
            sess.turns += 1
        return JSONResponse(to_protocol_reply(resp), headers=headers)

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
    async def get_state(session_id: str, request: Request) -> JSONResponse:
        _check_session_id(session_id)
        token = _session_token(request)
        sess = pool.get(session_id, token)
        if sess is None:
            raise _no_session(session_id, token)
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
        token = _session_token(request)
        sess = pool.get(session_id, token)
        if sess is None:
            raise _no_session(session_id, token)
        async with sess.lock:
            row = await asyncio.to_thread(_store_feedback, sess.agent, session_id, rating, comment)
        return JSONResponse({"status": "stored", "feedback": _jsonable(row)}, status_code=201)

    @app.delete("/v1/sessions/{session_id}")
    async def delete_session(session_id: str, request: Request) -> JSONResponse:
        _check_session_id(session_id)
        token = _session_token(request)
        if not pool.delete(session_id, token):
            raise _no_session(session_id, token)
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
