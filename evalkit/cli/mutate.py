"""``evalkit mutate``: mutation testing of the agent's code (or its system prompt) against a suite."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from evalkit.cli._paths import cwd_on_path

__all__ = ["command"]


@click.command("mutate")
@click.argument("suite", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    metavar="MODULE_OR_PATH",
    help="Python module to mutate (pkg.mod or pkg/mod.py; repeatable).",
)
@click.option(
    "--agent", metavar="SPEC", help="Agent spec (default: the suite's agent:), e.g. my_bot:create_agent."
)
@click.option(
    "--operators",
    default="core",
    show_default=True,
    metavar="core|all|OP,OP",
    help="cosmic-ray operators: the selective core set, all of them, or a comma list.",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 256), default=None, help="Worker processes (default: CPU count)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, None),
    help="Seconds per mutant before it counts as killed by timeout (default 10 + 5x its conversations' clean time).",
)
@click.option("--sample", type=click.IntRange(1, None), help="Play only N mutants, chosen with --seed.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for --sample and the simulated users."
)
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    default=".evalkit-cache/mutation.jsonl",
    show_default=True,
    help="Results cache (a rerun plays only what changed).",
)
@click.option("--no-cache", is_flag=True, help="Play every mutant; read and write no cache.")
@click.option(
    "--equivalents",
    type=click.Path(path_type=Path),
    help="Equivalent mutants file (default ./mutation-equivalents.yaml when present).",
)
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="Folder for mutation.json and mutation.html."
)
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only scenarios with this tag (repeatable)."
)
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    help="Exit 1 when the mutation score (percent) is below this.",
)
@click.option(
    "--prompt", is_flag=True, help="Mutate the agent's system prompt (openai-chat:...?system=FILE) instead."
)
@click.option("--json", "as_json", is_flag=True, help="Print mutation.json instead of the summary.")
@click.option("--no-progress", is_flag=True, help="No progress lines on stderr.")
def command(
    suite: tuple[Path, ...],
    targets: tuple[str, ...],
    agent: str | None,
    operators: str,
    jobs: int | None,
    timeout: float | None,
    sample: int | None,
    seed: int,
    cache: Path,
    no_cache: bool,
    equivalents: Path | None,
    out: Path | None,
    tags: tuple[str, ...],
    fail_under: float | None,
    prompt: bool,
    as_json: bool,
    no_progress: bool,
) -> int:
    """Would the suite notice if this line were wrong? Generate mutants of the agent's
    code (cosmic-ray), play SUITE (default datasets/support) against each in its own
    worker process, and report the mutation score per module, per judge and per scenario.

    \b
    Writes mutation.json and mutation.html (survivors with their diff, the scenarios that
    ran the line and a hint of the missing assertion) into --out (default
    runs/mutate-<timestamp>). Exit 0, or 1 below --fail-under, 2 on bad input, 130 when
    interrupted.

    \b
      evalkit mutate --target reference_agent/tools.py
      evalkit mutate datasets/support -t reference_agent.guardrails --sample 8 --seed 1
      evalkit mutate my_suite --agent my_bot:create_agent -t my_bot/policy.py --fail-under 80
      evalkit mutate --prompt --agent "openai-chat:gpt-4o-mini?system=prompt.md"
    """
    cwd_on_path()
    progress = None if no_progress else sys.stderr
    suites = list(suite) or [Path("datasets/support")]
    folder = out or Path("runs") / f"mutate-{time.strftime('%Y%m%d-%H%M%S')}"
    if prompt:
        from evalkit.quality.mutation.prompt import (
            PromptConfig,
            render_prompt_text,
            run_prompt_mutation,
            write_prompt_report,
        )

        if targets:
            raise click.UsageError("--prompt mutates the system prompt; leave out --target")
        preport = run_prompt_mutation(
            PromptConfig(
                suite=suites, agent=agent, seed=seed, out=folder, tags=list(tags) or None, progress=progress
            )
        )
        write_prompt_report(preport, folder)
        click.echo(preport.model_dump_json(indent=2) if as_json else render_prompt_text(preport))
        return 0
    if not targets:
        raise click.UsageError("name the code to mutate with --target MODULE_OR_PATH (or use --prompt)")
    from evalkit.quality.mutation import MutateConfig, run_mutation, write_report
    from evalkit.quality.mutation.results import render_text
    from evalkit.reports.mutation_html import render_mutation_html

    ops: list[str] | None
    if operators == "core":
        ops = None
    elif operators == "all":
        ops = ["all"]
    else:
        ops = [o.strip() for o in operators.split(",") if o.strip()]
    report = run_mutation(
        MutateConfig(
            suite=suites,
            targets=list(targets),
            agent=agent,
            operators=ops,
            jobs=jobs or os.cpu_count() or 1,
            timeout_s=timeout,
            sample=sample,
            seed=seed,
            cache=None if no_cache else cache,
            equivalents=equivalents,
            tags=list(tags) or None,
            progress=progress,
        )
    )
    write_report(report, folder, render_mutation_html)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(render_text(report))
        click.echo(f"report: {folder}/mutation.html")
    if report.interrupted:
        return 130
    if fail_under is not None and (report.totals.score or 0.0) * 100 < fail_under:
        return 1
    return 0
