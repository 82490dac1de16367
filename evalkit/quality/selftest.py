"""Self-test: does the suite catch real faults?

``run_selftest`` plays a suite against a clean agent and against the same agent with each
seeded fault switched on (agent spec query ``?faults=NAME``), in ONE run folder whose
variants are ``clean`` and the fault names, so the HTML report shows them side by side.
:func:`detection_matrix` then reads the run: a fault is *caught* by a scenario when that
scenario passes on the clean agent and a deterministic verdict fails with the fault on.
The self-test passes only when the clean agent has zero failures and zero errors and
every fault is caught at least once.

The fault catalogue comes from the agent's own package, found by name like the agent
itself (evalkit never imports the reference agent): a ``FAULTS`` mapping (name -> object
with a ``description``) on the factory's module or on ``<package>.faults``.
"""

from __future__ import annotations

import dataclasses
import importlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import Field

from evalkit.core._plural import plural
from evalkit.core.errors import ConfigError
from evalkit.core.results import ConversationResult, JudgeKind, RunResult, Verdict
from evalkit.core.strict import StrictModel

__all__ = [
    "CLEAN",
    "DEFAULT_FACTORY",
    "DEFAULT_SUITE",
    "FAST_VALUES",
    "SELFTEST_JSON",
    "SELFTEST_MD",
    "TIMING_DIR",
    "FaultInfo",
    "FaultChoice",
    "SelftestConfig",
    "JudgeHit",
    "Catch",
    "VariantResult",
    "SelftestReport",
    "fault_catalogue",
    "select_faults",
    "fault_spec",
    "detection_matrix",
    "run_selftest",
    "render_matrix",
    "render_markdown",
    "write_selftest",
]

CLEAN = "clean"
DEFAULT_SUITE = "datasets/support"
DEFAULT_FACTORY = "reference_agent:create_agent"
SELFTEST_JSON = "selftest.json"
SELFTEST_MD = "selftest.md"
TIMING_DIR = "timing"  # sub-folder of the run holding the faults that take a value
# Values used for faults that take one when the selection gives none. A 2 s reply is
# caught by the suite's voice latency budget (1.5 s, `selftest_gaps.yaml`) and, with every
# conversation in flight at once, costs ~25 s of wall time instead of 3.5 s x 12 turns.
FAST_VALUES: dict[str, float] = {"slow_reply": 2.0}


# -- the catalogue ----------------------------------------------------------------------
@dataclass(frozen=True)
class FaultInfo:
    """One seeded fault as the agent's catalogue describes it."""

    name: str
    description: str = ""
    default: float | None = None  # the fault's own default value, when it takes one


@dataclass(frozen=True)
class FaultChoice:
    """A fault chosen for this self-test, with the value passed to it (if any)."""

    name: str
    value: float | None = None
    description: str = ""

    @property
    def label(self) -> str:
        """``name`` or ``name=value`` as passed in the agent spec."""
        return self.name if self.value is None else f"{self.name}={self.value:g}"


def _factory_module(factory: str) -> str:
    target = factory.partition("?")[0]
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"'{factory}' is not module:factory", field="--agent-factory")
    return module


def fault_catalogue(factory: str) -> dict[str, FaultInfo]:
    """The faults the agent behind ``factory`` can switch on (empty when it has no catalogue).

    Looks for ``FAULTS`` on the factory's module, then on ``<top package>.faults``.
    """
    module = _factory_module(factory)
    candidates = [module, f"{module.split('.')[0]}.faults"]
    for name in dict.fromkeys(candidates):
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the module exists but one of its own imports is missing
            if name == module:
                raise ConfigError(f"cannot import module '{module}'", field="--agent-factory") from None
            continue  # no <package>.faults: no catalogue
        faults = getattr(mod, "FAULTS", None)
        if isinstance(faults, Mapping):
            return {
                str(key): FaultInfo(
                    name=str(key),
                    description=str(getattr(value, "description", value if isinstance(value, str) else "")),
                    default=getattr(value, "default", None),
                )
                for key, value in faults.items()
            }
    return {}


