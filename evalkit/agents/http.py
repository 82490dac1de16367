"""``--agent http://HOST:PORT[/prefix]``: an agent behind the evalkit HTTP protocol.

Implements ``docs/http-protocol.md`` (version 1): one shared ``httpx2.AsyncClient`` per
provider, a health check once before the run, replies as JSON or streamed as Server-Sent
Events (read incrementally with ``httpx2.EventSource``, so time-to-first-token is the first
``token`` event), the end state fetched when the conversation is over, and the session
deleted afterwards. A ``Session-Token`` response header is kept and sent back on every later
request of that session (the protocol's session token). Every failure of the agent raises
:class:`AgentHTTPError`, which the runner records on the turn as data.

Why httpx2: it is the HTTP library the ``openai`` SDK ships with (so evalkit's core needs
no second one), it is maintained (by Pydantic, from httpx), and its public API covers what
this adapter needs, Server-Sent Events included.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
from pydantic import JsonValue

from evalkit.agents.base import AgentProvider, AgentReply, SessionInfo, TurnContext
from evalkit.agents.session import normalize_reply
from evalkit.errors import AgentSpecError

__all__ = ["HttpAgentProvider", "HttpAgentSession", "AgentHTTPError", "SESSION_TOKEN_HEADER"]

# docs/http-protocol.md, "Session tokens": the server may set it on any reply to a message;
# the client sends the latest value back on every request for that session.
SESSION_TOKEN_HEADER = "Session-Token"


class AgentHTTPError(Exception):
    """The agent's HTTP endpoint failed (non-2xx, bad body, dropped connection)."""


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(resp: httpx2.Response, body: bytes) -> str:
    try:
        data = json.loads(body)
        detail = data.get("error") or data.get("message") or data.get("detail") or body.decode()
    except (ValueError, AttributeError):
        detail = body.decode("utf-8", "replace")
    return f"HTTP {resp.status_code}: {_one_line(str(detail))}" if detail else f"HTTP {resp.status_code}"


