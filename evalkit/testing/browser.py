"""A tiny headless-Chromium driver over the Chrome DevTools Protocol, for tests.

No download and no third-party package: Chromium is started with
``--remote-debugging-port=0`` (it picks a free port and writes it to
``DevToolsActivePort`` in its profile folder), and this module speaks the DevTools
websocket with a minimal RFC 6455 client on top of the standard library.

Typical use in a test::

    with Browser.launch() as browser:
        page = browser.new_page()
        page.navigate("http://127.0.0.1:8000/")
        page.wait_for("document.querySelector('#chat') !== null")
        page.evaluate("document.title")
        assert not page.console_errors

Only 127.0.0.1 is ever contacted. ``Browser.available()`` tells a test whether to skip.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "BrowserError", "Browser", "Page", "chromium_path"]

CHROMIUM = "/usr/bin/chromium"

# Flags that keep a headless Chromium quiet, offline and reproducible in CI containers.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--remote-allow-origins=*",
)


class BrowserError(RuntimeError):
    """Chromium could not be started, a DevTools call failed, or a wait timed out."""


def chromium_path() -> str | None:
    """The Chromium executable to use: ``$EVALKIT_CHROMIUM``, ``/usr/bin/chromium``, or None."""
    env = os.environ.get("EVALKIT_CHROMIUM")
    if env and Path(env).exists():
        return env
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return None


class _WebSocket:
    """A minimal blocking websocket client (text frames only), enough for DevTools."""

    def __init__(self, url: str, timeout: float) -> None:
        if not url.startswith("ws://"):
            raise BrowserError(f"unsupported websocket url {url!r}")
        hostport, _, path = url[len("ws://") :].partition("/")
        host, _, port = hostport.partition(":")
        self._sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode())
        self._buf = b""
        head = self._read_until(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise BrowserError(f"websocket handshake refused: {head[:200]!r}")

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise BrowserError("DevTools connection closed")
            self._buf += chunk
        head, _, self._buf = self._buf.partition(marker)
        return head

    def send(self, text: str) -> None:
        payload = text.encode()
        header = bytearray([0x81])  # FIN + text frame
        n = len(payload)
        # Client frames must be masked (RFC 6455 5.3).
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header.append(0x80 | 126)
            header += struct.pack("!H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(bytes(header) + mask + masked)

    def _frame(self) -> tuple[int, bool, bytes] | None:
        """(opcode, fin, payload) of the first complete frame in the buffer, consuming it;
        None when the buffer does not hold a whole frame yet (nothing is consumed, so a
        timeout while waiting for the rest never desynchronises the stream)."""
        buf = self._buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            (n,) = struct.unpack("!H", buf[2:4])
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            (n,) = struct.unpack("!Q", buf[2:10])
            pos = 10
        mask = None
        if b1 & 0x80:
            if len(buf) < pos + 4:
                return None
            mask, pos = buf[pos : pos + 4], pos + 4
        if len(buf) < pos + n:
            return None
        data = buf[pos : pos + n]
        self._buf = buf[pos + n :]
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return b0 & 0x0F, bool(b0 & 0x80), data

    def recv(self, timeout: float) -> str:
        """The next complete text message (control frames handled transparently);
        raises ``TimeoutError`` when none arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        while True:
            frame = self._frame()
            if frame is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no DevTools message in time")
                self._sock.settimeout(left)
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise BrowserError("DevTools connection closed")
                self._buf += chunk
                continue
            opcode, fin, data = frame
            if opcode == 0x8:
                raise BrowserError("DevTools connection closed")
            if opcode == 0x9:  # ping -> pong (masked, as client frames must be)
                self._sock.sendall(bytes([0x8A, 0x80 | len(data)]) + b"\0\0\0\0" + data)
                continue
            if opcode == 0xA:
                continue
            parts.append(data)
            if fin:
                return b"".join(parts).decode("utf-8", errors="replace")

    def close(self) -> None:
        try:
            self._sock.sendall(bytes([0x88, 0x80]) + b"\0\0\0\0")
        except OSError:
            pass
        self._sock.close()