def select_faults(
    selection: str | Sequence[str] | None, catalogue: Mapping[str, FaultInfo]
) -> list[FaultChoice]:
    """``"all"`` (default) or ``"a,b=1.5"`` -> the faults to run, in catalogue order.

    Unknown names raise :class:`ConfigError`. A fault that takes a value gets the one
    given, else :data:`FAST_VALUES`, else its own default (passed implicitly).
    """
    items = _split(selection)
    if not items or items == ["all"]:
        if not catalogue:
            raise ConfigError(
                "the agent has no fault catalogue (a FAULTS mapping); name the faults with --faults a,b",
                field="--faults",
            )
        items = list(catalogue)
    chosen: dict[str, FaultChoice] = {}
    for item in items:
        name, sep, raw = (part.strip() for part in item.partition("="))
        if catalogue and name not in catalogue:
            raise ConfigError(f"unknown fault '{name}'; known: {', '.join(catalogue)}", field="--faults")
        if name == CLEAN:
            raise ConfigError(f"'{CLEAN}' names the fault-free agent, not a fault", field="--faults")
        if name in chosen:
            raise ConfigError(f"fault '{name}' given twice", field="--faults")
        value: float | None = None
        if sep:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name}: value '{raw}' is not a number", field="--faults") from None
        info = catalogue.get(name)
        if value is None and info is not None and info.default is not None:
            value = FAST_VALUES.get(name)
        chosen[name] = FaultChoice(name, value, info.description if info else "")
    order = {name: i for i, name in enumerate(catalogue)}
    return sorted(chosen.values(), key=lambda c: order.get(c.name, len(order)))


def _split(selection: str | Sequence[str] | None) -> list[str]:
    if selection is None:
        return []
    parts = selection.split(",") if isinstance(selection, str) else list(selection)
    return [p.strip() for p in parts if p.strip()]


def fault_spec(factory: str, fault: FaultChoice | None) -> str:
    """The agent spec of the clean agent (``None``) or of one fault: ``factory?faults=NAME``."""
    if fault is None:
        return factory
    base, sep, query = factory.partition("?")
    if sep and any(p.partition("=")[0] == "faults" for p in query.split("&")):
        raise ConfigError("must not set faults= itself: the self-test adds it", field="--agent-factory")
    return f"{base}?{query + '&' if query else ''}faults={fault.label}"


# -- the result (selftest.json) ------------------------------------------------------------
class JudgeHit(StrictModel):
    """A deterministic verdict that failed with a fault on (and passed on the clean agent)."""

    judge: str
    spec: str | None = None
    turn: int | None = None
    reason: str = ""


class Catch(StrictModel):
    """One scenario that caught a fault: the trials that failed and the verdicts that failed."""

    scenario_id: str
    trials: list[int] = Field(default_factory=list)
    verdicts: list[JudgeHit] = Field(default_factory=list)


class VariantResult(StrictModel):
    """The clean agent's result, or one fault's detection row."""

    variant: str
    fault: str | None = None  # None for the clean agent
    value: float | None = None
    description: str = ""
    agent: str
    n: int = 0
    passed: int = 0
    failed: int = 0  # conversations that failed (deterministic verdicts or errors)
    errors: int = 0  # conversations the agent or simulator broke (never a catch)
    # For a fault: the scenarios that caught it. For the clean agent: the scenarios it fails.
    scenarios: list[Catch] = Field(default_factory=list)
    # judge name -> how many scenarios it caught the fault (or failed the clean agent) in.
    judges: dict[str, int] = Field(default_factory=dict)
    # Failures that do not count as catches (the clean agent fails there too, or an error).
    not_credited: list[str] = Field(default_factory=list)
    # A fault: at least one scenario caught it. The clean agent: always False.
    caught: bool = False


