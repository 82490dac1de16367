"""A lean HTTP layer under the ``openai`` client, through the SDK's own extension points.

Every model call still goes through ``openai.AsyncOpenAI`` (its request options, headers,
auth, error classes and response handling). What changes is what the SDK delegates:

- ``http_client``: :class:`LeanAsyncClient`, an ``httpx2.AsyncClient`` (the SDK's
  ``DefaultAioHttpClient``) whose ``build_request`` and ``send`` skip the per-call work a
  client with no base URL, cookies, auth or event hooks does not need (re-parsing the same
  URL, re-merging the same header sets, the auth and redirect generators). Anything
  outside that fast path (a redirect, custom auth, hooks, files) goes to httpx2.
- its transport, :class:`StreamTransport` (an ``httpx2.AsyncBaseTransport``): HTTP/1.1 on
  asyncio streams with a keep-alive pool; a body that is not an event stream is read whole
  in one go. Proxies from the environment (``HTTPS_PROXY``...) are mounted by httpx2 as
  before, on the SDK's aiohttp transport.
- the client itself, :class:`LeanAsyncOpenAI`: the merged URL, the header set and the
  request options are kept instead of rebuilt on every call.

Why: at 0 ms model latency the SDK's default stack cost ~1.2 ms of CPU per request at 32
requests in flight, more than evalkit's own work per model call; with this layer it is
~0.5 ms (``python benchmarks/llm_efficiency.py``; docs/benchmarks.md). The behaviour it
must keep (framing, keep-alive, streams, timeouts, errors, redirects, cookies, TLS) is
pinned by ``tests/test_llm_http.py``.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import os
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
from openai._models import FinalRequestOptions

__all__ = ["LeanAsyncClient", "LeanAsyncOpenAI", "StreamTransport"]


def _ssl_context(verify: Any, cert: Any, trust_env: bool) -> ssl.SSLContext:
    """httpx2's SSL context for these settings, made once per process for the usual ones:
    loading the CA bundle costs ~40 ms, and a run opens a client per model role."""
    if not isinstance(verify, bool | str) or cert is not None:
        return httpx2.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
    env = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else (None, None)
    return _shared_ssl_context(verify, trust_env, *env)


@functools.lru_cache(maxsize=8)
def _shared_ssl_context(verify: bool | str, trust_env: bool, *_env: str | None) -> ssl.SSLContext:
    return httpx2.create_ssl_context(verify=verify, trust_env=trust_env)


_HEAD_LIMIT = 1 << 18  # a response head (status line and headers) larger than this is refused
_NO_BODY_STATUS = {204, 304}
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class _Connection:
    """One kept-alive HTTP/1.1 connection."""

    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float, expiry: float | None) -> bool:
        # Bytes waiting on an idle connection were not asked for (a 408 sent before closing,
        # say): they must not be taken for the next request's answer.
        return (not self.reader.at_eof() and not self.writer.is_closing() and not getattr(self.reader, "_buffer", b"")
                and (expiry is None or now - self.idle_since < expiry))

    def close(self) -> None:
        self.writer.close()


class _Timeout:
    """``asyncio.timeout`` that is a no-op for ``None`` and says which phase ran out."""

    __slots__ = ("_cm", "_error")

    def __init__(self, seconds: float | None, error: type[httpx2.TimeoutException]) -> None:
        self._cm = asyncio.timeout(seconds) if seconds is not None else None
        self._error = error

    async def __aenter__(self) -> None:
        if self._cm is not None:
            await self._cm.__aenter__()

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self._cm is not None:
            try:
                await self._cm.__aexit__(kind, exc, tb)
            except TimeoutError:
                raise self._error("timed out") from None


def _head_bytes(method: str, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    block = b"".join(b"%s: %s\r\n" % kv for kv in headers)
    # No header may smuggle a line break into the request.
    if block.count(b"\n") != len(headers) or block.count(b"\r") != len(headers):
        raise httpx2.LocalProtocolError("a request header contains a line break")
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode("ascii"), target or b"/", block)


def _parse_head(raw: bytes) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx2.RemoteProtocolError(f"malformed status line: {lines[0][:80]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise httpx2.RemoteProtocolError(f"malformed response header: {line[:80]!r}")
        headers.append((name, value.strip()))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


class StreamTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams, with a keep-alive pool per origin.

    What a model endpoint needs and no more: fixed-length, chunked and read-to-close bodies,
    event streams handed over chunk by chunk, TLS with the given context, connect / read /
    write / pool timeouts, at most ``max_connections`` requests in flight, a kept-alive
    connection that turns out closed retried once on a new one. Not here: HTTP/2, proxies
    (``LeanAsyncClient`` mounts the SDK's aiohttp transport for those), Unix sockets.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
                 limits: httpx2.Limits = openai.DEFAULT_CONNECTION_LIMITS) -> None:
        # A callable is called on the first https connection: making a context costs ~45 ms
        # (~170 ms for the first, with httpx2's imports) and plain-http endpoints need none.
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._keepalive = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._max = limits.max_connections
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    # -- the pool ---------------------------------------------------------------------------

    def _checkout(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now, self._expiry):
                return conn
            conn.close()
        return None

    def _checkin(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if self._closed or (self._keepalive is not None and sum(map(len, self._idle.values())) >= self._keepalive):
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, scheme: str, host: str, port: int, sni: str | None, timeout: float | None) -> _Connection:
        try:
            async with _Timeout(timeout, httpx2.ConnectTimeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl_context() if scheme == "https" else None,
                    server_hostname=(sni or host) if scheme == "https" else None, limit=_HEAD_LIMIT,
                )
        except (OSError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        return _Connection(reader, writer)

    def _ssl_context(self) -> ssl.SSLContext:
        if not isinstance(self._ssl, ssl.SSLContext):
            self._ssl = self._ssl()
        return self._ssl

    async def _acquire(self, timeout: float | None) -> None:
        if self._max is None:
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        if not self._slots.locked():
            await self._slots.acquire()  # free slot: no waiting, so no timer to arm
            return
        async with _Timeout(timeout, httpx2.PoolTimeout):
            await self._slots.acquire()

    def _release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    # -- one request ------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        if self._closed:
            raise RuntimeError("the transport is closed")
        origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        headers = request.headers.raw
        try:
            body = request.content
        except httpx2.RequestNotRead:
            body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
            # httpx2 framed a streamed body as chunked; it goes out whole, with its length.
            headers = [(k, v) for k, v in headers if k.lower() not in (b"transfer-encoding", b"content-length")]
            headers.append((b"Content-Length", str(len(body)).encode("ascii")))
        head = _head_bytes(request.method, url.raw_path, headers)
        await self._acquire(timeouts.get("pool"))
        handed_over = False
        try:
            response, handed_over = await self._exchange(request, origin, head, body, timeouts)
            return response
        finally:
            if not handed_over:
                self._release()

    async def _exchange(self, request: httpx2.Request, origin: tuple[str, str, int], head: bytes, body: bytes,
                        timeouts: dict[str, float | None]) -> tuple[httpx2.Response, bool]:
        read_timeout = timeouts.get("read")
        for attempt in (1, 2):
            conn = self._checkout(origin) if attempt == 1 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(*origin, request.extensions.get("sni_hostname"), timeouts.get("connect"))
            try:
                conn.writer.write(head + body)  # one send for head and body (TCP_NODELAY is on)
                if conn.writer.transport.get_write_buffer_size() > 65536:
                    async with _Timeout(timeouts.get("write"), httpx2.WriteTimeout):
                        await conn.writer.drain()
                async with _Timeout(read_timeout, httpx2.ReadTimeout):
                    while True:
                        raw = await conn.reader.readuntil(b"\r\n\r\n")
                        version, status, reason, headers = _parse_head(raw)
                        if not 100 <= status < 200:
                            break  # informational answers (100 Continue...) precede the real one
            except asyncio.IncompleteReadError as exc:
                conn.close()
                if reused and not exc.partial:
                    continue  # the server had closed this kept-alive connection: once more, anew
                raise httpx2.RemoteProtocolError("the server closed the connection without a complete answer") from exc
            except (ConnectionError, OSError) as exc:
                conn.close()
                if reused:
                    continue
                raise httpx2.ReadError(f"{type(exc).__name__}: {exc}") from exc
            except asyncio.LimitOverrunError as exc:
                conn.close()
                raise httpx2.RemoteProtocolError("the response head is too large") from exc
            except BaseException:
                conn.close()  # a timeout, a cancellation, a malformed answer: the connection is spent
                raise
            return await self._answer(request, origin, conn, version, status, reason, headers, read_timeout)
        raise AssertionError("unreachable: the second attempt never retries")

    async def _answer(self, request: httpx2.Request, origin: tuple[str, str, int], conn: _Connection, version: bytes,
                      status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
                      read_timeout: float | None) -> tuple[httpx2.Response, bool]:
        length: int | None = None
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        event_stream = encoded = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-length":
                if not value.isdigit():
                    conn.close()
                    raise httpx2.RemoteProtocolError(f"bad Content-Length: {value[:40]!r}")
                length = int(value)
            elif lowered == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lowered == b"connection":
                keep_alive = (b"close" not in value.lower()) if keep_alive else (b"keep-alive" in value.lower())
            elif lowered == b"content-type":
                event_stream = value.lower().startswith(b"text/event-stream")
            elif lowered == b"content-encoding":
                encoded = value.strip().lower() not in (b"", b"identity")
        if request.method == "HEAD" or status in _NO_BODY_STATUS:
            parts = _NO_PARTS
        elif chunked:
            parts = _chunked(conn.reader)
        elif length is not None:
            parts = _fixed(conn.reader, length)
        else:
            parts, keep_alive = _to_close(conn.reader), False
        extensions = {"http_version": version, "reason_phrase": reason}
        if event_stream:
            stream = _BodyStream(self, origin, conn, parts, keep_alive, read_timeout)
            return httpx2.Response(status, headers=headers, stream=stream, request=request, extensions=extensions), True
        pieces: list[bytes] = []
        try:
            if parts is _NO_PARTS:
                pass
            elif length is not None and not chunked and len(getattr(conn.reader, "_buffer", b"")) >= length:
                pieces.append(await conn.reader.readexactly(length))  # all here already: no wait, no timer
            else:
                iterator = parts.__aiter__()
                while (part := await _next_part(iterator, read_timeout)) is not None:
                    pieces.append(part)
        except BaseException:
            conn.close()
            raise
        if keep_alive:
            self._checkin(origin, conn)
        else:
            conn.close()
        content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if encoded:  # httpx2 decodes it (gzip, deflate...) as it reads the body
            return httpx2.Response(status, headers=headers, content=content, request=request,
                                   extensions=extensions), False
        response = httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(content), request=request,
                                   extensions=extensions)
        response._content = content  # read already: nothing to decode
        response.is_stream_consumed = True
        return response, False

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


class _NoParts:
    """The body of a HEAD, 204 or 304 answer."""

    def __aiter__(self) -> _NoParts:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


_NO_PARTS = _NoParts()


async def _next_part(iterator: Any, timeout: float | None) -> bytes | None:
    """The next piece of a body (None at its end), within the read timeout: the timeout
    is per read, as in httpx2, so a body that trickles in slowly but steadily is fine."""
    try:
        async with _Timeout(timeout, httpx2.ReadTimeout):
            return await iterator.__anext__()  # type: ignore[no-any-return]
    except StopAsyncIteration:
        return None
    except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
        raise httpx2.RemoteProtocolError("the connection closed before the whole answer arrived") from exc


async def _fixed(reader: asyncio.StreamReader, length: int) -> Any:
    remaining = length
    while remaining:
        data = await reader.read(min(remaining, 1 << 16))
        if not data:
            raise asyncio.IncompleteReadError(b"", remaining)
        remaining -= len(data)
        yield data


async def _to_close(reader: asyncio.StreamReader) -> Any:
    while part := await reader.read(65536):
        yield part


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError as exc:
        raise httpx2.RemoteProtocolError("a chunk-size or trailer line is too long") from exc


async def _chunked(reader: asyncio.StreamReader) -> Any:
    while True:
        line = await _line(reader)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise httpx2.RemoteProtocolError(f"malformed chunk size: {line[:40]!r}") from None
        if size == 0:
            while await _line(reader) != b"\r\n":
                pass  # trailers
            return
        async for piece in _fixed(reader, size):
            yield piece
        if await reader.readexactly(2) != b"\r\n":
            raise httpx2.RemoteProtocolError("malformed chunk")


class _BodyStream(httpx2.AsyncByteStream):
    """An event-stream body, handed over as it arrives; the connection goes back to the pool
    (or is closed) when the body ends or the reader closes it."""

    def __init__(self, transport: StreamTransport, origin: tuple[str, str, int], conn: _Connection, parts: Any,
                 keep_alive: bool, read_timeout: float | None) -> None:
        self._transport, self._origin, self._conn = transport, origin, conn
        self._parts, self._keep_alive, self._read_timeout = parts, keep_alive, read_timeout
        self._complete = self._closed = False

    async def __aiter__(self) -> Any:
        iterator = self._parts.__aiter__()
        while (part := await _next_part(iterator, self._read_timeout)) is not None:
            yield part
        self._complete = True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._complete and self._keep_alive:
            self._transport._checkin(self._origin, self._conn)
        else:
            self._conn.close()
        self._transport._release()


class LeanAsyncClient(openai.DefaultAioHttpClient):  # type: ignore[misc,valid-type]
    """The SDK's aiohttp client with a short path for the requests the SDK builds, over
    :class:`StreamTransport` (``EVALKIT_HTTP_TRANSPORT=aiohttp``: the SDK's own aiohttp
    transport instead, should a server need it). Proxies from the environment are mounted
    by httpx2 as usual, on the SDK's aiohttp transport."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", openai.DEFAULT_TIMEOUT)
        kwargs.setdefault("limits", openai.DEFAULT_CONNECTION_LIMITS)
        super().__init__(**kwargs)
        # (url, *sdk headers) -> (parsed URL, merged headers, whether Content-Length is ours to add)
        self._prepared: dict[tuple[Any, ...], tuple[httpx2.URL, httpx2.Headers, bool]] = {}

    def _init_transport(self, verify: Any = True, cert: Any = None, trust_env: bool = True, http1: bool = True,
                        http2: bool = False, limits: httpx2.Limits = openai.DEFAULT_CONNECTION_LIMITS,
                        transport: httpx2.AsyncBaseTransport | None = None) -> httpx2.AsyncBaseTransport:
        if transport is not None:
            return transport
        if os.environ.get("EVALKIT_HTTP_TRANSPORT", "").strip().lower() == "aiohttp":
            return super()._init_transport(verify=verify, cert=cert, trust_env=trust_env, http1=http1, http2=http2,
                                           limits=limits)
        return StreamTransport(ssl_context=functools.partial(_ssl_context, verify, cert, trust_env), limits=limits)

    def _plain(self) -> bool:
        """No client-level base URL, cookies, params or event hooks to merge in (the
        client's default headers are merged by :meth:`build_request` itself)."""
        return (not self.base_url.raw_path.strip(b"/") and not self.base_url.host and not len(self.cookies.jar)
                and not self.params and not any(self._event_hooks.values()))

    def build_request(self, method: str, url: httpx2.URL | str, *, content: Any = None, headers: Any = None,
                      timeout: Any = httpx2.USE_CLIENT_DEFAULT, extensions: Any = None, **rest: Any) -> httpx2.Request:
        if (not isinstance(url, str) or not isinstance(content, bytes | None) or any(v is not None for v in rest.values())
                or not isinstance(headers, list) or extensions or not self._plain()):
            return super().build_request(method, url, content=content, headers=headers, timeout=timeout,
                                         extensions=extensions, **rest)
        timeout = self.timeout if isinstance(timeout, httpx2._client.UseClientDefault) else httpx2.Timeout(timeout)
        key = (url, *headers)
        prepared = self._prepared.get(key)
        if prepared is None:
            # What httpx2 would send: the client's default headers (Accept-Encoding,
            # Connection...) under the SDK's, plus Host; Content-Length is added per request.
            parsed = httpx2.URL(url)
            names = {k.lower() for k, _ in headers}
            merged = [] if "host" in names else [("Host", parsed.netloc.decode("ascii"))]
            merged += [(k, v) for k, v in self.headers.multi_items() if k not in names]
            merged += headers
            prepared = (parsed, httpx2.Headers(merged), "content-length" not in names and "transfer-encoding" not in names)
            prepared[1].encoding  # noqa: B018  # work out the encoding once, not per request
            if len(self._prepared) < 64:
                self._prepared[key] = prepared
        parsed, base, needs_length = prepared
        body = content or b""
        request = httpx2.Request(method, parsed, headers=base, stream=httpx2.ByteStream(body),
                                 extensions={"timeout": timeout.as_dict()})
        request.headers.encoding = base.encoding  # the copy forgets it
        if needs_length and (body or method.upper() in _BODY_METHODS):
            request.headers["Content-Length"] = str(len(body))
        request._content = body
        return request

    async def send(self, request: httpx2.Request, *, stream: bool = False, auth: Any = httpx2.USE_CLIENT_DEFAULT,
                   follow_redirects: Any = httpx2.USE_CLIENT_DEFAULT) -> httpx2.Response:
        if (auth not in (httpx2.USE_CLIENT_DEFAULT, None) or self.auth is not None or self.is_closed
                or any(self._event_hooks.values())):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        self._state = httpx2._client.ClientState.OPENED
        start = time.perf_counter()
        try:
            response = await self._transport_for_url(request.url).handle_async_request(request)
        except httpx2.RequestError as exc:  # what httpx2's request_context() does
            exc.request = request
            raise
        response.request = request
        if b"set-cookie" in (k.lower() for k, _ in response.headers.raw):
            self.cookies.extract_cookies(response)
        follow = self.follow_redirects if isinstance(follow_redirects, httpx2._client.UseClientDefault) else follow_redirects
        if follow and response.has_redirect_location:
            # Follow from this answer (the request was sent once already): httpx2 builds the
            # next request (method and body as the status code says) and goes on from there.
            next_request = self._build_redirect_request(request, response)
            await response.aclose()
            return await super().send(next_request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        if stream:
            response.stream = httpx2._client.BoundAsyncStream(response.stream, start=start)  # type: ignore[arg-type]
            return response
        try:
            await response.aread()
        finally:
            await response.aclose()
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
        return response


class LeanAsyncOpenAI(openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` that remembers what is the same on every call of a run.

    The SDK rebuilds the request URL, the header set and its request options on every call
    (~0.3 ms of CPU). Here the merged URL is kept per path and base URL, the headers per
    (key, organization, project, retry count, security) when the call adds no headers of
    its own, and :meth:`post_json` copies prepared options instead of constructing them.
    Anything else (per-call headers or timeouts, token providers) takes the SDK's path.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lean_urls: dict[str, tuple[httpx2.URL, httpx2.URL]] = {}
        self._lean_headers: dict[tuple[Any, ...], httpx2.Headers] = {}
        self._lean_options: dict[str, FinalRequestOptions] = {}

    @property
    def user_agent(self) -> str:
        # The SDK names the client class; servers and proxies should see the stock client.
        return super().user_agent.replace(type(self).__name__, "AsyncOpenAI", 1)

    def _prepare_url(self, url: str) -> httpx2.URL:
        base = self.base_url
        hit = self._lean_urls.get(url)
        if hit is not None and hit[0] is base:
            return hit[1]
        prepared = super()._prepare_url(url)
        if len(self._lean_urls) < 64:
            self._lean_urls[url] = (base, prepared)
        return prepared

    def _build_headers(self, options: FinalRequestOptions, *, retries_taken: int = 0) -> httpx2.Headers:
        if (options.headers or not isinstance(options.timeout, openai.NotGiven)
                or getattr(self, "_idempotency_header", None) or getattr(self, "_provider_runtime", None) is not None):
            return super()._build_headers(options, retries_taken=retries_taken)
        try:  # everything the SDK's header set is made of
            key = (self.api_key, self.organization, self.project, retries_taken,
                   tuple(sorted(options.security.items())), tuple(self._custom_headers.items()))
        except (AttributeError, TypeError):  # an SDK shaped otherwise: no caching
            return super()._build_headers(options, retries_taken=retries_taken)
        headers = self._lean_headers.get(key)
        if headers is None:
            headers = super()._build_headers(options, retries_taken=retries_taken)
            if len(self._lean_headers) < 64:
                self._lean_headers[key] = headers
        return httpx2.Headers(headers, encoding=headers.encoding)  # a copy: the SDK may still pop Content-Type

    async def post_json(self, path: str, body: dict[str, Any], *, cast_to: type[Any] = httpx2.Response,
                        stream: bool = False, stream_cls: Any = None) -> Any:
        """``self.post(path, body=body, ...)`` with the request options copied, not built.
        By default the answer is the ``httpx2.Response`` (read, status checked): the SDK hands
        it back as it is instead of wrapping it to parse."""
        template = self._lean_options.get(path)
        if template is None:
            template = FinalRequestOptions.construct(method="post", url=path)
            if getattr(self, "_idempotency_header", "?") is None:
                # No idempotency header is ever sent (OpenAI's client sets none), so the
                # per-request key the SDK would otherwise make (a uuid4 each call) is moot.
                template.idempotency_key = "unused"
            self._lean_options[path] = template
        options = template.model_copy(update={"json_data": body})
        return await self.request(cast_to, options, stream=stream, stream_cls=stream_cls)
