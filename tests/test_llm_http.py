"""The lean HTTP layer under the openai SDK (``evalkit.llm._http``) against raw local servers.

Every server here is an ``asyncio.start_server`` on 127.0.0.1 in the test's own loop
(``_http_helpers.RawServer``) writing exact bytes, so framing, connection reuse and
timing are under the test's control. The tests named after a defect (redirects sent
once, per-read timeouts, unsolicited bytes on an idle connection, ...) were written as
strict xfails against the first version of the layer and pass since it was mended.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import openai
import pytest
from _http_helpers import Conn, RawServer, Req, chunked, reply, self_signed_cert, serve_each

from evalkit.llm import LLMClient, ModelCallError, ModelSettings
from evalkit.llm._http import LeanAsyncClient, LeanAsyncOpenAI, StreamTransport

SSE = [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]
COMPLETION = {
    "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def ok(req: Req, conn: Conn) -> None:
    """Answers every request with ``200`` and ``<method> <target> #<n>`` as the body."""
    await conn.send(reply(200, f"{req.method} {req.target} #{len(conn.server.requests)}".encode()))


def first_answer_then(on_first_conn: Callable[[Conn], Awaitable[Any]]) -> Callable[[Conn], Awaitable[None]]:
    """A handler answering every request with :func:`ok`, except that the FIRST connection,
    after its first answer, does ``on_first_conn(conn)`` and ends."""

    async def handler(conn: Conn) -> None:
        req = await conn.read_request()
        assert req is not None
        await ok(req, conn)
        if conn.number == 1:
            await on_first_conn(conn)
            return
        while (req := await conn.read_request()) is not None:
            await ok(req, conn)

    return handler


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (no last chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def free_slots(client: LeanAsyncClient) -> int:
    """Pool slots not held by a request (``max_connections`` when nothing leaked)."""
    transport = client._transport
    assert isinstance(transport, StreamTransport) and transport._slots is not None
    return transport._slots._value


async def hold(conn: Conn, until: asyncio.Event) -> None:
    """Keep the connection open without answering until ``until`` is set (or shutdown)."""
    await until.wait()


def slow_until(release: asyncio.Event) -> Any:
    """A handler answering like :func:`ok`, but ``/slow`` only once ``release`` is set."""

    async def answer(req: Req, conn: Conn) -> None:
        if req.target == "/slow":
            await release.wait()
        await ok(req, conn)

    return serve_each(answer)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- 1. framing ---------------------------------------------------------------------------


def test_fixed_length_body_and_response_metadata() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(201, b"hello", reason="Created", headers=[("X-Thing", "a b"), ("X-Multi", "1"),
                                                                        ("X-Multi", "2")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            r = await c.get(srv.url + "/path?q=1")
            assert (r.status_code, r.content, r.reason_phrase, r.http_version) == (201, b"hello", "Created", "HTTP/1.1")
            assert r.headers["x-thing"] == "a b" and r.headers.get_list("x-multi") == ["1", "2"]
            assert r.request.url == httpx2.URL(srv.url + "/path?q=1")
            assert r.elapsed.total_seconds() >= 0
            assert srv.requests[0].method == "GET" and srv.requests[0].target == "/path?q=1"
            assert srv.requests[0].header("content-length") is None  # a GET without a body says nothing

    run(main())


def test_chunked_body_with_extensions_and_trailers_then_reuse() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        body = chunked(b"hel", b"lo ", b"world" * 1000, ext=";name=value", trailers="X-Trailer: yes\r\nX-T2: 2\r\n")
        await conn.send(reply(200, headers=[("Transfer-Encoding", "chunked")]) + body[:7])
        await asyncio.sleep(0.01)  # the chunks arrive in more than one read
        await conn.send(body[7:])

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            for _ in range(2):
                r = await c.get(srv.url)
                assert r.content == b"hello " + b"world" * 1000
            assert srv.accepted == 1  # the trailers were consumed: the connection stayed usable

    run(main())


@pytest.mark.parametrize("version, headers", [
    ("HTTP/1.0", []),
    ("HTTP/1.1", [("Connection", "close")]),
    ("HTTP/1.1", []),  # neither length nor chunked: the body runs until the server closes
])
def test_body_delimited_by_connection_close(version: str, headers: list[tuple[str, str]]) -> None:
    async def answer(req: Req, conn: Conn) -> bool:
        await conn.send(reply(200, b"first part, ", headers=headers, length=False, version=version))
        await asyncio.sleep(0.02)
        await conn.send(b"second part")
        return False  # close: that ends the body

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            for _ in range(2):
                r = await c.get(srv.url)
                assert r.content == b"first part, second part"
            assert srv.accepted == 2

    run(main())


@pytest.mark.parametrize("method, status", [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_answers_without_a_body_keep_the_connection_usable(method: str, status: int) -> None:
    async def answer(req: Req, conn: Conn) -> None:
        if req.target == "/empty":
            # A Content-Length that describes the entity, not a body on the wire.
            await conn.send(reply(status, headers=[("Content-Length", "123")]))
        else:
            await conn.send(reply(200, b"after"))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            r = await c.request(method, srv.url + "/empty")
            assert r.status_code == status and r.content == b""
            r = await c.get(srv.url + "/next")
            assert r.content == b"after"
            assert srv.accepted == 1

    run(main())


@pytest.mark.parametrize("informational", [
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
], ids=["100", "100+103"])
def test_informational_answers_precede_the_real_one(informational: bytes) -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(informational)
        await asyncio.sleep(0.01)
        await conn.send(reply(200, b"real", headers=[("X-Final", "1")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            r = await c.post(srv.url, content=b"{}")
            assert (r.status_code, r.content, r.headers.get("x-final"), r.headers.get("link")) == (200, b"real", "1", None)
            r = await c.get(srv.url)
            assert r.content == b"real" and srv.accepted == 1

    run(main())


def test_large_request_body_arrives_whole() -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB: written after the head, not glued to it

    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, b"%d" % len(req.body)))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            r = await c.post(srv.url, content=payload)
            assert r.content == b"%d" % len(payload)
            assert srv.requests[0].body == payload
            assert srv.requests[0].header("content-length") == str(len(payload))
            r = await c.post(srv.url, content=b"")
            assert r.content == b"0" and srv.requests[1].header("content-length") == "0"
            assert srv.accepted == 1

    run(main())


# -- 2. keep-alive ------------------------------------------------------------------------


def test_sequential_requests_reuse_one_connection() -> None:
    async def main() -> None:
        async with RawServer(serve_each(ok)) as srv, LeanAsyncClient() as c:
            bodies = [(await c.get(srv.url + f"/{i}")).content for i in range(5)]
            assert bodies == [f"GET /{i} #{i + 1}".encode() for i in range(5)]
            assert srv.accepted == 1
            assert {r.conn for r in srv.requests} == {1}
            assert free_slots(c) == openai.DEFAULT_CONNECTION_LIMITS.max_connections

    run(main())


@pytest.mark.parametrize("version, headers, connections", [
    ("HTTP/1.1", [("Connection", "close")], 2),
    ("HTTP/1.1", [("Connection", "Keep-Alive, Close")], 2),
    ("HTTP/1.0", [], 2),
    ("HTTP/1.0", [("Connection", "keep-alive")], 1),
    ("HTTP/1.1", [("Connection", "keep-alive")], 1),
])
def test_connection_header_decides_reuse(version: str, headers: list[tuple[str, str]], connections: int) -> None:
    async def answer(req: Req, conn: Conn) -> bool:
        await conn.send(reply(200, b"x", headers=headers, version=version))
        if connections == 2:
            return not await conn.wait_closed_by_client()  # the client hangs up, as it should
        return True

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            for _ in range(2):
                assert (await c.get(srv.url)).content == b"x"
            assert srv.accepted == connections

    run(main())


def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    async def answer(req: Req, conn: Conn) -> bool:
        await ok(req, conn)
        return False  # closes right after answering, without saying so

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            assert (await c.get(srv.url + "/a")).content == b"GET /a #1"
            await asyncio.sleep(0.05)  # the client has seen the EOF by now
            assert (await c.get(srv.url + "/b")).content == b"GET /b #2"
            assert srv.accepted == 2

    run(main())


def test_stale_kept_alive_connection_is_retried_once_on_a_new_one() -> None:
    # The second request arrives... and the server hangs up.
    handler = first_answer_then(lambda conn: conn.read_request())

    async def main() -> None:
        async with RawServer(handler) as srv, LeanAsyncClient() as c:
            await c.get(srv.url + "/a")
            r = await c.post(srv.url + "/b", content=b"body")
            assert r.content == b"POST /b #3"
            assert srv.accepted == 2
            assert [(q.target, q.conn, q.body) for q in srv.requests[1:]] == [("/b", 1, b"body"), ("/b", 2, b"body")]

    run(main())


def test_partial_answer_on_a_reused_connection_is_not_retried() -> None:
    async def handler(conn: Conn) -> None:
        await ok(await conn.read_request(), conn)  # type: ignore[arg-type]
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-")  # then the connection drops

    async def main() -> None:
        async with RawServer(handler) as srv, LeanAsyncClient() as c:
            await c.get(srv.url)
            with pytest.raises(httpx2.RemoteProtocolError):
                await c.get(srv.url)
            assert srv.accepted == 1  # a partial answer means the server saw it: no silent resend

    run(main())


def test_fresh_connection_closed_without_an_answer_raises() -> None:
    async def answer(req: Req, conn: Conn) -> bool:
        return False

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv:
            async with LeanAsyncClient() as c:
                with pytest.raises(httpx2.RemoteProtocolError):
                    await c.get(srv.url)
                assert srv.accepted == 1 and free_slots(c) == openai.DEFAULT_CONNECTION_LIMITS.max_connections
            async with LeanAsyncOpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0,
                                       http_client=LeanAsyncClient()) as sdk:
                with pytest.raises(openai.APIConnectionError) as err:
                    await sdk.post_json("/chat/completions", {"model": "m"})
                assert not isinstance(err.value, openai.APITimeoutError)
                assert isinstance(err.value.__cause__, httpx2.RemoteProtocolError)
            assert srv.accepted == 2

    run(main())


def test_keepalive_expiry_drops_old_idle_connections() -> None:
    async def main() -> None:
        async with RawServer(serve_each(ok)) as srv, LeanAsyncClient(limits=httpx2.Limits(keepalive_expiry=0.2)) as c:
            await c.get(srv.url)
            await c.get(srv.url)
            assert srv.accepted == 1
            await asyncio.sleep(0.3)
            await c.get(srv.url)
            assert srv.accepted == 2
            assert await srv.conns[0].client_gone()  # the expired one was closed, not leaked

    run(main())


def test_max_keepalive_connections_bounds_the_idle_pool() -> None:
    async def slow(req: Req, conn: Conn) -> None:
        await asyncio.sleep(0.03)  # long enough for all three requests to be in flight together
        await ok(req, conn)

    async def main() -> None:
        limits = httpx2.Limits(max_connections=10, max_keepalive_connections=1)
        async with RawServer(serve_each(slow)) as srv, LeanAsyncClient(limits=limits) as c:
            await asyncio.gather(*(c.get(srv.url) for _ in range(3)))
            assert srv.accepted == 3
            assert sum(map(len, c._transport._idle.values())) == 1
            await asyncio.gather(*(c.get(srv.url) for _ in range(3)))
            assert srv.accepted == 5  # one kept, two new
            assert free_slots(c) == 10

    run(main())


def test_closing_the_client_closes_idle_connections() -> None:
    async def main() -> None:
        async with RawServer(serve_each(ok)) as srv:
            c = LeanAsyncClient()
            await c.get(srv.url)
            await c.aclose()
            assert await srv.conns[0].client_gone()
            with pytest.raises(RuntimeError):  # httpx2: a closed client sends nothing
                await c.get(srv.url)
            assert srv.accepted == 1

    run(main())


def test_idle_connection_with_unsolicited_bytes_is_not_reused() -> None:
    handler = first_answer_then(
        lambda conn: conn.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    )

    async def main() -> None:
        async with RawServer(handler) as srv, LeanAsyncClient() as c:
            await c.get(srv.url)
            await asyncio.sleep(0.05)
            r = await c.get(srv.url + "/b")
            assert (r.status_code, srv.accepted) == (200, 2)

    run(main())


# -- 3. event streams ---------------------------------------------------------------------


def test_event_stream_is_delivered_incrementally_then_pooled() -> None:
    first_seen = asyncio.Event()
    second_sent = False

    async def answer(req: Req, conn: Conn) -> None:
        nonlocal second_sent
        if req.target != "/stream":
            await ok(req, conn)
            return
        await conn.send(reply(200, headers=SSE) + chunk(b"data: one\n\n"))
        async with asyncio.timeout(2):
            await first_seen.wait()  # only once the client has the first event
        second_sent = True
        await conn.send(chunk(b"data: two\n\n") + b"0\r\n\r\n")

    async def main() -> None:
        limits = httpx2.Limits(max_connections=1)
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient(limits=limits) as c:
            async with c.stream("POST", srv.url + "/stream", content=b"{}") as r:
                assert r.headers["content-type"] == "text/event-stream"
                parts = r.aiter_raw()
                assert await parts.__anext__() == b"data: one\n\n"
                assert not second_sent
                first_seen.set()
                assert [p async for p in parts] == [b"data: two\n\n"]
            assert free_slots(c) == 1
            async with asyncio.timeout(2):
                assert (await c.get(srv.url + "/after")).status_code == 200
            assert srv.accepted == 1

    run(main())


def test_event_stream_read_without_stream_mode_is_whole_and_pooled() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, headers=SSE) + chunked(b"data: 1\n\n", b"data: 2\n\n"))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient(limits=httpx2.Limits(max_connections=1)) as c:
            for _ in range(2):
                assert (await c.get(srv.url)).text == "data: 1\n\ndata: 2\n\n"
            assert srv.accepted == 1 and free_slots(c) == 1

    run(main())


@pytest.mark.parametrize("ending", ["client stops reading", "server dies"])
def test_event_stream_ended_early_closes_its_connection(ending: str) -> None:
    async def answer(req: Req, conn: Conn) -> bool:
        if req.target != "/stream":
            await ok(req, conn)
            return True
        await conn.send(reply(200, headers=SSE) + chunk(b"data: one\n\n"))
        if ending == "client stops reading":
            await conn.wait_closed_by_client()
        return False

    async def read(c: LeanAsyncClient, url: str) -> None:
        async with c.stream("GET", url) as r:
            async for part in r.aiter_raw():
                assert part == b"data: one\n\n"
                if ending == "client stops reading":
                    break

    async def main() -> None:
        limits = httpx2.Limits(max_connections=1)
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient(limits=limits, timeout=httpx2.Timeout(2)) as c:
            if ending == "server dies":
                with pytest.raises(httpx2.RemoteProtocolError):
                    await read(c, srv.url + "/stream")
            else:
                await read(c, srv.url + "/stream")
            assert free_slots(c) == 1
            async with asyncio.timeout(2):  # the only slot is free again: this does not wait
                assert (await c.get(srv.url + "/after")).status_code == 200
            assert srv.accepted == 2
            if ending == "client stops reading":
                assert await srv.conns[0].client_gone()

    run(main())


def test_event_stream_read_timeout_applies_per_event() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, headers=SSE))
        for i in range(4):
            await asyncio.sleep(0.12)  # each gap is under the read timeout, the total is not
            await conn.send(chunk(b"data: %d\n\n" % i))
        await conn.send(b"0\r\n\r\n")

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient(timeout=httpx2.Timeout(2, read=0.35)) as c:
            async with c.stream("GET", srv.url) as r:
                assert [p async for p in r.aiter_raw()] == [b"data: %d\n\n" % i for i in range(4)]

    run(main())


def test_streamed_response_has_elapsed_after_close() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, headers=SSE) + chunked(b"data: 1\n\n"))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            async with c.stream("GET", srv.url) as r:
                await r.aread()
            assert r.elapsed.total_seconds() >= 0

    run(main())