class SelftestReport(StrictModel):
    """What ``evalkit selftest`` found (written as ``selftest.json``)."""

    schema_version: int = 1
    passed: bool
    suites: list[str] = Field(default_factory=list)
    agent_factory: str
    run_id: str
    run_dir: str | None = None
    # The other runs' ids (the faults that take a value run apart, in run_dir/timing).
    other_runs: list[str] = Field(default_factory=list)
    n_scenarios: int = 0
    trials: int = 1
    duration_s: float | None = None
    clean: VariantResult
    faults: list[VariantResult] = Field(default_factory=list)
    uncaught: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # why it failed, one line each
    interrupted: bool = False  # a run was stopped (Ctrl-C) before every conversation ran


# -- the matrix ----------------------------------------------------------------------------
def _failed_deterministic(result: ConversationResult) -> list[Verdict]:
    return [
        v
        for v in result.verdicts
        if v.kind == JudgeKind.deterministic and v.skipped is None and v.error is None and v.passed is False
    ]


def _hit(v: Verdict) -> JudgeHit:
    return JudgeHit(judge=v.judge, spec=v.spec, turn=v.turn, reason=v.reason)


def _catches(
    convs: list[ConversationResult], baseline_ok: set[tuple[str, int]] | None
) -> tuple[list[Catch], dict[str, int], list[str]]:
    """Group failed deterministic verdicts by scenario. With ``baseline_ok`` (the clean
    agent's passing conversations), only failures where the clean agent passed count."""
    by_scenario: dict[str, Catch] = {}
    judges: dict[str, set[str]] = {}
    not_credited: list[str] = []
    for c in convs:
        t = c.transcript
        if c.passed is not False:
            continue
        verdicts = _failed_deterministic(c)
        if (
            t.error is not None
            or not verdicts
            or (baseline_ok is not None and (t.scenario_id, t.trial) not in baseline_ok)
        ):
            why = (
                "error" if t.error is not None else "no failed verdict" if not verdicts else "clean fails too"
            )
            not_credited.append(f"{t.scenario_id}#{t.trial}: {why}")
            continue
        catch = by_scenario.setdefault(t.scenario_id, Catch(scenario_id=t.scenario_id))
        catch.trials.append(t.trial)
        seen = {(h.judge, h.spec, h.turn) for h in catch.verdicts}
        for v in verdicts:
            if (v.judge, v.spec, v.turn) not in seen:
                catch.verdicts.append(_hit(v))
                seen.add((v.judge, v.spec, v.turn))
            judges.setdefault(v.judge, set()).add(t.scenario_id)
    counts = Counter({name: len(ids) for name, ids in judges.items()})
    return list(by_scenario.values()), dict(counts.most_common()), not_credited


def _variant_row(convs: list[ConversationResult], **fields: Any) -> VariantResult:
    return VariantResult(
        n=len(convs),
        passed=sum(1 for c in convs if c.passed is True),
        failed=sum(1 for c in convs if c.passed is False),
        errors=sum(1 for c in convs if c.transcript.error is not None),
        **fields,
    )


