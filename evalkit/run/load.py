"""Load testing an agent over HTTP: many simulated users at once, concurrency ramped up.

``evalkit load SUITE --agent http://127.0.0.1:8000 --users 50 --ramp 30 --duration 60``
plays the suite's scenarios (scripted or offline persona users, cycling through the
scenarios) against an agent behind the evalkit HTTP protocol (``docs/http-protocol.md``)
and measures, per concurrency step, throughput, latency percentiles, time to first token,
error and timeout rates, and the concurrency at which the p95 latency crosses a budget.

The ramp is a staircase: concurrency rises linearly in ``steps`` equal steps over
``ramp_s`` seconds (step k of K runs ``ceil(users * k / K)`` users) and then holds at
``users`` until ``duration_s``. Every agent turn is attributed to the step during which
it was sent, so each step's figures describe one concurrency level.

Bounded by construction: at most :data:`MAX_USERS` users, :data:`MAX_DURATION_S`
seconds and ``max_requests`` agent turns; no new turn starts after the deadline and each
turn is bounded by the turn timeout, so the wall time is at most
``duration_s + turn_timeout_s`` plus a small grace. Only loopback agents are accepted
unless ``allow_remote`` is set: a load test is a denial-of-service tool aimed at whatever
host it is given.

Each conversation is played by :func:`evalkit.run.play.play`, the loop ``evalkit run`` uses; the
figures come from its events (:class:`_Sampler`, an observer) and a turn's typed
``error_kind`` tells a timeout from an error. Judges do not run: this measures the agent's
speed and robustness, not its answers (use ``evalkit run`` for quality).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from evalkit.agents.base import SessionInfo
from evalkit.agents.http import HttpAgentProvider
from evalkit.agents.session import agent_threads
from evalkit.core._clock import now_iso
from evalkit.core.errors import ConfigError
from evalkit.core.transcript import StopReason, TurnError
from evalkit.metrics.summary import percentile
from evalkit.reports.load_report import (
    LoadBudget,
    LoadErrorCount,
    LoadReport,
    LoadSettings,
    LoadStep,
    LoadTotals,
)
from evalkit.run.play import ConversationEnd, ConversationStart, Limits, Observer, TurnEnd, TurnStart, play
from evalkit.scenarios.loader import Suite, load_suite
from evalkit.scenarios.models import Scenario

__all__ = [
    "MAX_USERS",
    "MAX_DURATION_S",
    "MAX_REQUESTS",
    "DEFAULT_MAX_REQUESTS",
    "LoadConfig",
    "LoadTest",
    "is_loopback",
    "check_target",
    "step_plan",
]

MAX_USERS = 2000
MAX_DURATION_S = 3600.0
MAX_REQUESTS = 10_000_000
DEFAULT_MAX_REQUESTS = 100_000
# Extra seconds past deadline + turn timeout before in-flight work is cancelled outright
# (a session DELETE that hangs, a simulator stuck in CPU).
_GRACE_S = 2.0
_USERS_PER_POOL = 8
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` names and loopback addresses (127.0.0.0/8, ::1)."""
    h = host.strip("[]").lower().rstrip(".")
    if h in _LOCAL_NAMES or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_target(agent: str, *, allow_remote: bool = False) -> str:
    """The agent URL, checked: http(s), and loopback unless ``allow_remote``."""
    parts = urlsplit(agent)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "evalkit load needs an HTTP agent: http(s)://HOST:PORT[/prefix] (see docs/http-protocol.md)",
            field="--agent",
        )
    if not allow_remote and not is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing to load-test non-loopback host '{parts.hostname}': pass --allow-remote "
            "if it is your own service and you mean it",
            field="--agent",
        )
    return agent


def step_plan(users: int, ramp_s: float, steps: int) -> list[tuple[float, int]]:
    """``(start_s, users)`` for each step of the staircase ramp."""
    k = max(1, min(steps, users))
    return [(ramp_s * i / k, math.ceil(users * (i + 1) / k)) for i in range(k)]


# -- configuration -------------------------------------------------------------------------