# -- 4. gzip and request headers ----------------------------------------------------------


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_gzip_body_is_decoded_and_default_headers_are_sent(framing: str) -> None:
    plain = json.dumps({"text": "héllo " * 500}).encode()
    packed = gzip.compress(plain)

    async def answer(req: Req, conn: Conn) -> None:
        hs = [("Content-Encoding", "gzip"), ("Content-Type", "application/json")]
        if framing == "length":
            await conn.send(reply(200, packed, headers=hs))
        else:
            half = len(packed) // 2
            await conn.send(reply(200, headers=[*hs, ("Transfer-Encoding", "chunked")])
                            + chunked(packed[:half], packed[half:]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            for _ in range(2):
                r = await c.get(srv.url)
                assert r.content == plain and r.json()["text"].startswith("héllo")
                assert r.headers["content-encoding"] == "gzip"
            req = srv.requests[0]
            assert req.all("accept-encoding") == [c.headers["accept-encoding"]]
            assert "gzip" in c.headers["accept-encoding"]
            assert req.all("host") == [f"127.0.0.1:{srv.port}"]
            assert req.header("connection") == "keep-alive"
            assert srv.accepted == 1

    run(main())


def test_sdk_requests_carry_sdk_and_client_headers() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, json.dumps(COMPLETION).encode(), headers=[("Content-Type", "application/json")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv:
            async with LeanAsyncOpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0,
                                       http_client=LeanAsyncClient()) as c:
                default_encoding = c._client.headers["accept-encoding"]
                body = {"model": "m", "messages": [{"role": "user", "content": "hé"}]}
                r = await c.post_json("/chat/completions", body)
                assert r.json() == COMPLETION
                await c.get("/models", cast_to=httpx2.Response)  # the SDK drops Content-Type on a GET...
                await c.post_json("/chat/completions", body)  # ...from its copy, not the cached set
        post, get, post2 = srv.requests
        for req in (post, post2):
            assert (req.method, req.target) == ("POST", "/v1/chat/completions")
            assert json.loads(req.body) == body
            assert req.all("authorization") == ["Bearer sk-test"]
            assert req.all("content-type") == ["application/json"]
            assert req.header("content-length") == str(len(req.body))
        for req in srv.requests:
            # The SDK's agent string ("<client class>/Python <version>"), once, instead of httpx2's.
            assert len(req.all("user-agent")) == 1
            assert f"OpenAI/Python {openai.__version__}" in req.header("user-agent")  # type: ignore[operator]
            assert req.all("accept") == ["application/json"]  # the SDK's, not the client's */*
            assert req.all("accept-encoding") == [default_encoding]
            assert req.all("host") == [f"127.0.0.1:{srv.port}"]
            assert req.header("x-stainless-retry-count") == "0"
        assert (get.method, get.target, get.header("content-type"), get.body) == ("GET", "/v1/models", None, b"")
        assert srv.accepted == 1

    run(main())


# -- 5. timeouts --------------------------------------------------------------------------


def test_read_timeout_when_the_server_never_answers() -> None:
    release = asyncio.Event()

    async def answer(req: Req, conn: Conn) -> bool:
        await hold(conn, release)
        return False

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv:
            async with LeanAsyncClient(timeout=httpx2.Timeout(5, read=0.2)) as c:
                t0 = time.monotonic()
                with pytest.raises(httpx2.ReadTimeout):
                    await c.get(srv.url)
                assert 0.15 < time.monotonic() - t0 < 1.5
                assert free_slots(c) == openai.DEFAULT_CONNECTION_LIMITS.max_connections
            async with LeanAsyncOpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0, timeout=0.2,
                                       http_client=LeanAsyncClient()) as sdk:
                with pytest.raises(openai.APITimeoutError):
                    await sdk.post_json("/chat/completions", {"model": "m"})
            release.set()

    run(main())


def test_read_timeout_is_per_read_for_a_trickling_body() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, headers=[("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")]))
        for _ in range(4):
            await asyncio.sleep(0.12)  # each gap is under the read timeout, the total is not
            await conn.send(chunk(b" "))
        await conn.send(chunked(b"{}"))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient(timeout=httpx2.Timeout(2, read=0.35)) as c:
            assert (await c.get(srv.url)).content == b"    {}"

    run(main())


