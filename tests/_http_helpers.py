"""A helper for the ``http.server`` test doubles (agents, load targets, faulty servers)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["send_json"]


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


class LocalServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) run in a daemon thread for the
    ``with`` block; subclasses build ``self.httpd`` and call :meth:`_serve`."""

    httpd: Any

    def _serve(self, handler: type[BaseHTTPRequestHandler], *, queue: int = 5) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = queue

        self.httpd = Server(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])
