"""``evalkit load``: a short ramped load against the reference agent's HTTP service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _http_helpers import send_json
from _service_client import FRONT_END_KEY

from evalkit.core.errors import ConfigError
from evalkit.reports.load_html import write_load_outputs
from evalkit.reports.load_report import LoadReport
from evalkit.run.load import LoadConfig, LoadTest, check_target, is_loopback, step_plan

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "datasets" / "support"


def _check_counts(r: LoadReport) -> None:
    t = r.totals
    assert t.requests == t.ok + t.errors + t.timeouts
    assert sum(s.requests for s in r.steps) == t.requests
    assert sum(s.ok for s in r.steps) == t.ok
    assert sum(s.errors for s in r.steps) == t.errors
    assert sum(s.timeouts for s in r.steps) == t.timeouts
    assert t.conversations_started == t.conversations_completed + t.conversations_failed + t.conversations_cut
    assert sum(e.count for e in r.errors) == t.errors + t.timeouts or len(r.errors) == 10


def test_ramped_load_against_the_reference_service(tmp_path: Path) -> None:
    from tests._service_server import serve

    # The identity key lets the load play the suite's scripted-model scenarios too (a scripted
    # model is refused to a caller without it).
    with serve(identity_key=FRONT_END_KEY) as (_app, base):
        agent = base.replace("http://", f"http://evalkit:{FRONT_END_KEY}@")
        config = LoadConfig(suite=[SUITE], agent=agent, users=6, ramp_s=1.5, duration_s=3.0, steps=3,
                            turn_timeout_s=5.0, progress=False, handle_signals=False)
        started = time.monotonic()
        report = LoadTest(config).run_sync()
        write_load_outputs(tmp_path, report)
        wall = time.monotonic() - started
        health = __import__("httpx2").get(f"{base}/healthz").json()
    # Bounded: no turn starts after the deadline and each turn is bounded by the timeout.
    assert wall <= 3.0 + 5.0 + 2.5
    assert report.wall_s >= 3.0
    assert report.stopped_by == "duration"
    data = json.loads((tmp_path / "load.json").read_text())
    assert LoadReport.model_validate(data) == report
    assert [s["users"] for s in data["steps"]] == [2, 4, 6]
    assert [s["start_s"] for s in data["steps"]] == [0.0, 0.5, 1.0]
    _check_counts(report)
    t = report.totals
    assert t.ok > 20 and t.errors == 0 and t.timeouts == 0
    assert t.conversations_completed > 0
    assert t.latency_p50_ms is not None and t.latency_p50_ms <= t.latency_p95_ms <= t.latency_p99_ms  # type: ignore[operator]
    assert t.ttft_p50_ms is not None  # the service streams: the first token event is timed
    assert all(s.requests > 0 for s in report.steps)
    assert health["sessions"] == 0  # every session was deleted afterwards
    html = (tmp_path / "load.html").read_text()
    assert "Plotly" in html and 'id="load-data"' in html and "Content-Security-Policy" in html


class _Flaky(BaseHTTPRequestHandler):
    """An agent that answers 500 to every 4th message and hangs on every 7th."""

    protocol_version = "HTTP/1.1"
    calls = 0
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        send_json(self, 200, {"status": "ok"})

    def do_DELETE(self) -> None:
        send_json(self, 404, {"error": "no such session"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            type(self).calls += 1
            n = type(self).calls
        if n % 7 == 0:
            time.sleep(1.0)  # past the 0.3 s turn timeout
        if n % 4 == 0:
            send_json(self, 500, {"error": "injected failure"})
            return
        send_json(self, 200, {"content": f"reply {n}"})


@contextmanager
def _flaky_server() -> Iterator[str]:
    _Flaky.calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_errors_and_timeouts_are_counted_not_raised(tmp_path: Path) -> None:
    with _flaky_server() as base:
        config = LoadConfig(suite=[SUITE], agent=base, users=4, ramp_s=0.5, duration_s=1.5, steps=2,
                            turn_timeout_s=0.3, stream=False, progress=False,
                            handle_signals=False)
        report = LoadTest(config).run_sync()
    _check_counts(report)
    t = report.totals
    assert t.errors > 0 and t.timeouts > 0 and t.ok > 0
    assert t.conversations_failed >= t.errors + t.timeouts - t.conversations_cut
    assert t.error_rate == pytest.approx(t.errors / t.requests, abs=1e-4)
    messages = {e.message for e in report.errors}
    assert any("HTTP 500" in m and "injected failure" in m for m in messages)
    assert "no reply within 0.3s" in messages
    assert report.wall_s <= 1.5 + 0.3 + 2.5


def test_request_cap_stops_the_test(tmp_path: Path) -> None:
    with _flaky_server() as base:
        _Flaky.calls = 1  # skip nothing special: calls 2.. are mostly fine
        config = LoadConfig(suite=[SUITE], agent=base, users=3, ramp_s=0, duration_s=30, max_requests=12,
                            turn_timeout_s=2.0, stream=False, progress=False, handle_signals=False)
        started = time.monotonic()
        report = LoadTest(config).run_sync()
    assert time.monotonic() - started < 10
    assert report.stopped_by == "max_requests"
    assert report.totals.requests == 12
    _check_counts(report)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "[::1]", "api.localhost"])
def test_loopback_targets_are_accepted(host: str) -> None:
    assert check_target(f"http://{host}:8000/bots") == f"http://{host}:8000/bots"


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.5:8000", "https://[2001:db8::1]/x",
                                 "http://localhost.evil.com"])
def test_remote_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_target(url)
    assert check_target(url, allow_remote=True) == url
    with pytest.raises(ConfigError):
        LoadTest(LoadConfig(suite=[SUITE], agent=url))


def test_cli_refuses_a_remote_agent_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["load", str(SUITE), "--agent", "http://192.0.2.7:8000", "--duration", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-remote" in err and "192.0.2.7" in err


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"users": 0}, "--users"), ({"users": 5000}, "--users"), ({"duration_s": 4000}, "--duration"),
     ({"ramp_s": 60, "duration_s": 30}, "--ramp"), ({"max_requests": 0}, "--max-requests"),
     ({"agent": "reference_agent:create_agent"}, "--agent")],
)
def test_bounds_are_enforced(kwargs: dict[str, object], field: str) -> None:
    options: dict[str, object] = {"suite": [SUITE], "agent": "http://127.0.0.1:9", **kwargs}
    with pytest.raises(ConfigError) as info:
        LoadConfig(**options).validate()  # type: ignore[arg-type]
    assert info.value.field == field


def test_step_plan_is_a_linear_staircase() -> None:
    assert step_plan(10, 10.0, 5) == [(0.0, 2), (2.0, 4), (4.0, 6), (6.0, 8), (8.0, 10)]
    assert step_plan(3, 6.0, 10) == [(0.0, 1), (2.0, 2), (4.0, 3)]  # never more steps than users
    assert step_plan(7, 0.0, 3) == [(0.0, 3), (0.0, 5), (0.0, 7)]
    assert is_loopback("127.0.0.1") and not is_loopback("128.0.0.1")


def _report(**totals_update: object) -> LoadReport:
    """A small synthetic report (two steps, one over budget) with hostile strings in it."""
    from evalkit.reports.load_report import LoadBudget, LoadErrorCount, LoadSettings, LoadStep, LoadTotals

    def step(n: int, users: int, p95: float) -> LoadStep:
        return LoadStep(step=n, users=users, start_s=n - 1.0, end_s=float(n), requests=10, ok=9, errors=1,
                        timeouts=0, error_rate=0.1, timeout_rate=0.0, requests_per_s=10.0, turns_per_s=9.0,
                        conversations=3, conversations_per_s=3.0, latency_p50_ms=p95 / 2, latency_p95_ms=p95,
                        latency_p99_ms=p95 * 1.2, latency_max_ms=p95 * 1.5, ttft_p50_ms=20.0, ttft_p95_ms=40.0,
                        over_budget=p95 > 500)

    hostile = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
    return LoadReport(
        agent="http://127.0.0.1:9/" + hostile, suites=[hostile], scenarios=3,
        settings=LoadSettings(users=4, ramp_s=1, duration_s=2, steps=2, latency_budget_ms=500, max_requests=100,
                              turn_timeout_s=5, simulator="auto", stream=True, seed=0),
        started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:00:02+00:00", wall_s=2.0,
        stopped_by="duration", generator_cpu_s=0.5,
        totals=LoadTotals(requests=20, ok=18, errors=2, timeouts=0, cancelled=0, error_rate=0.1, timeout_rate=0.0,
                          requests_per_s=10, turns_per_s=9, conversations_started=7, conversations_completed=6,
                          conversations_failed=1, conversations_cut=0, conversations_per_s=3,
                          latency_p50_ms=150, latency_p95_ms=600, latency_p99_ms=700, ttft_p50_ms=20,
                          ttft_p95_ms=40),
        steps=[step(1, 2, 300.0), step(2, 4, 600.0)],
        budget=LoadBudget(latency_budget_ms=500, crossed=True, crossed_at_users=4, crossed_at_step=2,
                          max_users_within_budget=2),
        errors=[LoadErrorCount(message="HTTP 500: " + hostile, count=2)],
    )


@pytest.mark.browser
def test_load_page_draws_its_charts_and_keeps_hostile_text_inert(tmp_path: Path, page, console) -> None:
    write_load_outputs(tmp_path, _report())
    page.goto((tmp_path / "load.html").as_uri())
    page.wait_for_function("() => document.documentElement.dataset.charts === '1'", timeout=60_000)
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 3
    assert page.evaluate("document.querySelectorAll('tr.over').length") == 1
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert "onerror=window.pwned" in page.evaluate("document.body.textContent")  # shown as text
    assert console.settle(page).errors == []


def test_ctrl_c_stops_the_cli_early_and_still_writes_the_figures(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    with _flaky_server() as base:
        _Flaky.calls = 1000 * 28  # start past a multiple of 4 and 7: the first calls succeed
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalkit", "load", str(SUITE), "--agent", base, "--users", "2", "--ramp", "0",
             "--duration", "60", "--no-stream", "--out", str(tmp_path), "-q"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 60
        while _Flaky.calls < 1000 * 28 + 5 and time.monotonic() < deadline:  # the load is running
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    report = LoadReport.model_validate_json((tmp_path / "load.json").read_text())
    assert report.stopped_by == "interrupted"
    assert report.totals.requests >= 5
    _check_counts(report)
    assert "stopped by interrupted" in out