def test_connect_error_on_a_closed_port() -> None:
    async def main() -> None:
        url = f"http://127.0.0.1:{closed_port()}/v1"
        async with LeanAsyncClient() as c:
            with pytest.raises(httpx2.ConnectError):
                await c.get(url)
            assert free_slots(c) == openai.DEFAULT_CONNECTION_LIMITS.max_connections
        async with LeanAsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0, http_client=LeanAsyncClient()) as sdk:
            with pytest.raises(openai.APIConnectionError) as err:
                await sdk.post_json("/chat/completions", {"model": "m"})
            assert isinstance(err.value.__cause__, httpx2.ConnectError)

    run(main())


@pytest.mark.parametrize("pool", [0.1, None], ids=["pool timeout", "no pool timeout"])
def test_a_request_waits_for_the_only_busy_connection(pool: float | None) -> None:
    release = asyncio.Event()

    async def main() -> None:
        limits = httpx2.Limits(max_connections=1)
        async with RawServer(slow_until(release)) as srv, \
                LeanAsyncClient(limits=limits, timeout=httpx2.Timeout(2, pool=pool)) as c:
            slow = asyncio.create_task(c.get(srv.url + "/slow"))
            while not srv.requests:
                await asyncio.sleep(0.005)
            t0 = time.monotonic()
            queued = asyncio.create_task(c.get(srv.url + "/queued"))
            if pool is None:
                await asyncio.sleep(0.15)
                assert not queued.done() and len(srv.requests) == 1  # waiting for the slot, nothing sent
            else:
                await asyncio.wait([queued], timeout=1.5)
                assert isinstance(queued.exception(), httpx2.PoolTimeout)
                assert 0.08 < time.monotonic() - t0 < 1.0
            release.set()
            assert (await slow).content == b"GET /slow #1"
            if pool is None:
                assert (await queued).content == b"GET /queued #2"
            assert (await c.get(srv.url + "/other")).status_code == 200
            assert srv.accepted == 1 and free_slots(c) == 1

    run(main())


