"""``--agent http://HOST:PORT[/prefix]``: an agent behind the evalkit HTTP protocol.

Implements ``docs/http-protocol.md`` (version 1): one shared ``httpx2.AsyncClient`` per
provider, a health check once before the run, replies as JSON or streamed as Server-Sent
Events (consumed incrementally, so time-to-first-token is the first ``token`` event), the
end state fetched when the conversation is over, and the session deleted afterwards. A
``Session-Token`` response header is kept and sent back on every later request of that
session (the protocol's session token). Every failure of the agent raises
:class:`AgentHTTPError`, which the runner records on the turn as data.

No body is read past a cap (``TurnContext.max_reply_bytes`` for replies, a small one for
error texts, the health check and the end state): bytes are counted as they arrive and
reading stops at the cap, so a runaway reply or an endless token stream costs at most the
cap in memory. The SSE lines are split here from the counted bytes for that reason:
``httpx2``'s ``aiter_lines`` and ``EventSource`` buffer a line of any length before yielding it.

Why httpx2: it is the HTTP library the ``openai`` SDK ships with (so evalkit's core needs
no second one), it is maintained (by Pydantic, from httpx), and its public streaming API is
all this adapter needs.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
from pydantic import JsonValue

from evalkit.agents.base import DEFAULT_MAX_REPLY_BYTES, AgentProvider, AgentReply, SessionInfo, TurnContext
from evalkit.agents.session import ReplyTooLarge, normalize_reply
from evalkit.core.errors import AgentSpecError
from evalkit.core.untrusted import one_line

__all__ = ["HttpAgentProvider", "HttpAgentSession", "AgentHTTPError", "SESSION_TOKEN_HEADER"]

# docs/http-protocol.md, "Session tokens": the server may set it on any reply to a message;
# the client sends the latest value back on every request for that session.
SESSION_TOKEN_HEADER = "Session-Token"


class AgentHTTPError(Exception):
    """The agent's HTTP endpoint failed (non-2xx, bad body, dropped connection)."""


# Error texts, health checks and end states: enough for any honest answer.
_SMALL_BODY = 1_000_000
# SSE ends a line with CRLF, LF or CR.
_LINE_END = re.compile(r"\r\n|\r|\n")


def _too_large(cap: int, what: str) -> ReplyTooLarge:
    return ReplyTooLarge(
        f"{what} is larger than the limit of {cap} bytes (max_reply_bytes); stopped reading it"
    )


async def _read_capped(resp: httpx2.Response, cap: int, what: str = "reply") -> bytes:
    """The body, read until it ends or passes ``cap`` bytes (then raises, holding no more)."""
    parts: list[bytes] = []
    total = 0
    async for chunk in resp.aiter_bytes():
        total += len(chunk)
        if total > cap:
            raise _too_large(cap, what)
        parts.append(chunk)
    return b"".join(parts)


async def _read_head(resp: httpx2.Response, cap: int = 4096) -> bytes:
    """At most the first ``cap`` bytes of a body (an error text need not be whole)."""
    parts: list[bytes] = []
    total = 0
    async for chunk in resp.aiter_bytes():
        parts.append(chunk[: cap - total])
        total += len(chunk)
        if total >= cap:
            break
    return b"".join(parts)


async def _lines(resp: httpx2.Response, cap: int) -> AsyncIterator[str]:
    """The body's lines (decoded as UTF-8), counting bytes: past ``cap`` raises."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    total = 0
    async for chunk in resp.aiter_bytes():
        total += len(chunk)
        if total > cap:
            raise _too_large(cap, "streamed reply")
        text = pending + decoder.decode(chunk)
        # A CR at the end may be the first half of a CRLF: decide once the next byte is in.
        held = "\r" if text.endswith("\r") else ""
        *lines, pending = _LINE_END.split(text[: len(text) - len(held)])
        pending += held
        for line in lines:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        for line in _LINE_END.split(pending):
            yield line



def _error_text(resp: httpx2.Response, body: bytes) -> str:
    try:
        data = json.loads(body)
        detail = data.get("error") or data.get("message") or data.get("detail") or body.decode()
    except (ValueError, AttributeError):  # also a body cut at the read limit
        detail = body.decode("utf-8", "replace")
    return f"HTTP {resp.status_code}: {one_line(str(detail))}" if detail else f"HTTP {resp.status_code}"


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
            async with self.client.stream("GET", f"{self.base}/healthz", timeout=self.timeout_s) as resp:
                body = await _read_head(resp)
        except httpx2.HTTPError as exc:
            raise AgentSpecError(
                f"health check failed: {type(exc).__name__}: {one_line(str(exc)) or 'no answer'}",
                field=self.spec,
            ) from None
        if resp.status_code >= 500:
            raise AgentSpecError(f"health check failed: {_error_text(resp, body)}", field=self.spec)

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
        cap = ctx.max_reply_bytes or DEFAULT_MAX_REPLY_BYTES
        try:
            async with client.stream("POST", f"{self.url}/messages", json=body, headers=headers) as resp:
                self._keep_token(resp)
                if resp.status_code // 100 != 2:
                    raise AgentHTTPError(_error_text(resp, await _read_head(resp)))
                if resp.headers.get("content-type", "").startswith("text/event-stream"):
                    return await self._read_sse(resp, ctx, cap)
                return self._parse_reply(await _read_capped(resp, cap))
        except httpx2.HTTPError as exc:
            raise AgentHTTPError(
                f"{type(exc).__name__}: {one_line(str(exc)) or 'connection failed'}"
            ) from None

    @staticmethod
    def _parse_reply(raw: bytes | str) -> AgentReply:
        try:
            data = json.loads(raw)
        except ValueError:
            raise AgentHTTPError(
                f"reply is not JSON: {one_line(raw if isinstance(raw, str) else raw.decode('utf-8', 'replace'), 80)!r}"
            ) from None
        if not isinstance(data, dict):
            raise AgentHTTPError(f"reply is JSON {type(data).__name__}, not an object")
        return normalize_reply(data)

    async def _read_sse(self, resp: httpx2.Response, ctx: TurnContext, cap: int) -> AgentReply:
        event, data_lines = "message", list[str]()
        tokens: list[str] = []
        reply: AgentReply | None = None
        async for line in _lines(resp, cap):
            if line == "":  # blank line: dispatch the event
                if data_lines:
                    reply = self._dispatch(event, "\n".join(data_lines), tokens, ctx) or reply
                event, data_lines = "message", list[str]()
                continue
            if line.startswith(":"):
                continue  # comment / keep-alive
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data_lines.append(value)
        if data_lines:
            reply = self._dispatch(event, "\n".join(data_lines), tokens, ctx) or reply
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
            raise AgentHTTPError(f"agent streamed an error: {one_line(str(message))}")
        return None  # unknown events are ignored (forward compatible)

    async def end_state(self) -> dict[str, JsonValue] | None:
        try:
            async with self.provider.client.stream("GET", f"{self.url}/state", headers=self._headers()) as resp:
                if resp.status_code in (404, 405, 501):
                    return None
                if resp.status_code // 100 != 2:
                    raise AgentHTTPError(f"fetching end state: {_error_text(resp, await _read_head(resp))}")
                body = await _read_capped(resp, _SMALL_BODY, "end state")
        except httpx2.HTTPError as exc:
            raise AgentHTTPError(f"fetching end state: {type(exc).__name__}: {one_line(str(exc))}") from None
        try:
            data: Any = json.loads(body)
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
