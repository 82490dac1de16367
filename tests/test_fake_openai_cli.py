"""``python -m evalkit.testing.fake_openai`` serves until stopped, and its default answers let
evalkit's LLM user and judges run a plausible conversation (the README's one-minute recipe)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from evalkit.testing.fake_openai import FAKE_REASON, FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalkit.testing.fake_openai", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("fake OpenAI-compatible server on http://127.0.0.1:"), line
    assert "Ctrl-C stops it" in line
    return proc, line.split(" on ", 1)[1].split(" ", 1)[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_module_prints_its_url_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    proc, url = _start()
    try:
        with urllib.request.urlopen(url + "/models", timeout=5) as resp:
            assert [m["id"] for m in json.load(resp)["data"]] == ["fake-model"]
        body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}).encode()
        req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.load(resp)["choices"][0]["message"]["content"] == "fake reply to: hi"
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == "stopped after 1 chat request\n" and err == ""


def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "evalkit.testing.fake_openai", "--port", str(port)],
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"fake_openai: error: cannot listen on 127.0.0.1:{port}: ")
    assert proc.stderr.count("\n") == 1


def test_try_llm_recipe_runs_as_the_readme_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README recipe: the fake server, then `evalkit run examples/try-llm --simulator llm
    --model fake-model --base-url URL`. Customers say plausible things (never "fake"), the
    goals are met, and the three LLM judges score every conversation with a reason that
    admits no model judged."""
    from evalkit.cli import main

    for key in list(os.environ):
        if key.startswith(("EVALKIT_", "OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    with FakeOpenAIServer() as srv, pytest.raises(SystemExit) as exc:
        main(["run", str(ROOT / "examples" / "try-llm"), "--simulator", "llm", "--model", "fake-model",
              "--base-url", srv.base_url, "--out", "runs/try-llm", "--no-progress"])
    assert exc.value.code == 0
    assert "default  3       3       0       0      100.0%       100.0%" in out.getvalue()
    lines = [json.loads(x) for x in (tmp_path / "runs" / "try-llm" / "conversations.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for conv in lines:
        t = conv["transcript"]
        assert t["stop_reason"] == "goal_met", t["scenario_id"]
        users = [u["content"] for u in t["turns"] if u["role"] == "user"]
        assert users[0].startswith("Hi, I'd like to ") and not any("fake" in u.lower() for u in users)
        judged = {v["judge"]: v for v in conv["verdicts"] if v["kind"] == "model"}
        assert set(judged) == {"goal_completion", "llm_csat", "tone"}
        assert all(v["score"] == 4 and v["reason"] == FAKE_REASON and v["skipped"] is None for v in judged.values())
    track = next(c for c in lines if c["transcript"]["scenario_id"] == "return-keyboard")
    assert [u["content"] for u in track["transcript"]["turns"] if u["role"] == "user"] == [
        "Hi, I'd like to return the keyboard from order ORD-10037 because it is defective.",
        "Yes, please go ahead.",
    ]


def test_customer_gives_a_fact_only_when_asked_and_gives_up_eventually() -> None:
    """The default customer reads the persona from evalkit's prompt: a question that names a
    fact gets it exactly; an open question gets the goal again; a closing question ends."""
    from evalkit.testing.fake_openai import RecordedRequest, customer_turn

    system = (
        "## What you want\nGet $15 back on order ORD-10020.\n\n## What you know\n"
        "You know these facts.\n- order_id: ORD-10020\n- email: ana@example.com\n\n## How to talk\n- one message"
    )

    def ask(*agent: str) -> dict[str, str]:
        msgs = [{"role": "system", "content": system}]
        for a in agent:
            msgs += [{"role": "assistant", "content": "{}"}, {"role": "user", "content": a}]
        return customer_turn(RecordedRequest(n=1, method="POST", path="/", headers={}, body={"messages": msgs}, at=0))

    assert ask() == {"message": "Hi, I'd like to get $15 back on order ORD-10020.", "end": "continue"}
    assert ask("What is the email on your account?") == {"message": "Sure, the email is ana@example.com.",
                                                          "end": "continue"}
    assert ask("Shall I refund $15.00 for order ORD-10020? (yes/no)")["message"] == "Yes, please go ahead."
    assert ask("Your refund of $15.00 was issued.")["end"] == "goal_met"
    assert ask("Done. Is there anything else I can help you with?")["end"] == "goal_met"
    assert ask("(Note for the customer: what you wanted has NOT actually been done yet.)")["end"] == "continue"
    assert ask(*["Which item?"] * 8)["end"] == "gave_up"
    assert ask("I'm connecting you.\n(The agent has transferred you to a human colleague.)")["end"] == "transferred"


def test_every_judge_answer_admits_it_is_fake() -> None:
    """Rubric and pairwise answers: valid for the schema, reason saying no model judged."""
    from evalkit.testing.fake_openai import judge_answer

    rubric = {"type": "object", "properties": {"reason": {"type": "string"},
                                               "score": {"type": "integer", "minimum": 0, "maximum": 10}}}
    pairwise = {"type": "object", "properties": {"reason": {"type": "string"},
                                                 "winner": {"enum": ["first", "second", "tie"]}}}
    assert judge_answer(rubric) == {"reason": FAKE_REASON, "score": 8}
    assert judge_answer(pairwise)["reason"] == FAKE_REASON