def test_write_timeout_when_the_server_does_not_read() -> None:
    release = asyncio.Event()

    async def handler(conn: Conn) -> None:
        await hold(conn, release)  # never reads: the socket buffers fill up

    async def main() -> None:
        async with RawServer(handler) as srv, LeanAsyncClient(timeout=httpx2.Timeout(5, write=0.2)) as c:
            with pytest.raises(httpx2.WriteTimeout):
                await c.post(srv.url, content=b"x" * (48 << 20))
            assert free_slots(c) == openai.DEFAULT_CONNECTION_LIMITS.max_connections
            release.set()

    run(main())


# -- 6. malformed answers -----------------------------------------------------------------

MALFORMED = {
    "not http": b"HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "garbage": b"garbage\r\n\r\n",
    "status not a number": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    "header without colon": b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n",
    "folded header": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n",
    "empty header name": b"HTTP/1.1 200 OK\r\n: value\r\nContent-Length: 0\r\n\r\n",
    "bad content-length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nabc",
    "negative content-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "two content-lengths in one": b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk without CRLF": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "head too large": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 300_000 + b"\r\nContent-Length: 0\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"X-Many: aaaaaaaaaaaaaaaa\r\n" * 20_000 + b"\r\n",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_answer_raises_and_the_connection_is_dropped(raw: bytes) -> None:
    async def handler(conn: Conn) -> None:
        req = await conn.read_request()
        if conn.number == 1:
            conn.writer.write(raw)
            await conn.wait_closed_by_client()
            return
        while req is not None:
            await ok(req, conn)
            req = await conn.read_request()

    async def main() -> None:
        async with RawServer(handler) as srv, LeanAsyncClient(limits=httpx2.Limits(max_connections=1)) as c:
            with pytest.raises(httpx2.RemoteProtocolError):
                await c.get(srv.url + "/bad")
            assert (await c.get(srv.url + "/good")).content == b"GET /good #2"
            assert srv.accepted == 2 and await srv.conns[0].client_gone() and free_slots(c) == 1

    run(main())


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    b"HTTP/1.1 200 OK\r\nContent-Len",
], ids=["short fixed body", "no last chunk", "short chunk", "head cut"])
def test_answer_cut_short_by_close_raises(raw: bytes) -> None:
    async def answer(req: Req, conn: Conn) -> bool:
        await conn.send(raw)
        return False

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv:
            async with LeanAsyncClient() as c:
                with pytest.raises(httpx2.RemoteProtocolError):
                    await c.get(srv.url)
            async with LeanAsyncOpenAI(base_url=srv.url, api_key="sk-test", max_retries=0,
                                       http_client=LeanAsyncClient()) as sdk:
                with pytest.raises(openai.APIConnectionError):
                    await sdk.post_json("/chat/completions", {"model": "m"})

    run(main())