def detection_matrix(
    runs: RunResult | Sequence[RunResult],
    faults: Sequence[FaultChoice],
    *,
    factory: str,
    run_dir: str | Path | None = None,
) -> SelftestReport:
    """Read a self-test run (variants ``clean`` + one per fault; the faults may be spread
    over several runs, the first one holding ``clean``) into a :class:`SelftestReport`.

    A pure function of the saved runs: ``evalkit selftest`` calls it right after the run.
    """
    runs = [runs] if isinstance(runs, RunResult) else list(runs)
    by_variant: dict[str, list[ConversationResult]] = {}
    for one in runs:
        for c in one.conversations:
            by_variant.setdefault(c.transcript.variant, []).append(c)
    clean_convs = by_variant.get(CLEAN, [])
    baseline_ok = {(c.transcript.scenario_id, c.transcript.trial) for c in clean_convs if c.passed is True}
    clean_fails, clean_judges, clean_other = _catches(clean_convs, None)
    clean = _variant_row(
        clean_convs,
        variant=CLEAN,
        agent=fault_spec(factory, None),
        scenarios=clean_fails,
        judges=clean_judges,
        not_credited=clean_other,
    )
    problems: list[str] = []
    if clean.n == 0:
        problems.append("the clean agent played no conversation")
    if clean.failed or clean.errors:
        problems.append(
            f"the clean agent failed {clean.failed} of {plural(clean.n, 'conversation')} ({plural(clean.errors, 'error')}): "
            + ", ".join(
                sorted({c.scenario_id for c in clean.scenarios} | {x.split("#")[0] for x in clean_other})
            )
        )
    rows: list[VariantResult] = []
    for fault in faults:
        convs = by_variant.get(fault.name, [])
        scenarios, judges, other = _catches(convs, baseline_ok)
        rows.append(
            _variant_row(
                convs,
                variant=fault.name,
                fault=fault.name,
                value=fault.value,
                description=fault.description,
                agent=fault_spec(factory, fault),
                scenarios=scenarios,
                judges=judges,
                not_credited=other,
                caught=bool(scenarios),
            )
        )
    uncaught = [r.variant for r in rows if not r.caught]
    if uncaught:
        problems.append(
            f"{plural(len(uncaught), 'fault')} not caught by any deterministic verdict: {', '.join(uncaught)}"
        )
    stopped = [one.manifest.run_id for one in runs if one.manifest.status != "complete"]
    if stopped:
        problems.append(f"run {', '.join(stopped)} did not complete (interrupted)")
    m = runs[0].manifest
    return SelftestReport(
        passed=not problems,
        suites=list(m.suites),
        agent_factory=factory,
        run_id=m.run_id,
        run_dir=str(run_dir) if run_dir is not None else None,
        other_runs=[one.manifest.run_id for one in runs[1:]],
        n_scenarios=len({c.transcript.scenario_id for c in clean_convs}),
        trials=m.trials,
        duration_s=m.duration_s,
        clean=clean,
        faults=rows,
        uncaught=uncaught,
        problems=problems,
        interrupted=bool(stopped),
    )


# -- running it ----------------------------------------------------------------------------
@dataclass
class SelftestConfig:
    """One self-test: a suite, an agent factory and the faults to seed."""

    suite: Sequence[str | Path] = (DEFAULT_SUITE,)
    agent_factory: str = DEFAULT_FACTORY
    faults: str | Sequence[str] | None = "all"
    out: str | Path | None = None
    trials: int | None = None
    # Conversations in flight at once in the main run (faults with a value run apart).
    concurrency: int = 16
    seed: int | None = None
    tags: list[str] | None = None
    # Only these scenario ids (None: all). For quick checks and tests.
    scenario_ids: list[str] | None = None
    progress: bool | None = False
    progress_stream: IO[str] | None = None
    command: str | None = None


