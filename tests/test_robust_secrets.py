"""API keys and Authorization headers never reach any artifact, log, output or error message.

A full run through every model path (LLM-simulated user, an ``openai-chat`` agent, LLM
judges) with two fake keys, against the fake server failing a share of calls and a second
server that echoes the ``Authorization`` header back in its error messages (as some
proxies do). Then report, gate, compare and score on the run. Every byte written under the
test folder, everything printed, every log record and every recorded error is searched.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from _http_helpers import LocalServer
from _robust_helpers import cli3

from evalkit.testing.fake_openai import FakeOpenAIServer, Rule

KEY = "sk-test-SECRET123-q7Zx9Kp2Lm4Vb8Nc"
JUDGE_KEY = "sk-judge-SECRET456-Wd3Rt6Yh1Uj5Gf0E"
# What must never appear: each key, and any long-enough piece of one.
NEEDLES = [KEY, JUDGE_KEY, "SECRET123", "SECRET456", KEY[-12:], JUDGE_KEY[-12:]]

SUITE = """\
scenarios:
{items}
"""


class EchoingErrorServer(LocalServer):
    """An OpenAI-compatible endpoint that fails every call and puts the caller's
    Authorization header (and API key) into its error message."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                outer.seen.append(auth)
                status = 401 if len(outer.seen) % 2 else 500
                body = json.dumps({"error": {
                    "message": f"Incorrect API key provided: {auth.removeprefix('Bearer ')} "
                               f"(header was 'Authorization: {auth}', api_key={auth[7:]})",
                    "type": "invalid_request_error", "code": "invalid_api_key",
                }}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler, queue=256)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def customer(req: Any) -> dict[str, str]:
    said = sum(1 for m in req.messages if m["role"] == "assistant")
    if said < 2:
        return {"message": f"My card is 4111 1111 1111 1111, where is my order? ({said})", "end": "continue"}
    return {"message": "Thanks!", "end": "goal_met"}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture
def log_capture() -> Iterator[Capture]:
    """Every log record at DEBUG from evalkit, openai and httpx2."""
    handler = Capture()
    loggers = [logging.getLogger(n) for n in ("", "evalkit", "openai", "httpx2", "httpcore2")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)



def leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


