"""``python -m reference_agent serve``: bad options are refused; the real process serves."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _serve(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_agent", "serve", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, **kw,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--faults", "no_such_fault"], "unknown fault 'no_such_fault'"),
        (["--faults", "slow_reply=fast"], "is not a number"),
        (["--engine", "quantum"], "unknown engine 'quantum'"),
        (["--port", "70000"], "--port"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, needle):
    out = _serve(*args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_serve_answers_over_http_and_writes_the_log(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "turns.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "reference_agent", "serve", "--port", str(port), "--log-file", str(log)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).json()["status"] == "ok":
                    break
            except httpx2.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        r = httpx2.post(
            f"{base}/v1/sessions/cli-1/messages",
            json={"message": "Where is ORD-10001?", "customer": {"email": "ana.silva@example.com"}},
            timeout=10,
        )
        assert r.status_code == 200 and "ORD-10001" in r.json()["content"]
        assert httpx2.get(f"{base}/", timeout=5).text.startswith("<!doctype html>")
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
    line = json.loads(log.read_text().splitlines()[0])
    assert line["session"] == "cli-1" and line["tools"][0]["name"] == "check_order_status"