def test_overlong_chunk_size_line_is_a_protocol_error() -> None:
    async def answer(req: Req, conn: Conn) -> bool:
        await conn.send(reply(200, headers=[("Transfer-Encoding", "chunked")]) + b"1" * 300_000)
        return not await conn.wait_closed_by_client()

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            with pytest.raises(httpx2.RemoteProtocolError):
                await c.get(srv.url)

    run(main())


# -- 7. header injection ------------------------------------------------------------------


@pytest.mark.parametrize("name, value", [
    ("X-A", "a\r\nInjected: 1"),
    ("X-A", "a\nInjected: 1"),
    ("X-A", "a\rb"),
    ("X-A\r\nInjected", "1"),
])
def test_header_with_a_line_break_is_refused_before_anything_is_sent(name: str, value: str) -> None:
    async def main() -> None:
        async with RawServer(serve_each(ok)) as srv:
            limits, timeout = httpx2.Limits(max_connections=1), httpx2.Timeout(2, pool=0.5)
            async with LeanAsyncClient(limits=limits, timeout=timeout) as c:
                with pytest.raises(httpx2.LocalProtocolError):
                    await c.get(srv.url, headers={name: value})
                with pytest.raises(httpx2.LocalProtocolError):
                    await c.post(srv.url, content=b"{}", headers=[(name, value)])
                assert srv.accepted == 0 and srv.requests == []
                assert (await c.get(srv.url)).status_code == 200  # the only slot was not kept
                assert free_slots(c) == 1
            transport = StreamTransport(ssl_context=ssl.create_default_context())
            async with transport:
                with pytest.raises(httpx2.LocalProtocolError):
                    await transport.handle_async_request(httpx2.Request("GET", srv.url, headers=[(name, value)]))
            assert srv.accepted == 1 and len(srv.requests) == 1

    run(main())