def test_no_secret_in_any_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_capture: Capture):
    for var in ("EVALKIT_MODEL", "EVALKIT_BASE_URL", "OPENAI_BASE_URL", "EVALKIT_SIMULATOR_MODEL",
                "EVALKIT_AGENT_MODEL", "EVALKIT_CACHE", "EVALKIT_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("EVALKIT_JUDGE_API_KEY", JUDGE_KEY)
    monkeypatch.setenv("EVALKIT_MAX_RETRIES", "1")
    monkeypatch.setenv("EVALKIT_TIMEOUT", "3")
    suite = tmp_path / "suite"
    suite.mkdir()
    items = "".join(
        f"  - id: s{i}\n    user:\n      persona:\n        goal: {{description: Track order {i}, intent: track_order}}\n"
        f"        max_turns: 3\n    expect:\n      - rubric: {{criteria: The agent helps.}}\n      - llm_csat\n"
        f"      - no_pii_leak\n"
        for i in range(12)
    )
    (suite / "s.yaml").write_text(SUITE.format(items=items))
    out, cache, cmp = tmp_path / "run", tmp_path / "cache", tmp_path / "cmp"
    printed: list[str] = []
    with FakeOpenAIServer(rules=[Rule(customer, schema="customer_turn")], failure_rate=0.2, seed=3,
                          failure_kinds=("429", "500", "401", "drop", "invalid_json")) as srv, \
            EchoingErrorServer() as echo:
        monkeypatch.setenv("EVALKIT_JUDGE_BASE_URL", echo.base_url)
        code, o, e = cli3("run", str(suite), "--out", str(out), "--model", "fake-model", "--base-url", srv.base_url,
                         "--simulator", "llm", "--agent", "openai-chat:fake-model", "--cache-dir", str(cache),
                         "--no-progress", "--no-preflight")  # the judge endpoint is broken on purpose
        printed += [o, e]
        assert code == 0, e
        # The pre-flight refuses that judge endpoint, and never prints the key it sent.
        code, o, e = cli3("run", str(suite), "--out", str(tmp_path / "refused"), "--model", "fake-model",
                          "--base-url", srv.base_url, "--agent", "openai-chat:fake-model", "--no-progress")
        printed += [o, e]
        assert code == 2 and "refused the API key for the judge model" in e, e
        # The keys really were sent: the test would be empty otherwise. The openai-chat agent
        # followed --base-url too (it used to go to api.openai.com with the key).
        assert {r.headers.get("authorization") for r in srv.chat_requests} == {f"Bearer {KEY}"}
        assert any(not r.schema for r in srv.chat_requests), "the agent's own calls reached the fake server"
        assert os.environ.get("EVALKIT_BASE_URL") is None  # the flag did not leak into the environment
        assert echo.seen and set(echo.seen) == {f"Bearer {JUDGE_KEY}"}

    for args in (
        ["report", str(out)],
        ["gate", str(out), "--min", "task_completion_rate=0.99"],
        ["compare", str(out), str(out), "--out", str(cmp)],
        ["score", str(out), "--out", str(tmp_path / "rescored"), "--scenarios", str(suite)],
    ):
        code, o, e = cli3(*args)
        printed += [o, e]
        assert code in (0, 1), (args, e)

    run = json.loads((out / "summary.json").read_text())
    assert run["n_conversations"] == 12
    rows = [json.loads(x) for x in (out / "conversations.jsonl").read_text().splitlines()]
    judge_errors = [v["error"] for r in rows for v in r["verdicts"] if v.get("error")]
    assert judge_errors, "the echoing judge endpoint should have failed every judge call"
    assert any("***" in err for err in judge_errors), judge_errors[:3]  # scrubbed, still informative
    assert any("401" in err for err in judge_errors) and any("500" in err for err in judge_errors)

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"manifest.json", "conversations.jsonl", "results.parquet", "verdicts.parquet", "summary.json",
            "report.html", "junit.xml", "summary.md", "gate.json"} <= names
    assert any(p.is_relative_to(cache) for p in files), "the response cache was written"
    assert any(p.is_relative_to(cmp) for p in files)
    for p in files:
        data = p.read_bytes()
        found = [n for n in NEEDLES if n.encode() in data]
        assert not found, f"{p.relative_to(tmp_path)} contains {found}"
    for text in printed + log_capture.lines:
        assert not leaks(text), (leaks(text), text[:500])
    assert any("HTTP Request" in line for line in log_capture.lines)  # httpx2 did log: and kept quiet
    assert not any("gaierror" in line or "openai.com" in line for line in log_capture.lines)  # loopback only


def test_errors_and_reprs_never_show_keys(monkeypatch: pytest.MonkeyPatch):
    """Settings, clients and model errors: repr, str, dumps and exception text."""
    import asyncio

    from evalkit.llm.client import LLMClient
    from evalkit.llm.errors import ModelCallError
    from evalkit.llm.settings import ModelRoles

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    roles = ModelRoles.resolve(model="m", base_url="http://127.0.0.1:9/v1")
    assert roles.judge is not None
    for text in (repr(roles), str(roles), roles.model_dump_json(), json.dumps(roles.describe()), repr(roles.judge)):
        assert not leaks(text), text
    err = ModelCallError(f"boom Authorization: Bearer {KEY} and api_key={JUDGE_KEY} and {KEY[:20]}...")
    assert not leaks(str(err)) and not leaks(repr(err))

    with EchoingErrorServer() as echo:
        client = LLMClient(roles.judge.model_copy(update={"base_url": echo.base_url, "max_retries": 1,
                                                            "backoff_s": 0.0}), role="judge")

        async def call() -> str:
            try:
                await client.chat([{"role": "user", "content": "hi"}])
            except ModelCallError as exc:
                return f"{exc} {exc!r} {exc.args}"
            finally:
                await client.aclose()
            return ""

        text = asyncio.run(call())
    assert "401" in text and not leaks(text), text