@dataclass
class LoadConfig:
    """One load test. ``suite`` is a loaded :class:`Suite` or suite paths."""

    suite: Suite | Sequence[str | Path]
    agent: str
    users: int = 10
    ramp_s: float = 10.0
    duration_s: float = 30.0
    steps: int = 10
    latency_budget_ms: float = 2000.0
    max_requests: int = DEFAULT_MAX_REQUESTS
    # None: the suite's turn_timeout_s.
    turn_timeout_s: float | None = None
    simulator: Literal["auto", "scripted", "persona"] = "auto"
    stream: bool = True  # ask for Server-Sent Events, so time-to-first-token is measured
    seed: int = 0
    tags: list[str] | None = None
    allow_remote: bool = False
    # None: a live line on a terminal, a line every 5 s otherwise; False: silent.
    progress: bool | None = None
    progress_stream: IO[str] | None = None
    handle_signals: bool = True

    def validate(self) -> None:
        check_target(self.agent, allow_remote=self.allow_remote)  # first: the refusal that matters most
        if not 1 <= self.users <= MAX_USERS:
            raise ConfigError(f"must be between 1 and {MAX_USERS}", field="--users")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise ConfigError(f"must be more than 0 and at most {MAX_DURATION_S:g} seconds", field="--duration")
        if not 0 <= self.ramp_s <= self.duration_s:
            raise ConfigError("must be between 0 and --duration", field="--ramp")
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise ConfigError(f"must be between 1 and {MAX_REQUESTS}", field="--max-requests")
        if self.steps < 1:
            raise ConfigError("must be at least 1", field="--steps")
        if self.latency_budget_ms <= 0:
            raise ConfigError("must be positive", field="--latency-budget-ms")
        if self.turn_timeout_s is not None and self.turn_timeout_s <= 0:
            raise ConfigError("must be positive", field="--turn-timeout")
        if self.simulator not in ("auto", "scripted", "persona"):
            raise ConfigError("must be auto, scripted or persona (LLM users are not load-tested)",
                              field="--simulator")


# -- the test ------------------------------------------------------------------------------


@dataclass
class _Sample:
    start: float  # seconds since the test started
    end: float
    status: Literal["ok", "error", "timeout", "cancelled"]
    latency_ms: float
    ttft_ms: float | None = None
    error: str | None = None


@dataclass
class _State:
    samples: list[_Sample] = field(default_factory=list)
    conv_ends: list[tuple[float, str]] = field(default_factory=list)  # (end, completed|failed|cut)
    started: int = 0
    sent: int = 0
    in_flight: int = 0


class _Sampler(Observer):
    """The load test's figures, taken from :func:`evalkit.run.play.play`'s events: one sample per
    agent turn (attributed to the step it was sent in), and how each conversation ended."""

    def __init__(self, state: _State, turn_timeout: float) -> None:
        self.state = state
        self.turn_timeout = turn_timeout
        self.t0 = 0.0  # time.monotonic() when the test started

    def on_conversation_start(self, event: ConversationStart) -> None:
        self.state.started += 1

    def on_turn_start(self, event: TurnStart) -> None:
        self.state.in_flight += 1

    def on_turn(self, event: TurnEnd) -> None:
        self.state.in_flight -= 1
        kind, turn = event.error_kind, event.agent
        status: Literal["ok", "error", "timeout", "cancelled"]
        error = None
        if kind is None:
            status = "ok"
        elif kind is TurnError.timeout:
            # One message per timeout, whatever else the turn's error says (figures count by message).
            status, error = "timeout", f"no reply within {self.turn_timeout:g}s"
        elif kind is TurnError.cancelled:  # the hard stop: counted apart, in no step
            status = "cancelled"
        else:
            status, error = "error", turn.error
        self.state.samples.append(
            _Sample(event.started - self.t0, event.ended - self.t0, status,
                    (event.ended - event.started) * 1000, turn.ttft_ms if status == "ok" else None, error)
        )

    def on_conversation_end(self, event: ConversationEnd) -> None:
        t, at = event.transcript, event.at - self.t0
        if t.stop_reason is StopReason.simulator_error:  # a simulator bug: an error of this conversation
            self.state.samples.append(_Sample(at, at, "error", 0.0, None, t.error))
        ending = "cut" if t.stop_reason is StopReason.interrupted else "failed" if t.error is not None else "completed"
        self.state.conv_ends.append((at, ending))




def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


