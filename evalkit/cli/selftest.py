"""``evalkit selftest``: run a suite against the clean agent and each seeded fault."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from evalkit.cli._paths import FolderPath, cwd_on_path

__all__ = ["command"]


@click.command("selftest")
@click.argument("suite", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--agent-factory",
    envvar="EVALKIT_SELFTEST_AGENT",
    default="reference_agent:create_agent",
    show_default=True,
    metavar="MODULE:FACTORY",
    help="The agent to seed faults into (its spec gets ?faults=NAME per fault).",
)
@click.option(
    "--faults",
    default="all",
    show_default=True,
    metavar="all|a,b=VALUE,...",
    help="Faults to seed, from the agent's catalogue (FAULTS); NAME=VALUE for faults taking one.",
)
@click.option(
    "--out",
    "-o",
    type=FolderPath(),
    help="Run folder (default runs/selftest-<timestamp>); must not hold a run yet.",
)
@click.option(
    "--trials", "-k", type=click.IntRange(1, 1000), help="Trials per scenario (default: the suite's)."
)
@click.option(
    "--concurrency",
    "-j",
    type=click.IntRange(1, 10000),
    default=16,
    show_default=True,
    help="Conversations in flight at once (faults taking a value, e.g. a delay, run apart, all at once).",
)
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only scenarios with this tag (repeatable)."
)
@click.option("--seed", type=int, help="Base seed (default 0).")
@click.option("--json", "as_json", is_flag=True, help="Print selftest.json instead of the matrix.")
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
def command(
    suite: tuple[Path, ...],
    agent_factory: str,
    faults: str,
    out: Path | None,
    trials: int | None,
    concurrency: int,
    tags: tuple[str, ...],
    seed: int | None,
    as_json: bool,
    no_progress: bool,
) -> int:
    """Does the suite catch real faults? Play SUITE (default datasets/support) against the
    clean agent and against the agent with each seeded fault on, in one run folder.

    \b
    Prints the detection matrix: for every fault, how many conversations failed and
    which judges and scenarios caught it (deterministic verdicts only). Writes
    selftest.json and selftest.md beside the run files (report.html shows the variants).
    Exit 0 when the clean agent passes everything and every fault is caught, 1 otherwise,
    2 on bad input, 130 when interrupted.

    \b
      evalkit selftest
      evalkit selftest --faults leak_email,slow_reply=3.5 --out runs/selftest
      evalkit selftest datasets/support --agent-factory my_bot:create_agent --json
    """
    cwd_on_path()
    from evalkit.quality.selftest import DEFAULT_SUITE, SelftestConfig, render_matrix, run_selftest

    words = ["evalkit", "selftest", *map(str, suite), "--faults", faults]
    report = run_selftest(
        SelftestConfig(
            suite=list(suite) or [DEFAULT_SUITE],
            agent_factory=agent_factory,
            faults=faults,
            out=out,
            trials=trials,
            concurrency=concurrency,
            seed=seed,
            tags=list(tags) or None,
            progress=False if no_progress else None,
            command=shlex.join(words),
        )
    )
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(render_matrix(report))
    if report.interrupted:
        return 130
    return 0 if report.passed else 1