class HttpAgentProvider(AgentProvider):
    """One HTTP agent (a base URL); sessions share one connection pool."""

    def __init__(self, spec: str, *, stream: bool = True, timeout_s: float = 10.0) -> None:
        try:
            parts = urlsplit(spec)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
        except ValueError as exc:
            raise AgentSpecError(f"not a valid URL: {exc}", field=spec) from None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AgentSpecError("expected an http(s)://HOST[:PORT][/prefix] URL", field=spec)
        if parts.query or parts.fragment:
            raise AgentSpecError("an HTTP agent URL takes no query or fragment", field=spec)
        self.spec = spec
        self.base = spec.rstrip("/")
        self.stream = stream
        self.timeout_s = timeout_s
        self._client: httpx2.AsyncClient | None = None

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            # The runner enforces turn timeouts itself (and reports them as timeouts); httpx2 only
            # bounds connecting, so a slow agent is never cut short by a second, hidden limit.
            timeout = httpx2.Timeout(None, connect=self.timeout_s)
            self._client = httpx2.AsyncClient(timeout=timeout, limits=httpx2.Limits(max_connections=None))
        return self._client

    async def start(self) -> None:
        """Health check, once before the run: an unreachable agent is a setup error."""
        try:
            resp = await self.client.get(f"{self.base}/healthz", timeout=self.timeout_s)
        except httpx2.HTTPError as exc:
            raise AgentSpecError(
                f"health check failed: {type(exc).__name__}: {_one_line(str(exc)) or 'no answer'}",
                field=self.spec,
            ) from None
        if resp.status_code >= 500:
            raise AgentSpecError(f"health check failed: {_error_text(resp, resp.content)}", field=self.spec)

    def session_url(self, session_id: str) -> str:
        return f"{self.base}/v1/sessions/{quote(session_id, safe='')}"

    def new_session(self, info: SessionInfo) -> HttpAgentSession:
        return HttpAgentSession(self, info)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class HttpAgentSession:
    """One conversation with an HTTP agent."""

    def __init__(self, provider: HttpAgentProvider, info: SessionInfo) -> None:
        self.provider = provider
        self.info = info
        self.url = provider.session_url(info.session_id)
        self.token: str | None = None

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token is not None:
            headers[SESSION_TOKEN_HEADER] = self.token
        return headers

    def _keep_token(self, resp: httpx2.Response) -> None:
        token = resp.headers.get(SESSION_TOKEN_HEADER)
        if token:
            self.token = token

    async def respond(self, ctx: TurnContext) -> AgentReply:
        body = {
            "message": ctx.message,
            "turn": ctx.turn,
            "channel": ctx.channel,
            "customer": self.info.customer,
            "initial_state": self.info.initial_state,
            "stream": self.provider.stream,
        }
        headers = self._headers({"Accept": "text/event-stream, application/json"} if self.provider.stream else None)
        client = self.provider.client
        try:
            async with client.stream("POST", f"{self.url}/messages", json=body, headers=headers) as resp:
                self._keep_token(resp)
                if resp.status_code // 100 != 2:
                    raise AgentHTTPError(_error_text(resp, await resp.aread()))
                if resp.headers.get("content-type", "").startswith("text/event-stream"):
                    return await self._read_sse(resp, ctx)
                return self._parse_reply(await resp.aread())
        except httpx2.HTTPError as exc:
            raise AgentHTTPError(
                f"{type(exc).__name__}: {_one_line(str(exc)) or 'connection failed'}"
            ) from None

    @staticmethod
    def _parse_reply(raw: bytes | str) -> AgentReply:
        try:
            data = json.loads(raw)
        except ValueError:
            raise AgentHTTPError(
                f"reply is not JSON: {_one_line(raw if isinstance(raw, str) else raw.decode('utf-8', 'replace'), 80)!r}"
            ) from None
        if not isinstance(data, dict):
            raise AgentHTTPError(f"reply is JSON {type(data).__name__}, not an object")
        return normalize_reply(data)

    async def _read_sse(self, resp: httpx2.Response, ctx: TurnContext) -> AgentReply:
        tokens: list[str] = []
        reply: AgentReply | None = None
        async for sse in httpx2.EventSource(resp):
            reply = self._dispatch(sse.event, sse.data, tokens, ctx) or reply
        if reply is None:
            if not tokens:
                raise AgentHTTPError("stream ended without a reply event")
            reply = AgentReply(content="".join(tokens))
        return reply

    def _dispatch(self, event: str, data: str, tokens: list[str], ctx: TurnContext) -> AgentReply | None:
        if event == "token":
            try:
                text = json.loads(data).get("text", "")
            except (ValueError, AttributeError):
                text = data
            if not tokens:
                ctx.first_token()
            tokens.append(str(text))
            return None
        if event == "reply":
            reply = self._parse_reply(data)
            if not reply.content and tokens:
                reply = reply.model_copy(update={"content": "".join(tokens)})
            return reply
        if event == "error":
            try:
                message = json.loads(data).get("message") or data
            except (ValueError, AttributeError):
                message = data
            raise AgentHTTPError(f"agent streamed an error: {_one_line(str(message))}")
        return None  # unknown events are ignored (forward compatible)

    async def end_state(self) -> dict[str, JsonValue] | None:
        try:
            resp = await self.provider.client.get(f"{self.url}/state", headers=self._headers())
        except httpx2.HTTPError as exc:
            raise AgentHTTPError(f"fetching end state: {type(exc).__name__}: {_one_line(str(exc))}") from None
        if resp.status_code in (404, 405, 501):
            return None
        if resp.status_code // 100 != 2:
            raise AgentHTTPError(f"fetching end state: {_error_text(resp, resp.content)}")
        try:
            data: Any = resp.json()
        except ValueError:
            raise AgentHTTPError("end state is not JSON") from None
        state = data.get("end_state") if isinstance(data, dict) else None
        if state is not None and not isinstance(state, dict):
            raise AgentHTTPError(f"end_state is {type(state).__name__}, not an object")
        return state

    async def aclose(self) -> None:
        try:
            await self.provider.client.delete(self.url, headers=self._headers())
        except httpx2.HTTPError:
            pass  # deleting is a courtesy; the conversation is already recorded
