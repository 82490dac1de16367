"""``evalkit score``: run the judges over recorded transcripts (no agent, no simulator)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from evalkit.cli._model_options import build_llm_for_run, build_model_roles, model_options, run_secrets
from evalkit.cli._paths import FolderPath, cwd_on_path
from evalkit.core.results import RunResult

__all__ = ["command", "print_scored"]


def print_scored(run: RunResult, run_dir: Path) -> None:
    """The table ``evalkit score`` prints, then the agreement with the source's verdicts."""
    from evalkit.cli.run import summary_table
    from evalkit.metrics.summary import summarize
    from evalkit.run.recorded import agreement, format_agreement

    click.echo(summary_table(run, run_dir))
    s = summarize(run.conversations)
    if s.get("pass_hat_k"):
        ks = "  ".join(
            f"pass^{k}={v:.3f}" for k, v in sorted(s["pass_hat_k"].items(), key=lambda kv: int(kv[0]))
        )
        judged = [c for c in run.conversations if c.passed is not None]
        n_scen = len({(c.transcript.variant, c.transcript.scenario_id) for c in judged})
        # pass^1 weighs every scenario the same; task compl. weighs every conversation: they
        # differ when scenarios have different numbers of trials.
        click.echo(f"evalkit pass^k (mean over {n_scen} scenario{'s' if n_scen != 1 else ''} of the chance that "
                   f"k trials all pass; {len(judged)} judged conversation{'s' if len(judged) != 1 else ''}): {ks}")
    if s.get("csat_proxy_mean") is not None:
        click.echo(f"csat proxy mean: {s['csat_proxy_mean']:.2f}")
    if any(isinstance(c.metrics.get("human_csat"), int | float) for c in run.conversations):
        from evalkit.quality.calibration import proxy_vs_human

        corr = proxy_vs_human(run.conversations, n_resamples=1000)
        click.echo("")
        click.echo("Spearman vs human_csat (bootstrap 95% CI):")
        for name, c in corr.items():
            click.echo(f"  {name:<16} {c}")
    report = agreement(run)
    if report["n_with_source"]:
        click.echo("")
        click.echo(format_agreement(report))
        click.echo(f"(written to {run_dir / 'agreement.json'})")


@click.command("score")
@click.argument("run_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--scenarios",
    type=click.Path(path_type=Path),
    help="Scenario file or folder with the expectations (default: DIR/scenarios.yaml).",
)
@click.option(
    "--out",
    "-o",
    type=FolderPath(),
    help="Write the scored run here instead of updating DIR in place.",
)
@click.option(
    "--concurrency",
    "-j",
    type=click.IntRange(1, 10000),
    default=8,
    show_default=True,
    help="Conversations judged at once.",
)
@click.option(
    "--redact-pii",
    is_flag=True,
    envvar="EVALKIT_REDACT_PII",
    help="Write the scored run with PII masked (judges still see the text as recorded).",
)
@model_options
def command(
    run_dir: Path, scenarios: Path | None, out: Path | None, concurrency: int, redact_pii: bool, **model_kwargs: Any
) -> int:
    """Run the judges over the recorded transcripts in DIR and write the run files.

    \b
    DIR is a run folder: one written by `evalkit import` (recorded conversations) or by
    `evalkit run` (re-score with new expectations via --scenarios). No agent and no
    simulated user take part. Writes conversations.jsonl, results.parquet,
    verdicts.parquet, summary.json (and the reports) like `evalkit run`; trials of the
    same scenario give pass^k. When the recordings carry their source's own verdict
    (tau-bench's reward), prints the agreement (rate, confusion matrix, disagreements
    with reasons) and writes agreement.json. LLM judges run when a model is configured,
    and are reported as skipped otherwise.

    \b
      evalkit score runs/tau
      evalkit score runs/demo --scenarios datasets/support --out runs/demo-rescored
      evalkit score runs/imported --redact-pii --out runs/imported-shareable
    """
    cwd_on_path()
    from evalkit.run.recorded import score_run

    roles = build_model_roles(**model_kwargs)
    if roles.judge is not None and not model_kwargs.get("no_preflight"):
        import asyncio

        from evalkit.llm.preflight import check_models

        asyncio.run(check_models([("judge", roles.judge)]))  # a bad key fails here, once
    llm = build_llm_for_run(roles, **model_kwargs)
    cmd = shlex.join(["evalkit", *sys.argv[1:]])
    run = score_run(run_dir, scenarios=scenarios, out=out, llm=llm, concurrency=concurrency, command=cmd,
                    redact_pii=redact_pii, secrets=run_secrets(roles))
    print_scored(run, out or run_dir)
    return 0