@dataclass
class Page:
    """One browser tab, driven over its own DevTools websocket."""

    target_id: str
    _ws: _WebSocket
    timeout: float = 15.0
    console_errors: list[str] = field(default_factory=list)
    console_messages: list[str] = field(default_factory=list)
    _next_id: int = 0
    _events: list[dict[str, Any]] = field(default_factory=list)

    # -- protocol ---------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Send one DevTools command and return its ``result`` (raises on a protocol error)."""
        self._next_id += 1
        msg_id = self._next_id
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"DevTools call {method} timed out")
            try:
                msg = json.loads(self._ws.recv(left))
            except TimeoutError:
                raise BrowserError(f"DevTools call {method} timed out") from None
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error'].get('message', msg['error'])}")
                return msg.get("result", {})
            self._on_event(msg)

    def _on_event(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        params = msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console_messages.append(f"{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                self.console_errors.append(text)
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception", {})
            self.console_errors.append(exc.get("description") or details.get("text", "exception"))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.console_errors.append(f"{entry.get('source')}: {entry.get('text')}")
        self._events.append(msg)

    def drain(self, wait: float = 0.2) -> None:
        """Read the events Chromium sent since the last call (console messages, exceptions),
        until none arrives for ``wait`` seconds. Call before asserting on ``console_errors``."""
        while True:
            try:
                msg = json.loads(self._ws.recv(wait))
            except TimeoutError:
                return
            self._on_event(msg)

    def events(self, method: str | None = None) -> list[dict[str, Any]]:
        """Events received so far (optionally only one method), oldest first."""
        return [e for e in self._events if method is None or e.get("method") == method]

    # -- conveniences -----------------------------------------------------------------
    def navigate(self, url: str, *, wait_load: bool = True) -> None:
        """Open ``url`` and (by default) wait until ``document.readyState`` is complete."""
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        if wait_load:
            self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        """Evaluate a JavaScript expression in the page and return its JSON value."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            desc = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {desc}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None, interval: float = 0.05) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        last: Any = None
        while time.monotonic() < deadline:
            last = self.evaluate(expression)
            if last:
                return last
            time.sleep(interval)
        raise BrowserError(f"timed out waiting for {expression!r} (last value {last!r})")

    def type_text(self, selector: str, text: str) -> None:
        """Focus an input and type into it as a user would (real key events via CDP)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        """Click an element (dispatched in the page)."""
        found = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        if not found:
            raise BrowserError(f"no element matches {selector!r}")

    def press_enter(self) -> None:
        """Send an Enter key press to the focused element."""
        for kind in ("keyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                 **({"text": "\r"} if kind == "keyDown" else {})},
            )

    def screenshot(self, path: str | Path) -> Path:
        """Save a PNG screenshot of the viewport."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        self._ws.close()


@dataclass
class Browser:
    """A headless Chromium process with its own throwaway profile."""

    process: subprocess.Popen[bytes]
    port: int
    profile: Path
    timeout: float = 15.0
    _pages: list[Page] = field(default_factory=list)

    @staticmethod
    def available() -> bool:
        """True when a Chromium executable is installed (tests skip otherwise)."""
        return chromium_path() is not None

    @classmethod
    def launch(
        cls, *, executable: str | None = None, extra_args: Sequence[str] = (), timeout: float = 15.0
    ) -> Browser:
        """Start headless Chromium and wait until its DevTools endpoint answers."""
        exe = executable or chromium_path()
        if exe is None:
            raise BrowserError(f"Chromium not found (looked at $EVALKIT_CHROMIUM and {CHROMIUM})")
        profile = Path(tempfile.mkdtemp(prefix="evalkit-chromium-"))
        args = [exe, *_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                "--window-size=1200,900", *extra_args, "about:blank"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        port = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                shutil.rmtree(profile, ignore_errors=True)
                raise BrowserError(f"Chromium exited with code {proc.returncode} at start")
            try:
                first = port_file.read_text().splitlines()[0]
                port = int(first)
                break
            except (OSError, IndexError, ValueError):
                time.sleep(0.05)
        if not port:
            proc.kill()
            proc.wait()
            shutil.rmtree(profile, ignore_errors=True)
            raise BrowserError("Chromium did not open its DevTools port in time")
        return cls(process=proc, port=port, profile=profile, timeout=timeout)

    def _http(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (127.0.0.1 only)
            return json.loads(resp.read().decode())

    def new_page(self, url: str = "about:blank") -> Page:
        """Open a new tab and connect to it (console and exceptions are collected)."""
        target = self._http("/json/new?" + urllib.parse.quote(url, safe=""), method="PUT")
        page = Page(target_id=target["id"], _ws=_WebSocket(target["webSocketDebuggerUrl"], self.timeout),
                    timeout=self.timeout)
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            page.call(domain)
        self._pages.append(page)
        return page

    def close(self) -> None:
        """Close every tab, stop Chromium and delete its profile."""
        for page in self._pages:
            try:
                page.close()
            except OSError:
                pass
        self._pages.clear()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