def run_selftest(config: SelftestConfig) -> SelftestReport:
    """Run the self-test and write ``selftest.json`` and ``selftest.md`` into the run folder.

    The clean agent and the faults run as variants of one run (``out``) at
    ``config.concurrency``. Faults that take a value (a delay) run at the same time in a
    second run, ``out/timing``, with every conversation in flight at once: they mostly
    sleep, and in the main run they would hold its workers for minutes. Keeping the main
    run's concurrency modest matters: 100+ conversations competing for the CPU make even
    the clean agent look slow to a latency judge.
    """
    import asyncio

    from evalkit.scenarios.loader import load_suite

    catalogue = fault_catalogue(config.agent_factory)
    faults = select_faults(config.faults, catalogue)
    suite = load_suite(list(config.suite), tags=config.tags or None)
    if config.scenario_ids is not None:
        wanted = set(config.scenario_ids)
        missing = wanted - {s.id for s in suite.scenarios}
        if missing:
            raise ConfigError(f"no scenario {', '.join(sorted(missing))} in the suite", field="scenarios")
        suite = dataclasses.replace(suite, scenarios=[s for s in suite.scenarios if s.id in wanted])
    if not suite.scenarios:
        raise ConfigError("no scenario selected", field="suite")
    out = (
        Path(config.out)
        if config.out is not None
        else Path("runs") / f"selftest-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    from evalkit.run.runfolder import RunFolder

    # Checked (and released) before either run starts: the main run claims ``out`` again
    # before the timing run creates ``out/timing`` inside it.
    RunFolder(out, command=config.command).claim().close()
    timed = [f for f in faults if f.value is not None]
    main_variants = {CLEAN: fault_spec(config.agent_factory, None)}
    main_variants.update({f.name: fault_spec(config.agent_factory, f) for f in faults if f.value is None})
    started = time.monotonic()
    runners = [_runner(config, suite, main_variants, out, config.concurrency, main=True)]
    if timed:
        n_jobs = len(timed) * sum(config.trials or suite.trials_for(s) for s in suite.scenarios)
        variants = {f.name: fault_spec(config.agent_factory, f) for f in timed}
        runners.append(_runner(config, suite, variants, out / TIMING_DIR, min(n_jobs, 1024), main=False))

    async def play() -> list[RunResult]:
        # One Ctrl-C / SIGTERM handler stops every run (each runner would replace the other's).
        loop = asyncio.get_running_loop()
        installed = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, lambda: [r.interrupt() for r in runners])
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        try:
            return list(await asyncio.gather(*(r.run() for r in runners)))
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    runs = asyncio.run(play())
    report = detection_matrix(runs, faults, factory=config.agent_factory, run_dir=out)
    report = report.model_copy(
        update={"duration_s": round(time.monotonic() - started, 2), "suites": [str(p) for p in config.suite]}
    )
    write_selftest(report, out)
    return report


def _runner(
    config: SelftestConfig, suite: Any, variants: dict[str, str], out: Path, concurrency: int, *, main: bool
) -> Any:
    from evalkit.run.runner import RunConfig, Runner

    return Runner(
        RunConfig(
            suite=suite,
            variants=variants,
            out=out,
            trials=config.trials,
            concurrency=concurrency,
            seed=config.seed,
            progress=config.progress if main else False,
            progress_stream=config.progress_stream,
            command=config.command,
            handle_signals=False,  # run_selftest stops every run on Ctrl-C
        )
    )


def write_selftest(report: SelftestReport, out: str | Path) -> None:
    """Write ``selftest.json`` and ``selftest.md`` into the run folder ``out`` (locked meanwhile)."""
    from evalkit.run.runfolder import Existing, RunFolder

    with RunFolder(out).claim(Existing.update) as folder:
        folder.write_file(SELFTEST_JSON, (report.model_dump_json(indent=2) + "\n").encode())
        folder.write_file(SELFTEST_MD, render_markdown(report).encode())


# -- rendering -----------------------------------------------------------------------------
def _judges_text(judges: Mapping[str, int]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in judges.items()) or "-"


def _scenarios_text(row: VariantResult, limit: int | None) -> str:
    ids = [c.scenario_id for c in row.scenarios]
    if limit is not None and len(ids) > limit:
        return ", ".join(ids[:limit]) + f" (+{len(ids) - limit} more)"
    return ", ".join(ids) or "-"


def _row_name(row: VariantResult) -> str:
    return row.variant if row.value is None else f"{row.variant}={row.value:g}"


