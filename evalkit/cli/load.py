"""``evalkit load``: many concurrent simulated users against an HTTP agent, ramped up."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.cli._paths import FolderPath
from evalkit.core._clock import now_stamp
from evalkit.core._plural import plural

__all__ = ["command"]


@click.command("load")
@click.argument("suite", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--agent", "-a", required=True, envvar="EVALKIT_AGENT", metavar="URL",
              help="The agent under load: http(s)://HOST:PORT[/prefix] (evalkit HTTP protocol).")
@click.option("--users", type=click.IntRange(1, 2000), default=10, show_default=True,
              help="Concurrent simulated users at the top of the ramp.")
@click.option("--ramp", "ramp_s", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Seconds to ramp concurrency up linearly to --users (default: half of --duration).")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True, max=3600), default=30.0,
              show_default=True, metavar="SECONDS", help="Total test time, ramp included (at most 3600).")
@click.option("--steps", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Concurrency levels in the ramp (each reported separately; at most --users).")
@click.option("--latency-budget-ms", type=click.FloatRange(min=0, min_open=True), default=2000.0,
              show_default=True, help="Report the concurrency at which p95 latency crosses this.")
@click.option("--max-requests", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True,
              help="Hard cap on agent turns sent; the test stops when it is reached.")
@click.option("--turn-timeout", "turn_timeout_s", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="A turn slower than this counts as a timeout (default: the suite's).")
@click.option("--simulator", type=click.Choice(["auto", "scripted", "persona"]), default="auto",
              show_default=True, help="Simulated users: scripts as written, personas played offline.")
@click.option("--stream/--no-stream", default=True, show_default=True,
              help="Ask for Server-Sent Events (measures time to first token).")
@click.option("--tag", "tags", multiple=True, help="Only scenarios with this tag (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the simulated users.")
@click.option("--out", type=FolderPath(), default=None, metavar="DIR",
              help="Where to write load.json and load.html (default: runs/load-<time>).")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback agent host. Only load-test services you own.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def command(
    suite: tuple[Path, ...],
    agent: str,
    users: int,
    ramp_s: float | None,
    duration_s: float,
    steps: int,
    latency_budget_ms: float,
    max_requests: int,
    turn_timeout_s: float | None,
    simulator: str,
    stream: bool,
    tags: tuple[str, ...],
    seed: int,
    out: Path | None,
    allow_remote: bool,
    quiet: bool,
) -> int:
    """Load-test an HTTP agent with the simulated users of SUITE.

    Concurrency rises linearly in --steps equal steps over --ramp seconds, then holds at
    --users until --duration. Each user plays the suite's scenarios (scripted or persona,
    cycling) turn after turn. Prints a live progress line, then per step: throughput,
    latency p50/p95/p99, time to first token, error and timeout rates, and the concurrency
    at which p95 crosses --latency-budget-ms. Writes load.json and load.html.

    \b
    Only loopback agents (localhost, 127.0.0.0/8, ::1) unless --allow-remote.
    Examples:
      python -m reference_agent serve --port 8000 &
      evalkit load datasets/support --agent http://127.0.0.1:8000 --users 50 --ramp 20 --duration 40
    """
    from evalkit.reports.load_html import write_load_outputs
    from evalkit.run.load import LoadConfig, LoadTest

    folder = out if out is not None else Path("runs") / ("load-" + now_stamp())
    config = LoadConfig(
        suite=list(suite),
        agent=agent,
        users=users,
        ramp_s=duration_s / 2 if ramp_s is None else ramp_s,
        duration_s=duration_s,
        steps=steps,
        latency_budget_ms=latency_budget_ms,
        max_requests=max_requests,
        turn_timeout_s=turn_timeout_s,
        simulator=simulator,  # type: ignore[arg-type]  # click.Choice guarantees the literal
        stream=stream,
        seed=seed,
        tags=list(tags) or None,
        allow_remote=allow_remote,
        progress=False if quiet else None,
    )
    report = LoadTest(config).run_sync()
    write_load_outputs(folder, report)
    click.echo(summary_table(report))
    click.echo(f"\nwrote {folder / 'load.json'} and {folder / 'load.html'}")
    return 0


def summary_table(report: object) -> str:
    """The per-step table printed at the end."""
    from evalkit.reports.load_report import LoadReport

    assert isinstance(report, LoadReport)

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}" if x >= 10 else f"{x:.1f}"

    def p(x: float | None) -> str:
        return "-" if x is None else f"{x * 100:.1f}%"

    header = ["step", "users", "turns", "turns/s", "conv/s", "p50 ms", "p95 ms", "p99 ms", "ttft p50",
              "errors", "timeouts"]
    rows = [header]
    for s in report.steps:
        rows.append([str(s.step), str(s.users), str(s.requests), f"{s.turns_per_s:.1f}",
                     f"{s.conversations_per_s:.2f}", f(s.latency_p50_ms),
                     f(s.latency_p95_ms) + (" *" if s.over_budget else ""), f(s.latency_p99_ms),
                     f(s.ttft_p50_ms), p(s.error_rate), p(s.timeout_rate)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    t, b = report.totals, report.budget
    lines.append("")
    lines.append(
        f"total: {plural(t.requests, 'turn')} ({t.ok} ok, {plural(t.errors, 'error')}, {plural(t.timeouts, 'timeout')}, {t.cancelled} cut), "
        f"{t.turns_per_s:.1f} turns/s, {plural(t.conversations_completed, 'conversation')} completed "
        f"({t.conversations_failed} failed, {t.conversations_cut} cut), p95 {f(t.latency_p95_ms)} ms, "
        f"{report.wall_s:.1f} s, stopped by {report.stopped_by}"
    )
    if b.crossed:
        lines.append(
            f"p95 crossed the {b.latency_budget_ms:g} ms budget at {b.crossed_at_users} users (step "
            f"{b.crossed_at_step}, marked *); within budget up to {b.max_users_within_budget or '-'} users"
        )
    else:
        lines.append(f"p95 stayed within the {b.latency_budget_ms:g} ms budget at every step")
    return "\n".join(lines)
