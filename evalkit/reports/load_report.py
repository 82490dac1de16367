"""What ``evalkit load`` measured: the ``load.json`` data (``version`` 1).

Data only, below both the load tester (:mod:`evalkit.run.load`, which builds a
:class:`LoadReport`) and its page (:mod:`evalkit.reports.load_html`, which renders one), so
neither imports the other.
"""

from __future__ import annotations

from typing import Literal

from evalkit.core.strict import StrictModel

__all__ = [
    "LOAD_JSON",
    "LOAD_HTML",
    "LoadSettings",
    "LoadStep",
    "LoadTotals",
    "LoadBudget",
    "LoadErrorCount",
    "LoadReport",
]

LOAD_JSON = "load.json"
LOAD_HTML = "load.html"


class LoadSettings(StrictModel):
    """The options the test ran with."""

    users: int
    ramp_s: float
    duration_s: float
    steps: int
    latency_budget_ms: float
    max_requests: int
    turn_timeout_s: float
    simulator: str
    stream: bool
    seed: int


class LoadStep(StrictModel):
    """One concurrency level: every agent turn sent while ``users`` users were running."""

    step: int  # 1-based
    users: int
    start_s: float
    end_s: float
    requests: int  # agent turns sent in this step that finished (ok + errors + timeouts)
    ok: int
    errors: int
    timeouts: int
    error_rate: float | None
    timeout_rate: float | None
    requests_per_s: float
    turns_per_s: float  # successful turns per second
    conversations: int  # conversations that finished normally during this step
    conversations_per_s: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    over_budget: bool | None  # p95 above the latency budget (None: no successful turn)


class LoadTotals(StrictModel):
    """The whole test. ``requests == ok + errors + timeouts``; ``cancelled`` turns (cut by
    the hard stop) are counted apart and in no step."""

    requests: int
    ok: int
    errors: int
    timeouts: int
    cancelled: int
    error_rate: float | None
    timeout_rate: float | None
    requests_per_s: float
    turns_per_s: float
    conversations_started: int
    conversations_completed: int
    conversations_failed: int  # ended by an agent error or timeout
    conversations_cut: int  # stopped by the deadline or the request cap
    conversations_per_s: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None


class LoadBudget(StrictModel):
    """Where the p95 latency crossed the budget."""

    latency_budget_ms: float
    crossed: bool
    crossed_at_users: int | None  # the first step's concurrency with p95 over budget
    crossed_at_step: int | None
    max_users_within_budget: int | None  # the highest concurrency before that


class LoadErrorCount(StrictModel):
    message: str
    count: int


class LoadReport(StrictModel):
    """What ``evalkit load`` writes to ``load.json`` (``version`` 1)."""

    version: int = 1
    agent: str
    suites: list[str]
    scenarios: int
    settings: LoadSettings
    started_at: str
    finished_at: str
    wall_s: float
    stopped_by: Literal["duration", "max_requests", "interrupted"]
    # CPU seconds used by evalkit itself; near wall_s it was the bottleneck, not the agent.
    generator_cpu_s: float
    totals: LoadTotals
    steps: list[LoadStep]
    budget: LoadBudget
    errors: list[LoadErrorCount]
