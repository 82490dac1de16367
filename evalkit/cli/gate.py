"""``evalkit gate``: pass or fail a run against thresholds and a baseline (exit 0 / 1 / 2)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from evalkit.core.errors import ConfigError
from evalkit.scenarios.models import GateConfig

__all__ = ["command"]


@click.command("gate")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--min", "mins", multiple=True, metavar="METRIC=VALUE", help="Fail when METRIC is below VALUE (e.g. task_completion_rate=0.8 or 80%).")
@click.option("--max", "maxs", multiple=True, metavar="METRIC=VALUE", help="Fail when METRIC is above VALUE (e.g. latency_p95_ms=3000).")
@click.option("--baseline", "baseline_dir", type=click.Path(path_type=Path), metavar="RUN", help="Baseline run folder for --max-drop and --no-new-failures.")
@click.option("--max-drop", "drops", multiple=True, metavar="METRIC=VALUE", help="Fail when METRIC got worse than the baseline by more than VALUE and the 95% CI of the difference excludes 0.")
@click.option("--no-new-failures", is_flag=True, help="Fail when a scenario that passed in the baseline fails now.")
@click.option("--variant", default=None, metavar="NAME", help="Variant of RUN to gate (required when RUN has several).")
@click.option("--baseline-variant", default=None, metavar="NAME", help="Variant of the baseline; without --baseline, a variant of RUN itself (A/B in one run).")
@click.option("--suite", "suite_path", type=click.Path(path_type=Path), default=None, metavar="PATH", help="Read thresholds from this suite.yaml (or folder) instead of the run's own suite.")
@click.option("--no-suite", is_flag=True, help="Ignore the suite's gate: section; use the flags only.")
@click.option("--allow-incomplete", is_flag=True, help="Do not fail a run that was interrupted or is missing conversations.")
@click.option("--fail-underpowered", is_flag=True, help="Fail a --max-drop check whose sample is too small to show a drop of the allowed size (it passes with an 'underpowered' note otherwise).")
@click.option("--allow-empty", is_flag=True, help="Pass when no check is configured (by default a gate with no checks fails).")
@click.option("--slow-turn-ms", type=float, default=3000.0, show_default=True, help="A turn slower than this counts in slow_turn_rate.")
@click.option("--summary/--no-summary", default=True, show_default=True, help="Append Markdown to $GITHUB_STEP_SUMMARY when it is set.")
@click.option("--write/--no-write", default=True, show_default=True, help="Save gate.json in RUN and rewrite RUN/summary.md and RUN/report.html with the verdict.")
def command(
    run_dir: Path,
    mins: tuple[str, ...],
    maxs: tuple[str, ...],
    baseline_dir: Path | None,
    drops: tuple[str, ...],
    no_new_failures: bool,
    variant: str | None,
    baseline_variant: str | None,
    suite_path: Path | None,
    no_suite: bool,
    allow_incomplete: bool,
    fail_underpowered: bool,
    allow_empty: bool,
    slow_turn_ms: float,
    summary: bool,
    write: bool,
) -> int:
    """Check RUN against thresholds; exit 0 when every check passes, 1 when one fails.

    \b
    Examples:
      evalkit gate runs/pr --min task_completion_rate=0.85 --max latency_p95_ms=3000
      evalkit gate runs/pr --baseline runs/main --max-drop task_completion_rate=0.05 --no-new-failures
      evalkit gate runs/ab --variant B --baseline-variant A --max-drop csat_proxy_mean=0.2
      evalkit gate runs/redteam --max attack_success_rate=0

    Thresholds are also read from the suite's suite.yaml (gate: min/max/max_drop/no_new_failures),
    as recorded in the run when it was made; flags override them. A gate with no checks fails
    unless --allow-empty. Exit 2 on a usage or input error (unknown metric, corrupt run folder).
    """
    from evalkit.metrics.gate import (
        GATE_FILE,
        evaluate_gate,
        merge_gate_configs,
        parse_threshold,
        render_gate_markdown,
        render_gate_table,
        suite_gate_config,
    )
    from evalkit.run.runfiles import load_run

    # Parse every flag before reading anything, so a typo fails fast.
    flags = GateConfig(
        min=dict(parse_threshold(t, kind="min") for t in mins),
        max=dict(parse_threshold(t, kind="max") for t in maxs),
        max_drop=dict(parse_threshold(t, kind="max_drop") for t in drops),
        no_new_failures=no_new_failures,
    )
    if slow_turn_ms <= 0:
        raise ConfigError("must be > 0", field="--slow-turn-ms")
    if no_suite and suite_path is not None:
        raise ConfigError("give --suite or --no-suite, not both", field="--no-suite")
    run = load_run(run_dir)
    baseline = load_run(baseline_dir) if baseline_dir is not None else None
    if baseline is None and baseline_variant is not None:
        baseline = run
    suite_cfg, source = (None, None) if no_suite else suite_gate_config(run, suite_path)
    if source:
        click.echo(f"thresholds from {source} (flags override)", err=True)
    config = merge_gate_configs(suite_cfg, flags)
    result = evaluate_gate(
        run,
        config,
        variant=variant,
        baseline=baseline,
        baseline_variant=baseline_variant,
        slow_turn_ms=slow_turn_ms,
        require_baseline=bool(flags.max_drop) or flags.no_new_failures,
        allow_incomplete=allow_incomplete,
        fail_underpowered=fail_underpowered,
        allow_empty=allow_empty,
    )
    click.echo(render_gate_table(result), nl=False)
    if write:
        from evalkit.reports.markdown import SUMMARY_MD_FILE, write_summary_md
        from evalkit.run.runfolder import Existing, RunFolder

        try:
            # Locked meanwhile: never rewritten under a run (or resume) still writing it.
            with RunFolder(run_dir).claim(Existing.update) as folder:
                folder.write_json(GATE_FILE, result.model_dump(mode="json"))
                # summary.md and report.html now show the verdict (and the regressions vs the
                # baseline), so what CI uploads after the gate is what it decided.
                write_summary_md(run, run_dir / SUMMARY_MD_FILE, gate=result, comparison=result.comparison)
                from evalkit.reports.html import render_report

                folder.write_file("report.html", render_report(run, gate=result).encode("utf-8"))
        except OSError as exc:
            where = getattr(exc, "filename", None) or run_dir
            click.echo(f"evalkit: warning: could not save {where}: {exc.strerror or exc}", err=True)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(render_gate_markdown(result) + "\n")
        except OSError as exc:
            # The verdict stands; a missing step summary must not turn it into exit 2.
            click.echo(f"evalkit: warning: could not append to $GITHUB_STEP_SUMMARY: {exc.strerror or exc}", err=True)
    return 0 if result.passed else 1