# -- 8. cancellation ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["before the head", "mid body", "mid event stream"])
def test_cancelling_a_request_closes_its_connection_and_frees_the_slot(stage: str) -> None:
    started = asyncio.Event()
    partial = {
        "before the head": b"",
        "mid body": reply(200, b"hello", headers=[("Content-Length", "10")]),
        "mid event stream": reply(200, headers=SSE) + chunk(b"data: one\n\n"),
    }[stage]

    async def answer(req: Req, conn: Conn) -> bool:
        if req.target != "/cancel":
            await ok(req, conn)
            return True
        await conn.send(partial)
        started.set()
        await conn.wait_closed_by_client()
        return False

    async def get_all(c: LeanAsyncClient, url: str) -> None:
        async with c.stream("GET", url) as r:
            async for _ in r.aiter_raw():
                pass

    async def main() -> None:
        limits = httpx2.Limits(max_connections=1)
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient(limits=limits) as c:
            task = asyncio.create_task(get_all(c, srv.url + "/cancel"))
            async with asyncio.timeout(2):
                await started.wait()
            await asyncio.sleep(0.02)  # the client is now waiting on the rest
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert free_slots(c) == 1
            async with asyncio.timeout(2):
                assert (await c.get(srv.url + "/next")).status_code == 200
            assert srv.accepted == 2 and await srv.conns[0].client_gone()

    run(main())


def test_cancelling_a_request_waiting_for_a_slot_takes_no_slot() -> None:
    release = asyncio.Event()
    answer = slow_until(release)

    async def main() -> None:
        limits = httpx2.Limits(max_connections=1)
        async with RawServer(answer) as srv, LeanAsyncClient(limits=limits) as c:
            slow = asyncio.create_task(c.get(srv.url + "/slow"))
            queued = asyncio.create_task(c.get(srv.url + "/queued"))
            await asyncio.sleep(0.05)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            release.set()
            await slow
            assert free_slots(c) == 1
            await asyncio.gather(c.get(srv.url + "/a"), c.get(srv.url + "/b"))  # still one at a time, no hang
            assert [r.target for r in srv.requests] == ["/slow", "/a", "/b"] and free_slots(c) == 1

    run(main())


# -- 9. through the SDK -------------------------------------------------------------------


def _sdk(url: str, key: str = "sk-test", **kw: Any) -> LeanAsyncOpenAI:
    return LeanAsyncOpenAI(base_url=url, api_key=key, max_retries=kw.pop("max_retries", 0),
                           http_client=LeanAsyncClient(), **kw)