class LoadTest:
    """Runs one load test; :meth:`run` returns the :class:`LoadReport` (write it with
    :func:`evalkit.reports.load_html.write_load_outputs`)."""

    def __init__(self, config: LoadConfig) -> None:
        config.validate()
        self.config = config
        self.suite: Suite | None = None
        self.state = _State()
        self._sampler = _Sampler(self.state, 0.0)
        self.stopped_by: Literal["duration", "max_requests", "interrupted"] = "duration"
        self._stop_event = asyncio.Event()  # replaced on the running loop in run()
        self._t0 = 0.0
        self._scenario_cycle = 0

    def run_sync(self) -> LoadReport:
        return asyncio.run(self.run())

    async def run(self) -> LoadReport:
        cfg = self.config
        suite = cfg.suite if isinstance(cfg.suite, Suite) else load_suite([str(p) for p in cfg.suite],
                                                                          tags=cfg.tags or None)
        if not suite.scenarios:
            raise ConfigError("no scenarios to play (check the suite and --tag)", field="SUITE")
        self.suite = suite
        turn_timeout = float(cfg.turn_timeout_s or suite.config.turn_timeout_s)
        self.turn_timeout = self._sampler.turn_timeout = turn_timeout
        self._check_simulators(suite)
        # One connection pool per few users: httpcore rescans every pooled connection on each
        # request, so one pool for hundreds of users costs the generator milliseconds a turn.
        providers = [
            HttpAgentProvider(cfg.agent, stream=cfg.stream, timeout_s=min(10.0, turn_timeout))
            for _ in range(math.ceil(cfg.users / _USERS_PER_POOL))
        ]
        self._stop_event = asyncio.Event()
        plan = step_plan(cfg.users, cfg.ramp_s, cfg.steps)
        started_at = now_iso()
        cpu0 = time.process_time()
        try:
            await providers[0].start()  # health check: an unreachable agent is a setup error
            self._t0 = self._sampler.t0 = time.monotonic()
            restore = self._install_signals()
            progress = asyncio.create_task(self._progress(plan))
            try:
                with agent_threads():  # this test's worker threads (opening sessions), let go at the end
                    await self._drive(providers, plan, turn_timeout)
            finally:
                restore()
                progress.cancel()
                await asyncio.gather(progress, return_exceptions=True)
            wall = time.monotonic() - self._t0
        finally:
            for provider in providers:
                await provider.aclose()
        self._progress_line(plan, final=True)
        report = self._report(suite, plan, started_at, wall, time.process_time() - cpu0, turn_timeout)
        return report

    # -- setup ---------------------------------------------------------------------------
    def _make_simulator(self, scenario: Scenario, seed: int) -> Any:
        from evalkit.simulators import make_simulator

        return make_simulator(scenario, kind=self.config.simulator, seed=seed, llm=None)

    def _check_simulators(self, suite: Suite) -> None:
        for scenario in suite.scenarios:
            self._make_simulator(scenario, 0)  # a misuse (e.g. scripted on a persona) fails now

    def _install_signals(self) -> Callable[[], None]:
        if not self.config.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)

        def stop() -> None:
            self.stopped_by = "interrupted"
            self._stop_event.set()

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            for sig in sigs:
                loop.add_signal_handler(sig, stop)
        # Ctrl-C ends the test early; the figures so far are still written.
        return lambda: None if all(loop.remove_signal_handler(s) or True for s in sigs) else None

    # -- scheduling ----------------------------------------------------------------------
    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _stopping(self) -> bool:
        return self._stop_event.is_set() or self._elapsed() >= self.config.duration_s

    async def _drive(
        self, providers: list[HttpAgentProvider], plan: list[tuple[float, int]], turn_timeout: float
    ) -> None:
        cfg = self.config
        starts: list[float] = []
        for i, (start, users) in enumerate(plan):
            before = plan[i - 1][1] if i else 0
            starts += [start] * (users - before)
        tasks = [
            asyncio.create_task(self._user(providers[u % len(providers)], u, start, turn_timeout))
            for u, start in enumerate(starts)
        ]
        users_done: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*tasks, return_exceptions=True))
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait([stop_wait, users_done],
                               timeout=max(0.0, cfg.duration_s - self._elapsed()),
                               return_when=asyncio.FIRST_COMPLETED)
            self._stop_event.set()  # deadline (or cap, or Ctrl-C): no new turn starts
            # In-flight turns finish within their timeout; then anything left is cut.
            _, pending = await asyncio.wait(tasks, timeout=turn_timeout + _GRACE_S) if tasks else (set(), set())
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            stop_wait.cancel()
            await asyncio.gather(stop_wait, users_done, return_exceptions=True)
        for t in tasks:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]  # a bug in evalkit: the user must see it

    def _next_scenario(self) -> tuple[Scenario, int]:
        assert self.suite is not None
        n = self._scenario_cycle
        self._scenario_cycle += 1
        scenarios = self.suite.scenarios
        return scenarios[n % len(scenarios)], n

    def _take_request(self) -> bool:
        if self.state.sent >= self.config.max_requests:
            if not self._stop_event.is_set():
                self.stopped_by = "max_requests" if self.stopped_by == "duration" else self.stopped_by
                self._stop_event.set()
            return False
        self.state.sent += 1
        return True

    async def _user(self, provider: HttpAgentProvider, index: int, start: float, turn_timeout: float) -> None:
        delay = start - self._elapsed()
        if delay > 0:
            try:
                await asyncio.wait_for(self._stop_event.wait(), delay)
                return  # stopped before this user's step began
            except TimeoutError:
                pass
        conv = 0
        while not self._stopping():
            scenario, n = self._next_scenario()
            await self._conversation(provider, scenario, index, conv, n, turn_timeout)
            conv += 1

    async def _conversation(
        self, provider: HttpAgentProvider, scenario: Scenario, user: int, conv: int, n: int, turn_timeout: float
    ) -> None:
        """One conversation through :func:`evalkit.run.play.play`; the sampler observes it."""
        assert self.suite is not None
        seed = (self.config.seed * 1_000_003 + n) & 0xFFFFFFFF
        suite_cfg = self.suite.config_for(scenario)
        info = SessionInfo(
            session_id=f"load-{os.getpid()}-{int(self._t0 * 1000) % 10**8}-u{user}-c{conv}",
            scenario_id=scenario.id,
            seed=seed,
            channel=str(scenario.channel or suite_cfg.channel),
            customer=scenario.customer,
            initial_state=scenario.initial_state,
        )
        limits = Limits(max_turns=scenario.max_turns or suite_cfg.max_turns, turn_timeout_s=turn_timeout)
        await play(
            scenario,
            lambda: self._make_simulator(scenario, seed),
            provider.new_session,
            info,
            limits,
            observers=[self._sampler],
            go_on=self._go_on,
            fetch_end_state=False,  # no judges run: no end state to fetch
        )

    def _go_on(self) -> bool:
        """Asked before each agent turn: no new turn after the deadline or past the request cap."""
        return not self._stopping() and self._take_request()

    # -- progress ------------------------------------------------------------------------
    def _progress_enabled(self) -> tuple[bool, IO[str], bool]:
        stream = self.config.progress_stream or sys.stderr
        tty = bool(getattr(stream, "isatty", lambda: False)())
        return self.config.progress is not False, stream, tty

    def _current_users(self, plan: list[tuple[float, int]], at: float) -> int:
        users = 0
        for start, n in plan:
            if at >= start:
                users = n
        return users

    def _progress_line(self, plan: list[tuple[float, int]], final: bool = False) -> None:
        enabled, stream, tty = self._progress_enabled()
        if not enabled:
            return
        now = self._elapsed()
        recent = [s.latency_ms for s in self.state.samples[-500:] if s.status == "ok"]
        p95 = percentile(recent, 95)
        done = [s for s in self.state.samples if s.status != "cancelled"]
        bad = sum(1 for s in done if s.status != "ok")
        rate = len(done) / now if now > 0 else 0.0
        line = (
            f"{now:5.1f}s/{self.config.duration_s:g}s  users {self._current_users(plan, now) if not final else self.config.users}"
            f"/{self.config.users}  turns {len(done)} ({rate:.1f}/s)  "
            f"p95 {'-' if p95 is None else f'{p95:.0f} ms'}  errors+timeouts {bad}"
            f"  in flight {self.state.in_flight}"
        )
        if tty:
            stream.write(f"\r{line}\033[K" + ("\n" if final else ""))
        else:
            stream.write(f"evalkit load: {line}\n")
        stream.flush()

    async def _progress(self, plan: list[tuple[float, int]]) -> None:
        _, _, tty = self._progress_enabled()
        while True:
            await asyncio.sleep(0.5 if tty else 5.0)
            self._progress_line(plan)

    # -- report --------------------------------------------------------------------------
    def _report(
        self, suite: Suite, plan: list[tuple[float, int]], started_at: str, wall: float, cpu: float,
        turn_timeout: float,
    ) -> LoadReport:
        cfg = self.config
        samples = [s for s in self.state.samples if s.status != "cancelled"]
        bounds = [start for start, _ in plan] + [max(cfg.duration_s, wall)]
        steps: list[LoadStep] = []
        for i, (start, users) in enumerate(plan):
            end = bounds[i + 1]
            last = i == len(plan) - 1
            inside = [s for s in samples if start <= s.start < end or (last and s.start >= end)]
            # The last step holds until the deadline; turns finishing after it still count.
            span = max(1e-9, (min(end, cfg.duration_s) if last else end) - start)
            convs = sum(1 for at, how in self.state.conv_ends if how == "completed" and
                        (start <= at < end or (last and at >= end)))
            steps.append(_step(i + 1, users, start, end if not last else cfg.duration_s, span, inside, convs,
                               cfg.latency_budget_ms))
        ends = Counter(how for _, how in self.state.conv_ends)
        ok = [s for s in samples if s.status == "ok"]
        lat = [s.latency_ms for s in ok]
        ttft = [s.ttft_ms for s in ok if s.ttft_ms is not None]
        span = max(1e-9, min(wall, cfg.duration_s))
        n_err = sum(1 for s in samples if s.status == "error")
        n_to = sum(1 for s in samples if s.status == "timeout")
        totals = LoadTotals(
            requests=len(samples),
            ok=len(ok),
            errors=n_err,
            timeouts=n_to,
            cancelled=sum(1 for s in self.state.samples if s.status == "cancelled"),
            error_rate=_rate(n_err, len(samples)),
            timeout_rate=_rate(n_to, len(samples)),
            requests_per_s=round(len(samples) / span, 2),
            turns_per_s=round(len(ok) / span, 2),
            conversations_started=self.state.started,
            conversations_completed=ends["completed"],
            conversations_failed=ends["failed"],
            conversations_cut=ends["cut"],
            conversations_per_s=round(ends["completed"] / span, 3),
            latency_p50_ms=_r(percentile(lat, 50)),
            latency_p95_ms=_r(percentile(lat, 95)),
            latency_p99_ms=_r(percentile(lat, 99)),
            ttft_p50_ms=_r(percentile(ttft, 50)),
            ttft_p95_ms=_r(percentile(ttft, 95)),
        )
        crossing = next((s for s in steps if s.over_budget), None)
        within = [s.users for s in steps if s.over_budget is False and (crossing is None or s.step < crossing.step)]
        budget = LoadBudget(
            latency_budget_ms=cfg.latency_budget_ms,
            crossed=crossing is not None,
            crossed_at_users=crossing.users if crossing else None,
            crossed_at_step=crossing.step if crossing else None,
            max_users_within_budget=max(within) if within else None,
        )
        errors = Counter(s.error or s.status for s in samples if s.status != "ok")
        return LoadReport(
            agent=cfg.agent,
            suites=[str(p) for p in suite.paths],
            scenarios=len(suite.scenarios),
            settings=LoadSettings(
                users=cfg.users, ramp_s=cfg.ramp_s, duration_s=cfg.duration_s, steps=len(plan),
                latency_budget_ms=cfg.latency_budget_ms, max_requests=cfg.max_requests,
                turn_timeout_s=turn_timeout, simulator=cfg.simulator, stream=cfg.stream, seed=cfg.seed,
            ),
            started_at=started_at,
            finished_at=now_iso(),
            wall_s=round(wall, 3),
            stopped_by=self.stopped_by,
            generator_cpu_s=round(cpu, 3),
            totals=totals,
            steps=steps,
            budget=budget,
            errors=[LoadErrorCount(message=m, count=c) for m, c in errors.most_common(10)],
        )


