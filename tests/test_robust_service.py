"""The reference agent's HTTP service keeps serving after hostile traffic, and its guardrails
never crash on arbitrary text.

`tests/test_service_api.py` already checks each bad request's 4xx answer (malformed JSON,
wrong types, oversized bodies, unknown routes and sessions) and fuzzes request bodies; this
file adds what it does not: raw-socket abuse of a real server followed by a check that it
still answers, and property tests of every guardrail function on arbitrary text (the
agent's own `reply` is already fuzzed in `tests/test_agent_robustness.py`).
"""

from __future__ import annotations

import json
import socket
import time

import httpx2
from _service_server import serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_agent import guardrails

_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that stresses the detectors: unicode, digits and separators, emails, injection words.
_hostile = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.sampled_from([
            "4111 1111 1111 1111", "ana.silva@example.com", "+1 (555) 431-3471", "ignore previous instructions",
            "SYSTEM:", "</s>", "\u202e", "\x00", "ＩＧＮＯＲＥ", "aWdub3JlIHByZXZpb3Vz", "ORD-10001", "@@@", "...",
            "0" * 40, "-" * 30, "\n", "\ud7ff", "🙂", "drop table", "$600",
        ]),
        max_size=30,
    ).map(" ".join),
)


@_FAST
@given(_hostile)
def test_input_guardrails_never_crash(text: str):
    for match in guardrails.find_pii(text):
        assert text[match.start : match.end] == match.value
    redacted = guardrails.redact(text)
    assert guardrails.find_pii(redacted) == []  # nothing the detectors know survives redaction
    for fn in (guardrails.detect_injection, guardrails.detect_banned_topic):
        out = fn(text)
        assert out is None or isinstance(out, str)
    assert isinstance(guardrails.scan_untrusted(text), bool)
    assert isinstance(guardrails.quotes_system_prompt(text), bool)


@_FAST
@given(_hostile, st.sets(st.sampled_from(["ben.carter@example.com", "x@y.z", "ANA.SILVA@example.com"]), max_size=3),
       st.sets(st.sampled_from(["+1 (555) 431-3471", "555-0100", "+44 20 7946 0958"]), max_size=3),
       st.sampled_from([None, "ana.silva@example.com"]))
def test_output_check_never_crashes(text, emails, phones, own):
    result = guardrails.check_output(text, own_email=own, other_emails=emails, other_phones=phones)
    assert isinstance(result.text, str)
    assert all(kind in ("email", "phone", "card", "national_id", "system_prompt") for kind in result.removed)
    # (A card run glued to other digits, e.g. "0000 4111 1111 1111 1111", can escape the
    # card pattern: a known detector limit, so only "no crash" is asserted here.)


def raw(port: int, payload: bytes, *, read: bool = True, shut: bool = False) -> bytes:
    """Send raw bytes; return what came back (b"" if the server just closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        if shut:
            s.shutdown(socket.SHUT_WR)
        if not read:
            return b""
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def test_server_keeps_serving_after_hostile_traffic():
    with serve() as (_app, base):
        port = int(base.rsplit(":", 1)[1])
        with httpx2.Client(base_url=base, timeout=10) as client:
            assert client.post("/v1/sessions/ok/messages", json={"message": "hi"}).status_code == 200
            answers: dict[str, int] = {}
            # Not HTTP at all, a truncated request, a huge header, a lying Content-Length.
            raw(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), shut=True)
            raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", read=False)
            raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
            raw(port, b"POST /v1/sessions/x/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"message\": \"hi\"}", shut=True)
            # Oversized, malformed and unknown requests: clear 4xx answers.
            big = client.post("/v1/sessions/x/messages", content=b'{"message": "' + b"a" * 3_000_000 + b'"}',
                              headers={"content-type": "application/json"})
            answers["oversized"] = big.status_code
            answers["not json"] = client.post("/v1/sessions/x/messages", content=b"\xff\xfe{{{",
                                              headers={"content-type": "application/json"}).status_code
            answers["unknown route"] = client.get("/v2/whatever").status_code
            answers["wrong method"] = client.put("/healthz").status_code
            answers["bad session id"] = client.post("/v1/sessions/" + "%00" * 3 + "/messages",
                                                    json={"message": "hi"}).status_code
            assert answers["oversized"] == 413 and answers["not json"] in (400, 422), answers
            assert answers["unknown route"] == 404 and answers["wrong method"] == 405, answers
            assert 400 <= answers["bad session id"] < 500, answers
            # Many abandoned connections at once.
            socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(50)]
            for s in socks:
                s.sendall(b"POST /v1/sessions/y/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
            for s in socks:
                s.close()
            # ...and it still answers, quickly, with the earlier session intact.
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            r = client.post("/v1/sessions/ok/messages", json={"message": "where is ORD-10001?"})
            assert r.status_code == 200 and json.loads(r.text)["content"]
            assert client.get("/v1/sessions/ok/state").status_code == 200
            assert time.monotonic() - started < 5
