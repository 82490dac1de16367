"""A scripted raw-bytes HTTP/1.1 server on 127.0.0.1 for the HTTP-layer tests.

It runs inside the test's own event loop (``async with RawServer(handler) as srv``), so a
test controls the framing byte for byte and can synchronise with the client through
``asyncio.Event``\\ s. It counts accepted connections and records every request it read.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

__all__ = ["Conn", "RawServer", "Req", "chunked", "reply", "self_signed_cert", "serve_each"]


@dataclass
class Req:
    """One request as the server read it (header names lowercased, in order)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    conn: int  # the 1-based number of the connection it came on

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


@dataclass
class Conn:
    """The server side of one accepted connection."""

    number: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: RawServer
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # set once the client's EOF was read

    async def read_request(self) -> Req | None:
        """The next request on this connection; None when the client closed it first."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.gone.set()
            return None
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = int(dict(headers).get("content-length", "0"))
        body = await self.reader.readexactly(length) if length else b""
        req = Req(method, target, version, headers, body, self.number)
        self.server.requests.append(req)
        return req

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_closed_by_client(self, timeout: float = 2.0) -> bool:
        """Read (and drop) whatever comes until the client closes its end: True when it did
        within ``timeout``. For handlers; tests outside the handler use :meth:`client_gone`."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass  # a reset is a close too
        self.gone.set()
        return True

    async def client_gone(self, timeout: float = 2.0) -> bool:
        """True once a handler reading this connection saw the client close it."""
        try:
            async with asyncio.timeout(timeout):
                await self.gone.wait()
        except TimeoutError:
            return False
        return True


Handler = Callable[[Conn], Awaitable[None]]


class RawServer:
    """``asyncio.start_server`` on 127.0.0.1 with a per-connection ``handler(conn)``.

    The connection is closed when the handler returns. ``accepted`` counts connections,
    ``requests`` holds what :meth:`Conn.read_request` read, ``conns`` every connection (each
    ``Conn.gone`` is set once its handler saw the client hang up).
    """

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.accepted = 0
        self.requests: list[Req] = []
        self.conns: list[Conn] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = Conn(self.accepted, reader, writer, self)
        self.conns.append(conn)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away: fine for these tests
        except asyncio.CancelledError:
            pass  # shut down by __aexit__ (asyncio logs a cancelled connection task as an error)
        finally:
            self._tasks.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
                pass


def reply(status: int = 200, body: bytes = b"", *, reason: str = "OK", headers: list[tuple[str, str]] | None = None,
          length: bool = True, version: str = "HTTP/1.1") -> bytes:
    """A response head (plus body); ``length=False`` leaves Content-Length out."""
    hs = list(headers or [])
    if length and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
        hs.append(("Content-Length", str(len(body))))
    head = f"{version} {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    return head.encode("latin-1") + body


def chunked(*parts: bytes, ext: str = "", trailers: str = "") -> bytes:
    """A chunked body of ``parts``; ``ext`` is a chunk extension, ``trailers`` raw trailer lines."""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext.encode(), p) for p in parts)
    return out + b"0\r\n" + trailers.encode() + b"\r\n"


def serve_each(answer: Callable[[Req, Conn], Awaitable[bool | None]]) -> Handler:
    """A handler that reads requests one by one and lets ``answer`` write each reply;
    ``answer`` returning False ends (closes) the connection."""

    async def handler(conn: Conn) -> None:
        while (req := await conn.read_request()) is not None:
            if await answer(req, conn) is False:
                return

    return handler


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: ``(cert.pem, key.pem)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    """Answer an ``http.server`` request with ``payload`` as JSON (bytes are sent as they are,
    for deliberately broken bodies) and a Content-Length."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)