def render_matrix(report: SelftestReport, *, scenario_limit: int = 3) -> str:
    """The detection matrix as the terminal shows it (one row per fault)."""
    header = ["fault", "failed", "caught by judges (scenarios)", "scenarios"]
    c = report.clean
    clean_cell = f"{c.failed}/{c.n}" + (f" ({plural(c.errors, 'error')})" if c.errors else "")
    rows = [
        header,
        [CLEAN, clean_cell, _judges_text(c.judges) if c.failed else "-", _scenarios_text(c, scenario_limit)],
    ]
    for r in report.faults:
        failed = f"{r.failed}/{r.n}" + (f" ({plural(r.errors, 'error')})" if r.errors else "")
        if r.caught:
            rows.append([_row_name(r), failed, _judges_text(r.judges), _scenarios_text(r, scenario_limit)])
        else:
            rows.append([_row_name(r), failed, "NOT CAUGHT", "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]
    caught = sum(1 for r in report.faults if r.caught)
    n_faults = len(report.faults)
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append("")
    lines.append(
        f"selftest {verdict}: clean agent {c.passed}/{c.n} passed, {c.failed} failed, {plural(c.errors, 'error')}; "
        f"{caught}/{n_faults} faults caught"
        + (f" in {report.duration_s:.1f}s" if report.duration_s is not None else "")
    )
    for problem in report.problems:
        lines.append(f"  - {problem}")
    if report.run_dir:
        timing = f"; faults with a value: {report.run_dir}/{TIMING_DIR}/" if report.other_runs else ""
        lines.append(f"run folder {report.run_dir}/ ({SELFTEST_JSON}, {SELFTEST_MD}, report.html){timing}")
    return "\n".join(lines)


def _md(text: str) -> str:
    # Verdict reasons quote the agent: no live links, images or HTML in selftest.md.
    from evalkit.metrics._numbers import md_escape

    return md_escape(text, None)


def render_markdown(report: SelftestReport) -> str:
    """``selftest.md``: the summary, the full matrix and the verdicts that caught each fault."""
    c = report.clean
    caught = sum(1 for r in report.faults if r.caught)
    out = [
        f"# evalkit selftest: {'PASSED' if report.passed else 'FAILED'}",
        "",
        f"Suite {', '.join(f'`{s}`' for s in report.suites)} ({plural(report.n_scenarios, 'scenario')}, "
        f"{plural(report.trials, 'trial')}) against `{report.agent_factory}`; run `{report.run_id}`"
        + (f", {report.duration_s:.1f} s." if report.duration_s is not None else "."),
        "",
        f"- clean agent: {c.passed}/{c.n} passed, {c.failed} failed, {plural(c.errors, 'error')}",
        f"- faults caught by at least one deterministic verdict: {caught}/{len(report.faults)}",
    ]
    out += [f"- problem: {_md(p)}" for p in report.problems]
    out += [
        "",
        "| fault | defect | failed | judges (scenarios caught) | scenarios |",
        "|---|---|---|---|---|",
    ]
    for r in report.faults:
        judges = _judges_text(r.judges) if r.caught else "**NOT CAUGHT**"
        out.append(
            f"| `{_row_name(r)}` | {_md(r.description)} | {r.failed}/{r.n} | {_md(judges)} | "
            f"{_md(_scenarios_text(r, None))} |"
        )
    if c.scenarios or c.not_credited:
        out += ["", "## Clean agent failures", ""]
        out += [
            f"- `{s.scenario_id}`: " + "; ".join(_md(f"{h.spec or h.judge}: {h.reason}") for h in s.verdicts)
            for s in c.scenarios
        ]
        out += [f"- {_md(x)}" for x in c.not_credited]
    out += ["", "## What caught each fault", ""]
    for r in report.faults:
        out.append(f"### `{_row_name(r)}`" + ("" if r.caught else " (NOT CAUGHT)"))
        out.append("")
        for s in r.scenarios:
            first = s.verdicts[0]
            more = f" (+{len(s.verdicts) - 1} more)" if len(s.verdicts) > 1 else ""
            out.append(f"- `{s.scenario_id}`: {_md(first.spec or first.judge)}: {_md(first.reason)}{more}")
        if r.not_credited:
            out.append(f"- not credited: {_md(', '.join(r.not_credited))}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