def _step(
    n: int, users: int, start: float, end: float, span: float, inside: list[_Sample], convs: int, budget_ms: float
) -> LoadStep:
    ok = [s for s in inside if s.status == "ok"]
    lat = [s.latency_ms for s in ok]
    ttft = [s.ttft_ms for s in ok if s.ttft_ms is not None]
    n_err = sum(1 for s in inside if s.status == "error")
    n_to = sum(1 for s in inside if s.status == "timeout")
    p95 = percentile(lat, 95)
    return LoadStep(
        step=n,
        users=users,
        start_s=round(start, 3),
        end_s=round(end, 3),
        requests=len(inside),
        ok=len(ok),
        errors=n_err,
        timeouts=n_to,
        error_rate=_rate(n_err, len(inside)),
        timeout_rate=_rate(n_to, len(inside)),
        requests_per_s=round(len(inside) / span, 2),
        turns_per_s=round(len(ok) / span, 2),
        conversations=convs,
        conversations_per_s=round(convs / span, 3),
        latency_p50_ms=_r(percentile(lat, 50)),
        latency_p95_ms=_r(p95),
        latency_p99_ms=_r(percentile(lat, 99)),
        latency_max_ms=_r(max(lat) if lat else None),
        ttft_p50_ms=_r(percentile(ttft, 50)),
        ttft_p95_ms=_r(percentile(ttft, 95)),
        over_budget=None if p95 is None else p95 > budget_ms,
    )