def test_post_json_end_to_end() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, json.dumps(COMPLETION).encode(), headers=[("Content-Type", "application/json")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, _sdk(srv.url + "/v1") as c:
            bodies = [{"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(3)]
            for body in bodies:
                r = await c.post_json("/chat/completions", body)
                assert isinstance(r, httpx2.Response) and r.is_closed
                assert r.status_code == 200 and json.loads(r.content) == COMPLETION
            assert [json.loads(q.body) for q in srv.requests] == bodies
            assert {(q.method, q.target) for q in srv.requests} == {("POST", "/v1/chat/completions")}
            assert srv.accepted == 1

    run(main())


@pytest.mark.parametrize("status, error", [
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
    (503, openai.InternalServerError),
    (400, openai.BadRequestError),
    (401, openai.AuthenticationError),
    (404, openai.NotFoundError),
])
def test_status_errors_become_sdk_errors(status: int, error: type[openai.APIStatusError]) -> None:
    body = json.dumps({"error": {"message": f"nope {status}", "type": "x"}}).encode()

    async def answer(req: Req, conn: Conn) -> None:
        if req.target.endswith("/ok"):
            await ok(req, conn)
            return
        await conn.send(reply(status, body, headers=[("Content-Type", "application/json"), ("Retry-After", "1")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, _sdk(srv.url + "/v1") as c:
            with pytest.raises(error) as err:
                await c.post_json("/chat/completions", {"model": "m"})
            assert err.value.status_code == status
            assert err.value.response.headers["retry-after"] == "1"
            assert err.value.response.content == body
            assert (await c.post_json("/ok", {})).status_code == 200
            assert srv.accepted == 1  # an error answer read whole leaves the connection usable

    run(main())


def test_status_error_keeps_the_server_message_and_body() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        body = json.dumps({"error": {"message": "slow down", "type": "rate"}}).encode()
        await conn.send(reply(429, body, headers=[("Content-Type", "application/json")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, _sdk(srv.url + "/v1") as c:
            with pytest.raises(openai.RateLimitError) as err:
                await c.post_json("/chat/completions", {"model": "m"})
            assert err.value.message == "Error code: 429 - slow down"
            assert err.value.body == {"message": "slow down", "type": "rate"}
            llm = LLMClient(ModelSettings(model="m", base_url=srv.url + "/v1", api_key="sk-x", max_retries=0))
            try:
                with pytest.raises(ModelCallError, match="slow down"):
                    await llm.chat([{"role": "user", "content": "x"}])
            finally:
                await llm.aclose()

    run(main())


def test_user_agent_is_the_stock_sdk_one() -> None:
    async def main() -> None:
        async with RawServer(serve_each(ok)) as srv, _sdk(srv.url + "/v1") as c, \
                openai.AsyncOpenAI(base_url=srv.url, api_key="sk-test") as stock:
            await c.post_json("/chat/completions", {})
            assert srv.requests[0].header("user-agent") == stock.user_agent

    run(main())


def test_sdk_retries_reuse_the_connection_and_count_in_headers() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        if len(conn.server.requests) == 1:
            await conn.send(reply(500, b"{}", headers=[("retry-after-ms", "1")]))
        else:
            await ok(req, conn)

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, _sdk(srv.url + "/v1", max_retries=1) as c:
            assert (await c.post_json("/chat/completions", {"model": "m"})).status_code == 200
            assert [q.header("x-stainless-retry-count") for q in srv.requests] == ["0", "1"]
            assert srv.accepted == 1

    run(main())


def test_cached_headers_follow_the_client_and_its_key() -> None:
    async def main() -> None:
        async with RawServer(serve_each(ok)) as srv, _sdk(srv.url + "/v1", "sk-one") as one, \
                _sdk(srv.url + "/v1", "sk-two") as two:
            for _ in range(2):
                await one.post_json("/chat/completions", {})
                await two.post_json("/chat/completions", {})
            one.api_key = "sk-three"
            await one.post_json("/chat/completions", {})
            await two.post_json("/chat/completions", {})
            auth = [q.header("authorization") for q in srv.requests]
            assert auth == ["Bearer sk-one", "Bearer sk-two"] * 2 + ["Bearer sk-three", "Bearer sk-two"]

    run(main())


def test_changing_base_url_sends_to_the_new_server() -> None:
    async def main() -> None:
        async with RawServer(serve_each(ok)) as a, RawServer(serve_each(ok)) as b, _sdk(a.url + "/v1") as c:
            await c.post_json("/chat/completions", {})
            c.base_url = b.url + "/api/"
            await c.post_json("/chat/completions", {})
            assert [q.target for q in a.requests] == ["/v1/chat/completions"]
            assert [q.target for q in b.requests] == ["/api/chat/completions"]

    run(main())


def test_sdk_stream_through_the_lean_client() -> None:
    events = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in ("a", "b", "c")]

    async def answer(req: Req, conn: Conn) -> None:
        lines = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        await conn.send(reply(200, headers=SSE) + chunked(*lines))

    async def main() -> None:
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        async with RawServer(serve_each(answer)) as srv, _sdk(srv.url + "/v1") as c:
            for _ in range(2):
                stream = await c.post("/chat/completions", body={"model": "m", "stream": True}, cast_to=ChatCompletion,
                                      stream=True, stream_cls=openai.AsyncStream[ChatCompletionChunk])
                words = [chunk.choices[0].delta.content async for chunk in stream]
                assert words == ["a", "b", "c"]
            assert srv.accepted == 1

    run(main())


# -- 10. the aiohttp switch and proxies ---------------------------------------------------


def test_aiohttp_transport_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_HTTP_TRANSPORT", " AIOHTTP ")

    async def main() -> None:
        async with RawServer(serve_each(ok)) as srv, LeanAsyncClient() as c:
            assert not isinstance(c._transport, StreamTransport)
            assert (await c.get(srv.url + "/a")).content == b"GET /a #1"
            async with _sdk(srv.url + "/v1") as sdk:
                assert not isinstance(sdk._client._transport, StreamTransport)
                r = await sdk.post_json("/chat/completions", {"model": "m"})
                assert r.content == b"POST /v1/chat/completions #2"
            assert srv.requests[1].header("authorization") == "Bearer sk-test"

    run(main())
    monkeypatch.delenv("EVALKIT_HTTP_TRANSPORT")

    async def default() -> None:
        async with LeanAsyncClient() as c:
            assert isinstance(c._transport, StreamTransport)

    run(default())


def test_environment_proxy_is_mounted_on_another_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")

    async def main() -> None:
        async with LeanAsyncClient(trust_env=True) as c:
            assert isinstance(c._transport, StreamTransport)
            https = [t for pattern, t in c._mounts.items() if pattern.pattern == "https://"]
            assert len(https) == 1 and https[0] is not None and not isinstance(https[0], StreamTransport)
            assert c._transport_for_url(httpx2.URL("https://api.example.com/v1")) is https[0]
            assert c._transport_for_url(httpx2.URL("http://127.0.0.1:1/")) is c._transport
        async with LeanAsyncClient(trust_env=False) as c:
            assert not any(c._mounts.values())

    run(main())


# -- 11. TLS ------------------------------------------------------------------------------


def test_tls_with_a_trusted_self_signed_certificate(tmp_path: Any) -> None:
    cert, key = self_signed_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        async with RawServer(serve_each(ok), ssl_context=server_ctx) as srv:
            assert srv.url.startswith("https://")
            async with StreamTransport(ssl_context=trusting) as t:
                for i in range(2):
                    r = await t.handle_async_request(httpx2.Request("GET", srv.url + "/tls"))
                    assert (r.status_code, r.content) == (200, b"GET /tls #%d" % (i + 1))
            async with LeanAsyncClient(verify=trusting) as c:
                assert (await c.get(srv.url + "/client")).status_code == 200
            assert srv.accepted == 2  # one per transport: the first one's connection was reused
            async with LeanAsyncClient() as c:  # the default CAs do not know this certificate
                with pytest.raises(httpx2.ConnectError):
                    await c.get(srv.url + "/untrusted")
                assert free_slots(c) == openai.DEFAULT_CONNECTION_LIMITS.max_connections
            async with _sdk(srv.url + "/v1") as sdk:
                with pytest.raises(openai.APIConnectionError):
                    await sdk.post_json("/chat/completions", {})
            assert len(srv.requests) == 3

    run(main())


# -- 12. LLMClient ------------------------------------------------------------------------


def test_llm_client_keeps_one_connection_for_many_calls() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "streamed"}, "finish_reason": "stop"}]}

    async def answer(req: Req, conn: Conn) -> None:
        if json.loads(req.body).get("stream"):
            await conn.send(reply(200, headers=SSE) + chunked(f"data: {json.dumps(chunk)}\n\n".encode(),
                                                              b"data: [DONE]\n\n"))
        else:
            await conn.send(reply(200, json.dumps(COMPLETION).encode(), headers=[("Content-Type", "application/json")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv:
            client = LLMClient(ModelSettings(model="m", base_url=srv.url + "/v1", api_key="sk-llm", max_retries=0))
            try:
                for i in range(20):
                    r = await client.chat([{"role": "user", "content": f"hello {i}"}])
                    assert (r.content, r.prompt_tokens, r.completion_tokens) == ("hi there", 3, 2)
                streamed = await client.chat([{"role": "user", "content": "s"}], stream=True)
                assert streamed.content == "streamed" and streamed.ttft_ms is not None
                await client.chat([{"role": "user", "content": "last"}])
            finally:
                await client.aclose()
            assert len(srv.requests) == 22 and srv.accepted == 1
            assert {q.target for q in srv.requests} == {"/v1/chat/completions"}
            assert {q.header("authorization") for q in srv.requests} == {"Bearer sk-llm"}
            assert [json.loads(q.body)["messages"][0]["content"] for q in srv.requests[:20]] == [
                f"hello {i}" for i in range(20)]
            assert client.totals.calls == 22

    run(main())


# -- known deviations from httpx2 semantics -----------------------------------------------


def test_redirect_does_not_send_the_request_twice() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        if req.target == "/old":
            await conn.send(reply(307, headers=[("Location", "/new"), ("Content-Length", "0")]))
        else:
            await ok(req, conn)

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            r = await c.post(srv.url + "/old", content=b"{}")
            assert r.status_code == 200
            assert [(q.method, q.target) for q in srv.requests] == [("POST", "/old"), ("POST", "/new")]

    run(main())


def test_streamed_request_body_is_framed() -> None:
    async def handler(conn: Conn) -> None:
        head = await conn.reader.readuntil(b"\r\n\r\n")
        body = b""
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if length and b"transfer-encoding" not in head.lower():  # sent whole, with its length: fine too
            body = await conn.reader.readexactly(int(length.group(1)))
        try:
            async with asyncio.timeout(0.3):  # unframed bytes never make a complete chunk
                while b"transfer-encoding: chunked" in head.lower():
                    size = int((await conn.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    data = await conn.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += data[:-2]
        except (ValueError, TimeoutError):
            body = b"<unframed>"
        await conn.send(reply(200, body))

    async def parts() -> Any:
        yield b"hello "
        yield b"world"

    async def main() -> None:
        async with RawServer(handler) as srv, LeanAsyncClient() as c:
            assert (await c.post(srv.url, content=parts())).content == b"hello world"

    run(main())


def test_set_cookie_is_kept_like_httpx2() -> None:
    async def answer(req: Req, conn: Conn) -> None:
        await conn.send(reply(200, (req.header("cookie") or "-").encode(), headers=[("Set-Cookie", "lb=one; Path=/")]))

    async def main() -> None:
        async with RawServer(serve_each(answer)) as srv, LeanAsyncClient() as c:
            await c.get(srv.url)
            assert (await c.get(srv.url)).content == b"lb=one"

    run(main())
