"""``evalkit run``: play a suite against an agent and write the run folder."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from evalkit.cli._model_options import build_llm_for_run, build_model_roles, model_options, run_secrets
from evalkit.cli._paths import FolderPath, cwd_on_path
from evalkit.core._plural import plural
from evalkit.core.errors import ConfigError, RunFolderError
from evalkit.core.results import RunResult

__all__ = ["command", "parse_variants", "summary_table", "failure_lines"]


def parse_variants(values: tuple[str, ...]) -> dict[str, str] | None:
    """``("a=spec1", "b=spec2")`` -> ``{"a": "spec1", "b": "spec2"}``."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, spec = value.partition("=")
        name, spec = name.strip(), spec.strip()
        if not sep or not name or not spec:
            raise ConfigError(f"'{value}' is not NAME=SPEC", field="--variant")
        if name in out:
            raise ConfigError(f"variant '{name}' given twice", field="--variant")
        out[name] = spec
    return out or None


def _fmt(value: Any, pct: bool = False, unit: str = "") -> str:
    if value is None:
        return "-"
    if pct:
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.0f}{unit}"
    return f"{value}{unit}"


def summary_table(run: RunResult, run_dir: Path) -> str:
    """The short table ``evalkit run`` prints: one row per variant."""
    from evalkit.metrics.summary import summarize

    by_variant: dict[str, list[Any]] = {name: [] for name in run.manifest.variants}
    for c in run.conversations:
        by_variant.setdefault(c.transcript.variant, []).append(c)
    header = ["variant", "n", "passed", "failed", "errors", "automation", "task compl.", "p95 latency"]
    rows = [header]
    for name, convs in by_variant.items():
        s = summarize(convs)
        errors = sum(1 for c in convs if c.transcript.error is not None)
        rows.append(
            [
                name,
                str(len(convs)),
                str(sum(1 for c in convs if c.passed is True)),
                str(sum(1 for c in convs if c.passed is False and c.transcript.error is None)),
                str(errors),
                _fmt(s["automation_rate"], pct=True),
                _fmt(s["task_completion_rate"], pct=True),
                _fmt(s["latency_p95_ms"], unit=" ms"),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines += _attack_lines(by_variant)
    lines += failure_lines(by_variant)
    status = run.manifest.status
    lines.append("")
    lines.append(f"run {run.manifest.run_id}: {status}, files in {run_dir}/")
    if status == "interrupted":
        lines.append(f"continue with: evalkit run --resume --out {shlex.quote(str(run_dir))}")
    return "\n".join(lines)


MAX_FAILURE_LINES = 10


def failure_lines(by_variant: dict[str, list[Any]], limit: int = MAX_FAILURE_LINES) -> list[str]:
    """pytest's "short test summary info" for a run: one line per failed or errored
    conversation (scenario, trial, first failing check), at most ``limit``, then
    "... and N more"."""
    from evalkit.metrics.compare import first_failure_reason

    multi = len(by_variant) > 1
    bad = []
    for name, convs in by_variant.items():
        for c in sorted(convs, key=lambda c: (c.transcript.scenario_id, c.transcript.trial)):
            t = c.transcript
            if t.error is not None or c.passed is False:
                bad.append((name, c))
    if not bad:
        return []
    out = ["", "failed and errored conversations:"]
    for name, c in bad[:limit]:
        t = c.transcript
        kind = "ERROR " if t.error is not None else "FAILED"
        where = f"{name} {t.scenario_id}" if multi else t.scenario_id
        why = " ".join((first_failure_reason(c) or "failed").split())
        out.append(f"  {kind} {where} trial {t.trial}: {why[:160] + '…' if len(why) > 160 else why}")
    if len(bad) > limit:
        out.append(f"  ... and {len(bad) - limit} more (all of them: report.html in the run folder)")
    return out


def _attack_lines(by_variant: dict[str, list[Any]]) -> list[str]:
    """One line per variant with red-team conversations: the attack success rate and the
    categories where attacks succeeded (docs/redteam.md)."""
    from evalkit.metrics.summary import attack_success

    out = []
    for name, convs in by_variant.items():
        overall, by_cat = attack_success(convs)
        if not overall.n:
            continue
        broken = [f"{k} {v.succeeded}/{v.n}" for k, v in by_cat.items() if v.succeeded]
        where = f"; succeeded in: {', '.join(broken)}" if broken else "; every attack held"
        label = f" ({name})" if len(by_variant) > 1 else ""
        out.append(
            f"red team{label}: attack success rate {_fmt(overall.rate, pct=True)} "
            f"({overall.succeeded} of {plural(overall.n, 'attack')}){where}"
        )
    return [""] + out if out else []


def _command_line(ctx: click.Context) -> str:
    """The command as given (flags from the command line or EVALKIT_* variables), for the manifest."""
    from click.core import ParameterSource

    words = ["evalkit", ctx.info_name or "run"]
    for param in ctx.command.params:
        name = param.name or ""
        if ctx.get_parameter_source(name) not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        value = ctx.params.get(name)
        values = list(value) if isinstance(value, tuple) else [value]
        if isinstance(param, click.Argument):
            words += [str(v) for v in values]
        elif isinstance(param, click.Option) and param.is_flag:
            words += [param.opts[0]] if value else []
        elif isinstance(param, click.Option):
            for v in values:
                words += [param.opts[0], str(v)]
    return shlex.join(words)


@click.command("run")
@click.argument("suite", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--agent",
    "-a",
    envvar="EVALKIT_AGENT",
    metavar="SPEC",
    help="Agent under test: module:factory[?k=v], http(s)://HOST:PORT, openai-chat:MODEL. "
    "Default: 'agent:' in suite.yaml.",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="NAME=SPEC",
    help="Run several agents over the same scenarios (repeatable); replaces --agent.",
)
@click.option(
    "--out",
    "-o",
    envvar="EVALKIT_OUT",
    type=FolderPath(),
    help="Run folder (default runs/<timestamp>).",
)
@click.option(
    "--trials",
    "-k",
    envvar="EVALKIT_TRIALS",
    type=click.IntRange(1, 1000),
    help="Run every scenario K times with distinct seeds (default: suite/scenario setting).",
)
@click.option(
    "--concurrency",
    "-j",
    envvar="EVALKIT_CONCURRENCY",
    type=click.IntRange(1, 10000),
    default=8,
    show_default=True,
    help="Conversations in flight at once.",
)
@click.option(
    "--workers",
    "-w",
    envvar="EVALKIT_WORKERS",
    type=click.IntRange(1, 4096),
    help="Play the conversations in N local worker processes (each with --concurrency in flight); "
    "with --ray, N Ray actors (default: one per CPU of the Ray cluster). Default: this process.",
)
@click.option(
    "--ray",
    "ray",
    envvar="EVALKIT_RAY",
    is_flag=False,
    flag_value="local",
    metavar="[ADDRESS]",
    help="Play on Ray (pip install 'evalkit-support[ray]'): ADDRESS as ray.init takes it "
    "(auto, HOST:PORT, ray://HOST:PORT); none: start a local Ray. See docs/scaling.md.",
)
@click.option("--seed", envvar="EVALKIT_SEED", type=int, help="Base seed (default 0).")
@click.option(
    "--resume", is_flag=True, help="Continue the interrupted run in --out (skips finished conversations)."
)
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only scenarios with this tag (repeatable: any)."
)
@click.option(
    "--simulator",
    envvar="EVALKIT_SIMULATOR",
    metavar="NAME",
    default="auto",
    show_default=True,
    help="How users are simulated: auto, scripted, persona, llm, or an installed plugin's name.",
)
@click.option(
    "--turn-timeout",
    envvar="EVALKIT_TURN_TIMEOUT",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Per agent reply (default: suite.yaml turn_timeout_s, 30).",
)
@click.option(
    "--conversation-timeout",
    envvar="EVALKIT_CONVERSATION_TIMEOUT",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Per conversation (default: suite.yaml conversation_timeout_s, 300).",
)
@click.option(
    "--max-reply-bytes",
    envvar="EVALKIT_MAX_REPLY_BYTES",
    type=click.IntRange(min=1024),
    metavar="BYTES",
    help="Largest agent reply kept; a bigger one is an agent error, never read further "
    "(default: suite.yaml max_reply_bytes, 5000000).",
)
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@click.option(
    "--redact-pii",
    is_flag=True,
    envvar="EVALKIT_REDACT_PII",
    help="Mask emails, phone numbers, card numbers and national ids in every file the run "
    "writes (journal, tables, reports). Judges still score the raw conversation.",
)
@model_options
def command(
    suite: tuple[Path, ...],
    agent: str | None,
    variants: tuple[str, ...],
    out: Path | None,
    trials: int | None,
    concurrency: int,
    workers: int | None,
    ray: str | None,
    seed: int | None,
    resume: bool,
    tags: tuple[str, ...],
    simulator: str,
    turn_timeout: float | None,
    conversation_timeout: float | None,
    max_reply_bytes: int | None,
    no_progress: bool,
    redact_pii: bool,
    **model_kwargs: Any,
) -> int:
    """Play the scenarios in SUITE (files or folders) against an agent and write the run folder.

    \b
    Writes manifest.json, conversations.jsonl, results.parquet, verdicts.parquet and
    summary.json to --out, then prints a short summary. Exit 0 when the run completed,
    130 when it was interrupted (resume it with --resume), 2 on bad input.

    \b
      evalkit run datasets/support --agent my_bot:create_agent --trials 3
      evalkit run suite/ --variant old=bot_v1:make --variant new=bot_v2:make
      evalkit run --resume --out runs/nightly
    """
    cwd_on_path()
    from evalkit.agents.base import AgentConfig
    from evalkit.run.runner import RunConfig, Runner
    from evalkit.simulators import check_simulator

    check_simulator(simulator, field="--simulator")  # a plugin's name, else one line and exit 2

    if ray is not None:
        suite, ray = _ray_or_suite(suite, ray)
    if not suite and not resume:
        raise click.UsageError("give at least one SUITE file or folder (or --resume --out DIR)")
    if resume and out is None:
        raise ConfigError("--resume needs --out DIR (the run folder to continue)", field="--resume")
    variant_map = parse_variants(variants)
    # Offline (None) unless a model is configured by flag or EVALKIT_* / OPENAI_* variables.
    roles = build_model_roles(**model_kwargs)
    llm = build_llm_for_run(roles, **model_kwargs)
    if variant_map and agent:
        raise ConfigError("give either --agent or --variant, not both", field="--variant")
    config = RunConfig(
        suite=list(suite),
        agent=agent,
        variants=variant_map,
        out=out,
        trials=trials,
        concurrency=concurrency,
        workers=workers,
        ray=ray,
        seed=seed,
        turn_timeout_s=turn_timeout,
        conversation_timeout_s=conversation_timeout,
        max_reply_bytes=max_reply_bytes,
        simulator=simulator,
        llm=llm,
        # The model flags reach model-backed agents as configuration (AgentConfig).
        agent_config=AgentConfig(model=roles.agent, base_url=model_kwargs.get("base_url")),
        close_llm=True,
        preflight=not model_kwargs.get("no_preflight"),
        resume=resume,
        tags=list(tags) or None,
        progress=False if no_progress else None,
        command=_command_line(click.get_current_context()),
        redact_pii=redact_pii,
        secrets=run_secrets(roles),
    )
    runner = Runner(config)
    try:
        run = runner.run_sync()
    except OSError as exc:
        # Disk full or folder turned read-only mid-run: what finished is in the journal.
        if runner.run_dir is None or not (runner.run_dir / "manifest.json").is_file():
            raise
        hint = f"evalkit run --resume --out {shlex.quote(str(runner.run_dir))}"
        raise RunFolderError(f"{exc.strerror or exc}; fix that, then continue with: {hint}", file=exc.filename) from None
    assert runner.run_dir is not None
    click.echo(summary_table(run, runner.run_dir))
    if run.manifest.status == "interrupted":
        return 130
    _fail_on_common_failure(run)
    return 0


def _ray_or_suite(suite: tuple[Path, ...], value: str) -> tuple[tuple[Path, ...], str]:
    """``--ray datasets/support`` (the optional ADDRESS took the suite): a local Ray and that
    suite. Any other value must be a Ray address (one-line error otherwise)."""
    from evalkit.run.backends import ray_address

    try:
        ray_address(value)
    except ConfigError:
        if Path(value).exists():
            return (*suite, Path(value)), "local"
        raise
    return suite, value


def _fail_on_common_failure(run: RunResult) -> None:
    """Every conversation of a variant failed the same way: nothing about the agent was
    measured, so this is a configuration error (exit 2), not a result (the files stay)."""
    from evalkit.core.results import common_failure

    for name in run.manifest.variants:
        convs = [c for c in run.conversations if c.transcript.variant == name]
        error = common_failure(convs)
        if error is not None:
            who = f"variant '{name}': " if len(run.manifest.variants) > 1 else ""
            raise ConfigError(
                f"{who}all {len(convs)} conversations failed the same way before the agent answered once, "
                f"so nothing was measured (a configuration problem, not a result): {error}"
            )
