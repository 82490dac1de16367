"""The fake OpenAI-compatible server in its own process, for the LLM benchmarks.

Its CPU (JSON, HTTP, threads) then runs outside the harness being measured, as a hosted
model would. Answers:

- ``customer_turn`` (evalkit's LLM user): ``continue`` until the user has said
  ``--user-turns`` things, then ``goal_met``; with a scripted opening that is exactly
  ``user_turns`` simulator calls for ``user_turns`` user messages;
- any other JSON-schema request: a valid instance of the schema (judges, deepeval);
- deepeval's prompts (no schema; they ask for JSON in words): the JSON keys they name;
- everything else: a short text reply (the agent).

    python benchmarks/_fake_llm.py --latency-ms 50      # prints the port, serves until stdin closes
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from evalkit.testing.fake_openai import FakeOpenAIServer, RecordedRequest, Reply, Rule


def _customer(user_turns: int) -> Any:
    def answer(req: RecordedRequest) -> dict[str, str]:
        said = sum(1 for m in req.messages if m.get("role") == "assistant")
        end = "goal_met" if said >= user_turns else "continue"
        return {"message": f"customer message {said + 1}: where is my order ORD-10001?", "end": end}

    return answer


# deepeval asks for JSON in the prompt text (``Example JSON: {...}``); answer with the keys it
# names. Its conversation simulator and its conversational metrics need only these shapes.
_DEEPEVAL_SHAPES: list[tuple[str, Any]] = [
    (r'"scenario"', {"scenario": "A customer asks where their order is."}),
    (r'"simulated_input"', {"simulated_input": "Where is my order ORD-10001?"}),
    (r'"is_complete"', {"is_complete": False, "reason": "The order has not been located yet."}),
    (r'"verdicts"', {"verdicts": [{"verdict": "yes", "reason": "relevant"}]}),
    (r'"reason"', {"reason": "The assistant answered every turn relevantly."}),
]


def _deepeval(req: RecordedRequest) -> Reply:
    text = req.all_text()
    for pattern, value in _DEEPEVAL_SHAPES:
        if re.search(pattern, text):
            return Reply(json=value)
    return Reply(content="Your order ORD-10001 shipped yesterday and arrives tomorrow.")


def make_server(latency_s: float, user_turns: int) -> FakeOpenAIServer:
    return FakeOpenAIServer(
        latency_s=latency_s,
        rules=[
            Rule(_customer(user_turns), schema="customer_turn"),
            Rule(_schema_answer, match=lambda r: r.schema is not None),
            Rule(_deepeval, match=lambda r: "json" in r.all_text().lower()),
        ],
        default=lambda r: Reply(content="Your order ORD-10001 shipped yesterday and arrives tomorrow."),
    )


def _schema_answer(req: RecordedRequest) -> Reply:
    from evalkit.testing.fake_openai import example_for_schema

    value = example_for_schema(req.schema or {})
    if isinstance(value, dict) and "is_complete" in value:
        value["is_complete"] = False  # deepeval's stopping check: keep the user talking
    return Reply(json=value)


@contextmanager
def fake_llm(latency_ms: float, user_turns: int = 6, stats: dict[str, int] | None = None) -> Iterator[str]:
    """Start the server process; yields its ``base_url``; stops it on exit and then puts the
    number of chat requests it answered in ``stats["calls"]``."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--latency-ms", str(latency_ms), "--user-turns", str(user_turns)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            raise SystemExit("the fake model server did not start")
        yield json.loads(line)["base_url"]
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            tail = proc.stdout.read() if proc.stdout is not None else ""
            if stats is not None and tail.strip():
                stats.update(json.loads(tail))
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    from evalkit.testing import fake_openai

    # Keep-alive, as every hosted endpoint does (the test double speaks HTTP/1.0 and closes
    # each connection, which would charge a TCP connect per call to the harness). Every
    # answer here is non-streaming and carries a Content-Length, so HTTP/1.1 is safe.
    fake_openai._Handler.protocol_version = "HTTP/1.1"
    # And no Nagle: headers and body are two writes; without TCP_NODELAY a kept-alive
    # connection waits ~40 ms for the delayed ACK before the body goes out.
    fake_openai._Handler.disable_nagle_algorithm = True
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--user-turns", type=int, default=6)
    args = parser.parse_args()
    with make_server(args.latency_ms / 1000, args.user_turns) as server:
        print(json.dumps({"base_url": server.base_url}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)
        print(json.dumps({"calls": len(server.chat_requests)}), flush=True)


if __name__ == "__main__":
    main()
