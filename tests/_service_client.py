"""Clients for the reference agent's service that behave like a well-mannered front end (tests only).

The service answers a session's first message with a ``Session-Token`` header and wants it
back on every later call; :class:`TokenJar` does that for any ``httpx`` client (and so for
FastAPI's ``TestClient``), keyed by session id, so tests about something else read as
plain requests. Tests of the token itself use clients without a jar.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from reference_agent.service import SESSION_TOKEN_HEADER

# The key tests use when they play a front end that signed the customer in.
FRONT_END_KEY = "test-front-end-key"
FRONT_END = {"Authorization": f"Bearer {FRONT_END_KEY}"}

_SESSION_PATH = re.compile(r"/v1/sessions/([^/]+)")


class TokenJar:
    """Remembers each session id's token and sends it back (httpx event hooks)."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def install(self, client: httpx.Client | httpx.AsyncClient) -> None:
        if isinstance(client, httpx.AsyncClient):
            async def on_request(request: httpx.Request) -> None:
                self._add(request)

            async def on_response(response: httpx.Response) -> None:
                self._keep(response)

            client.event_hooks = {"request": [on_request], "response": [on_response]}
        else:
            client.event_hooks = {"request": [self._add], "response": [self._keep]}

    def _sid(self, url: httpx.URL) -> str | None:
        m = _SESSION_PATH.match(url.path)
        return m.group(1) if m else None

    def _add(self, request: httpx.Request) -> None:
        sid = self._sid(request.url)
        if sid in self.tokens and SESSION_TOKEN_HEADER not in request.headers:
            request.headers[SESSION_TOKEN_HEADER] = self.tokens[sid]

    def _keep(self, response: httpx.Response) -> None:
        sid = self._sid(response.request.url)
        token = response.headers.get(SESSION_TOKEN_HEADER)
        if sid is not None and token:
            self.tokens[sid] = token


def service_client(app: Any, *, front_end: bool = True, **kwargs: Any) -> TestClient:
    """A ``TestClient`` on ``http://localhost`` (an allowed Host) that keeps session tokens;
    ``front_end``: send the identity key (the app must be built with ``identity_key=FRONT_END_KEY``)."""
    headers = dict(FRONT_END) if front_end else {}
    client = TestClient(app, base_url="http://localhost", headers=headers, **kwargs)
    TokenJar().install(client)
    return client
