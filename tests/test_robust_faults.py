"""Faults of the things under test never break a run, never vanish, and never hang it.

Three 200-conversation runs, each checked against an independent oracle of what was
injected, so the counts must add up exactly:

* a Python agent that raises, hangs or returns junk on a seeded 20% of calls;
* an HTTP agent (a local flaky server on 127.0.0.1) that answers 500 / 429, drops the
  connection, sends malformed JSON or never answers, by a fixed hash of session and turn;
* an LLM-simulated user and LLM judges against the fake OpenAI server failing 20% of calls
  (429, 500, dropped connections, invalid JSON, hangs), with bounded retries.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _http_helpers import send_json

from evalkit.core.results import RunResult
from evalkit.core.transcript import Outcome, StopReason
from evalkit.run.runner import RunConfig, Runner

FLAKY = "evalkit.testing.agents:FlakyAgent"


def scripted_suite(folder: Path, n: int, steps: int = 3, expect: str = "") -> Path:
    lines = ["scenarios:"]
    for i in range(n):
        lines.append(f"  - id: s{i:03d}\n    user:\n      script:")
        lines += [f"        - say: step {k} of {i}" for k in range(steps)]
        if expect:
            lines.append(f"    expect:\n      - {expect}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenarios.yaml").write_text("\n".join(lines) + "\n")
    return folder


def run(config: RunConfig) -> tuple[RunResult, float]:
    started = time.monotonic()
    result = Runner(config).run_sync()
    return result, time.monotonic() - started


def check_run_folder(out: Path, result: RunResult, n: int) -> None:
    """The files agree with the returned run and with each other, exactly."""
    errors = sum(1 for c in result.conversations if c.transcript.outcome == Outcome.error)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_conversations"] == n == len(result.conversations)
    assert summary["n_errors"] == errors
    assert summary["status"] == "complete"
    journal = [json.loads(x) for x in (out / "conversations.jsonl").read_text().splitlines()]
    assert len(journal) == n
    results = pd.read_parquet(out / "results.parquet")
    assert len(results) == n
    assert int(results["error"].notna().sum()) == errors
    assert int((results["outcome"] == "error").sum()) == errors
    keys = set(zip(results["variant"], results["scenario_id"], results["trial"], strict=True))
    assert len(keys) == n  # every conversation exactly once
    verdicts = pd.read_parquet(out / "verdicts.parquet")
    assert len(verdicts) == sum(len(c.verdicts) for c in result.conversations)
    assert int(verdicts["error"].notna().sum()) == sum(
        1 for c in result.conversations for v in c.verdicts if v.error is not None
    )


# -- 1. the Python adapter ---------------------------------------------------------------

def flaky_oracle(seed: int, rate: float, turns: int) -> int | None:
    """The first exchange FlakyAgent misbehaves on (its own generator, replayed), or None."""
    rng = random.Random(f"0:{seed}")
    for turn in range(1, turns + 1):
        if rng.random() < rate:
            return turn
    return None


def test_python_agent_faults_200_conversations(tmp_path: Path):
    suite = scripted_suite(tmp_path / "suite", 50, steps=3, expect="said: {contains: fine}")
    variants = {
        "raises": f"{FLAKY}?mode=raise&rate=0.2",
        "hangs": f"{FLAKY}?mode=hang&rate=0.2",
        "junk": f"{FLAKY}?mode=junk&rate=0.2",
        "healthy": f"{FLAKY}?mode=raise&rate=0",
    }
    out = tmp_path / "run"
    result, wall = run(
        RunConfig(suite=[suite], variants=variants, out=out, concurrency=32, turn_timeout_s=1.0,
                  conversation_timeout_s=10, progress=False, handle_signals=False)
    )
    assert len(result.conversations) == 200
    expected_error = {
        "raises": "agent raised RuntimeError: flaky agent failed on turn {n}",
        "hangs": "no reply within 1s (turn timeout)",
        "junk": "junk reply",
    }
    tally = {"scored": 0, "errors": 0}
    for c in result.conversations:
        t = c.transcript
        rate = 0.0 if t.variant == "healthy" else 0.2
        bad_turn = flaky_oracle(t.seed, rate, 3)
        if bad_turn is None:
            assert t.outcome == Outcome.resolved and t.error is None, (t.variant, t.scenario_id, t.error)
            assert c.passed is True
            assert len(t.agent_turns) == 3
            tally["scored"] += 1
        else:
            assert t.outcome == Outcome.error
            assert t.error is not None and t.error.startswith(f"turn {bad_turn}: ")
            assert expected_error[t.variant].format(n=bad_turn) in t.error, t.error
            assert t.stop_reason == (StopReason.timeout if t.variant == "hangs" else StopReason.agent_error)
            assert len(t.agent_turns) == bad_turn  # the failed turn is recorded, nothing after it
            tally["errors"] += 1
    assert tally["scored"] + tally["errors"] == 200
    assert 40 <= tally["errors"] <= 140  # the injected 20%-per-call faults really happened
    check_run_folder(out, result, 200)
    # ~25 hanging conversations, 32 at a time, 1 s each: a few seconds; generous for loaded CI.
    assert wall < 30, wall
    print(f"\npython adapter: 200 conversations, {tally['scored']} scored, {tally['errors']} errors, {wall:.2f}s")


def test_blocking_agent_threads_do_not_stall_the_run(tmp_path: Path):
    """A sync agent stuck in time.sleep holds a worker thread; the run still ends on time."""
    suite = scripted_suite(tmp_path / "suite", 20, steps=2)
    out = tmp_path / "run"
    result, wall = run(
        RunConfig(suite=[suite], agent=f"{FLAKY}?mode=sync_hang&turns=2&hang_s=1.5", out=out, concurrency=8,
                  turn_timeout_s=0.5, conversation_timeout_s=10, progress=False, handle_signals=False)
    )
    assert len(result.conversations) == 20
    assert all(c.transcript.error and "no reply within 0.5s" in c.transcript.error for c in result.conversations)
    assert all(len(c.transcript.agent_turns) == 2 for c in result.conversations)
    assert wall < 20, wall
    check_run_folder(out, result, 20)


# -- 2. the HTTP adapter against a flaky server --------------------------------------------

ACTIONS = ("ok",) * 14 + ("500", "429", "drop", "malformed", "hang", "error_event")


def action_for(session_id: str, turn: int) -> str:
    digest = hashlib.sha256(f"{session_id}:{turn}".encode()).digest()
    return ACTIONS[digest[0] % len(ACTIONS)]


class FlakyAgentServer:
    """The evalkit HTTP protocol with faults by a fixed hash of (session, turn)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    send_json(self, 200, {"status": "ok"})
                else:
                    send_json(self, 404, {"error": "no end state here"})

            def do_DELETE(self) -> None:
                send_json(self, 404, {"error": "gone"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                session = self.path.split("/")[3]
                turn = int(body["turn"])
                action = action_for(session, turn)
                with fake.lock:
                    fake.log.append((session, turn, action))
                if action == "ok":
                    send_json(self, 200, {"content": f"answer {turn}"})
                elif action in ("500", "429"):
                    send_json(self, int(action), {"error": f"injected {action}"}, {"Retry-After": "1"})
                elif action == "malformed":
                    send_json(self, 200, b'{"content": "cut off')
                elif action == "error_event":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(b'event: token\ndata: {"text": "hel"}\n\nevent: error\ndata: {"message": "boom"}\n\n')
                else:  # drop, or hang until the client gives up (then drop)
                    if action == "hang":
                        fake.stop.wait(10)
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256  # 32 conversations connect at once; the default backlog is 5

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FlakyAgentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


HTTP_ERRORS = {
    "500": "HTTP 500: injected 500",
    "429": "HTTP 429: injected 429",
    "drop": "agent raised AgentHTTPError: RemoteProtocolError",
    "malformed": "reply is not JSON",
    "hang": "no reply within 2s (turn timeout)",
    "error_event": "agent streamed an error: boom",
}


def test_http_agent_faults_200_conversations(tmp_path: Path):
    suite = scripted_suite(tmp_path / "suite", 100, steps=3)
    out = tmp_path / "run"
    with FlakyAgentServer() as server:
        result, wall = run(
            RunConfig(suite=[suite], agent=server.url, out=out, trials=2, concurrency=32, turn_timeout_s=2.0,
                      conversation_timeout_s=20, progress=False, handle_signals=False, run_id="flaky-http")
        )
        log = list(server.log)
    assert len(result.conversations) == 200
    by_session: dict[str, list[tuple[int, str]]] = {}
    for session, turn, action in log:
        by_session.setdefault(session, []).append((turn, action))
    counts = {"scored": 0, "errors": 0}
    seen_kinds: set[str] = set()
    for c in result.conversations:
        t = c.transcript
        session = f"flaky-http-{t.scenario_id}-{t.trial}"
        played = sorted(by_session.pop(session))
        # Oracle: the first injected fault ends the conversation; no turn is sent after it.
        first_bad = next(((turn, a) for turn, a in [(k, action_for(session, k)) for k in (1, 2, 3)] if a != "ok"), None)
        assert played == [(k, action_for(session, k)) for k in range(1, (first_bad or (3, ""))[0] + 1)]
        assert len(t.agent_turns) == len(played)
        if first_bad is None:
            assert t.error is None and t.outcome == Outcome.resolved
            counts["scored"] += 1
        else:
            turn, action = first_bad
            seen_kinds.add(action)
            assert t.outcome == Outcome.error
            assert t.error is not None and t.error.startswith(f"turn {turn}: "), t.error
            assert HTTP_ERRORS[action] in t.error, (action, t.error)
            counts["errors"] += 1
    assert by_session == {}, "the server saw sessions the run did not record"
    assert counts["scored"] + counts["errors"] == 200
    assert seen_kinds == set(HTTP_ERRORS), seen_kinds  # every kind of fault was exercised
    check_run_folder(out, result, 200)
    # ~30 hanging conversations, 32 at a time, 2 s each, plus the rest: bounded, generous for CI.
    assert wall < 60, wall
    print(f"\nhttp adapter: 200 conversations, {counts['scored']} scored, {counts['errors']} errors, {wall:.2f}s")


# -- 3. the model endpoint failing for the LLM user and the LLM judges -----------------------

PERSONA_SUITE = """\
scenarios:
{items}
"""


def persona_suite(folder: Path, n: int) -> Path:
    items = []
    for i in range(n):
        items.append(
            f"  - id: p{i:03d}\n"
            f"    user:\n"
            f"      persona:\n"
            # A deterministic done_when: goal claims are checked without a judge-model call, so
            # every judge-model failure below is a verdict's.
            f"        goal: {{description: Ask about order {i}, intent: track_order,\n"
            f"               done_when: [{{said: {{contains: order}}}}]}}\n"
            f"        max_turns: 4\n"
            f"    expect:\n"
            f"      - rubric: {{criteria: The agent answers.}}\n"
            f"      - llm_csat\n"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text("turn_timeout_s: 2\n")
    (folder / "personas.yaml").write_text(PERSONA_SUITE.format(items="".join(items)))
    return folder


def customer(req: Any) -> dict[str, str]:
    said = sum(1 for m in req.messages if m["role"] == "assistant")
    if said < 2:
        return {"message": f"Where is my order? ({said})", "end": "continue"}
    return {"message": "Thanks!", "end": "goal_met"}


@pytest.fixture
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("EVALKIT_MODEL", "EVALKIT_JUDGE_MODEL", "EVALKIT_SIMULATOR_MODEL", "OPENAI_BASE_URL",
                "EVALKIT_MAX_RETRIES", "EVALKIT_TIMEOUT", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def test_model_endpoint_failing_20_percent(tmp_path: Path, no_model_env: None):
    from evalkit.llm.client import LLMClient
    from evalkit.llm.clients import ModelClients
    from evalkit.testing.fake_openai import FakeOpenAIServer, Rule

    suite = persona_suite(tmp_path / "suite", 200)
    max_retries = 1
    rules = [
        Rule(customer, schema="customer_turn"),
        Rule(lambda req: {"reason": "answered", "score": 5}, schema="rubric_verdict"),
        Rule(lambda req: {"reason": "happy", "score": 4}, schema="llm_csat_verdict"),
    ]
    with FakeOpenAIServer(rules=rules, failure_rate=0.2, seed=7, hang_s=5.0,
                          failure_kinds=("429", "500", "503", "drop", "invalid_json", "hang")) as srv:
        def client(role: str) -> LLMClient:
            # 2 s per attempt, one retry: a hang costs at most 4 s of one conversation.
            settings = srv.settings(timeout=2.0, max_retries=max_retries, max_concurrency=64)
            return LLMClient(settings, role=role, rng=random.Random(1))

        llm = ModelClients(simulator=client("simulator"), judge=client("judge"))
        out = tmp_path / "run"
        result, wall = run(
            RunConfig(suite=[suite], agent="evalkit.testing.agents:EchoAgent", out=out, simulator="llm", llm=llm,
                      concurrency=32, progress=False, handle_signals=False, close_llm=True)
        )
        requests = len(srv.chat_requests)

    assert len(result.conversations) == 200
    sim, judge = llm.simulator.totals, llm.judge.totals  # type: ignore[union-attr]
    errors = [c for c in result.conversations if c.transcript.outcome == Outcome.error]
    scored = [c for c in result.conversations if c.transcript.outcome != Outcome.error]
    assert len(errors) + len(scored) == 200
    # Every conversation that errored did so because the simulator's model failed for good, and
    # each such failure ended exactly one conversation.
    for c in errors:
        assert c.transcript.stop_reason == StopReason.simulator_error, c.transcript.error
        assert "simulator" in (c.transcript.error or "") and "after 2 attempts" in (c.transcript.error or "")
    assert len(errors) == sim.failed_calls
    # Judge failures are verdicts with an error, one per failed judge call, never dropped.
    judge_errors = [v for c in result.conversations for v in c.verdicts if v.error is not None]
    assert len(judge_errors) == judge.failed_calls
    assert all(v.passed is None and v.judge in ("rubric", "llm_csat") for v in judge_errors)
    for c in result.conversations:
        assert {v.judge for v in c.verdicts} >= {"rubric", "llm_csat"}  # every conversation scored
    # Retries are bounded: every HTTP request the server saw is accounted for by a call, a
    # retry or a failed call's attempts (a request the client abandoned before the server read
    # it, on a loaded machine, is the only way to see fewer), and no call made more than
    # max_retries + 1 attempts.
    attempts = sum(t.calls + t.retries + t.failed_calls * (max_retries + 1) for t in (sim, judge))
    assert sum(t.calls + t.failed_calls for t in (sim, judge)) < requests <= attempts, (requests, sim, judge)
    assert all(t.retries <= t.calls * max_retries for t in (sim, judge))
    assert sim.failed_calls + judge.failed_calls > 0 and sim.retries + judge.retries > 0
    check_run_folder(out, result, 200)
    usage = json.loads((out / "manifest.json").read_text())["extra"]["llm_usage"]
    assert usage["judge"]["failed_calls"] == judge.failed_calls
    assert wall < 60, wall
    print(f"\nmodel faults: 200 conversations, {len(scored)} scored, {len(errors)} errors, "
          f"{len(judge_errors)} judge failures, {requests} requests "
          f"({sim.retries + judge.retries} retries), {wall:.2f}s")
