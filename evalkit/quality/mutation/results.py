"""What ``evalkit mutate`` found (``mutation.json``) and the equivalents file.

A mutant is *killed* when a conversation that passes on the clean agent fails with the
mutant in (a deterministic verdict fails or the agent errors), *killed by timeout* when
its worker ran past the per-mutant timeout (counted apart), *survived* otherwise and
*equivalent* when ``mutation-equivalents.yaml`` says it cannot change behaviour. The
mutation score is ``(killed + timed out) / (mutants - equivalent)``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from evalkit.core.errors import ConfigError
from evalkit.core.strict import StrictModel

__all__ = [
    "EQUIVALENTS_FILE",
    "MutantStatus",
    "KillingVerdict",
    "MutantResult",
    "ModuleScore",
    "MutationReport",
    "Equivalent",
    "EquivalentsFile",
    "load_equivalents",
    "render_text",
    "score",
]

EQUIVALENTS_FILE = "mutation-equivalents.yaml"


class MutantStatus(enum.StrEnum):
    """How a mutant ended."""

    killed = "killed"
    timeout = "timeout"  # killed by the per-mutant timeout (e.g. an endless loop)
    survived = "survived"
    equivalent = "equivalent"


class KillingVerdict(StrictModel):
    """A failed deterministic verdict (or the agent's error) in the killing conversation."""

    judge: str
    spec: str | None = None
    reason: str = ""


class MutantResult(StrictModel):
    """One mutant and what the suite did to it."""

    id: str
    module: str  # the file as displayed (e.g. reference_agent/tools.py)
    operator: str
    occurrence: int
    line: int
    original: str
    mutated: str
    diff: str = ""
    status: MutantStatus
    killed_by: str | None = None  # the scenario id whose conversation failed first
    verdicts: list[KillingVerdict] = Field(default_factory=list)
    error: str | None = None  # the agent's error when it broke (import error, crash)
    covered_by: list[str] = Field(default_factory=list)  # scenarios that ran the mutated line
    played: int = 0  # conversations played against this mutant
    seconds: float = 0.0
    cached: bool = False
    hint: str = ""  # survivors: the assertion that seems to be missing
    equivalent_reason: str | None = None


class ModuleScore(StrictModel):
    """The counts and the score of one module."""

    module: str
    generated: int = 0
    killed: int = 0
    timeout: int = 0
    survived: int = 0
    equivalent: int = 0
    not_covered: int = 0  # survivors whose line no scenario runs
    score: float | None = None  # (killed + timeout) / (generated - equivalent)


class MutationReport(StrictModel):
    """The whole mutation run (``mutation.json``)."""

    schema_version: int = 1
    suites: list[str] = Field(default_factory=list)
    agent: str
    targets: list[str] = Field(default_factory=list)
    operators: str = "core"
    n_scenarios: int = 0
    clean_failing: list[str] = Field(default_factory=list)  # scenarios the clean agent fails: no oracle
    generated: int = 0  # mutants generated before sampling
    sample: int | None = None
    seed: int | None = None
    jobs: int = 1
    timeout_s: float | None = None
    duration_s: float = 0.0
    played_mutants: int = 0  # mutants actually played (not from the cache)
    cached_mutants: int = 0
    totals: ModuleScore
    modules: list[ModuleScore] = Field(default_factory=list)
    # judge name -> mutants whose killing conversation had this judge fail
    judges: dict[str, int] = Field(default_factory=dict)
    # scenario id -> mutants it killed first
    scenarios: dict[str, int] = Field(default_factory=dict)
    mutants: list[MutantResult] = Field(default_factory=list)
    # Equivalents-file ids for a mutated module that match no mutant of it (code changed: review)
    stale_equivalents: list[str] = Field(default_factory=list)
    interrupted: bool = False


def score(name: str, results: Iterable[MutantResult]) -> ModuleScore:
    """Counts and the mutation score over ``results``."""
    s = ModuleScore(module=name)
    for r in results:
        s.generated += 1
        if r.status == MutantStatus.killed:
            s.killed += 1
        elif r.status == MutantStatus.timeout:
            s.timeout += 1
        elif r.status == MutantStatus.equivalent:
            s.equivalent += 1
        else:
            s.survived += 1
            s.not_covered += not r.covered_by
    scored = s.generated - s.equivalent
    s.score = round((s.killed + s.timeout) / scored, 4) if scored else None
    return s


# -- equivalents --------------------------------------------------------------------------------
class Equivalent(StrictModel):
    """A survivor declared equivalent: it cannot change what the agent does."""

    id: str
    module: str | None = None  # for the reader
    change: str | None = None  # for the reader: "original -> mutated"
    reason: str = Field(min_length=1)


class EquivalentsFile(StrictModel):
    """``mutation-equivalents.yaml``: kept in the repository, reviewed like code."""

    equivalents: list[Equivalent] = Field(default_factory=list)


def load_equivalents(path: str | Path | None) -> dict[str, Equivalent]:
    """Mutant id -> entry. A missing default file is an empty list; a bad file is an error."""
    if path is None:
        path = Path(EQUIVALENTS_FILE)
        if not path.exists():
            return {}
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError("no such file", field=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {' '.join(str(exc).split())}", field=str(path)) from None
    try:
        data = EquivalentsFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{where}: {err['msg']}", field=str(path)) from None
    out: dict[str, Equivalent] = {}
    for e in data.equivalents:
        if e.id in out:
            raise ConfigError(f"equivalents: id {e.id} listed twice", field=str(path))
        out[e.id] = e
    return out


def render_text(report: MutationReport, *, survivors: int = 10) -> str:
    """The terminal summary: counts and score per module, the top killers, the first survivors."""
    head = (
        f"{'module':34} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'equiv':>5} {'score':>7}"
    )
    lines = [head]
    for s in (
        [*report.modules, report.totals] if len(report.modules) > 1 else report.modules or [report.totals]
    ):
        sc = f"{s.score:.1%}" if s.score is not None else "-"
        lines.append(
            f"{s.module:34} {s.generated:7} {s.killed:6} {s.timeout:7} {s.survived:8} {s.equivalent:5} {sc:>7}"
        )
    lines.append("")
    sample = (
        f" (sample of {report.sample}, seed {report.seed}, out of {report.generated})"
        if report.sample
        else ""
    )
    lines.append(
        f"mutation score {report.totals.score:.1%}{sample}"
        if report.totals.score is not None
        else "no mutant scored"
    )
    lines.append(
        f"{report.played_mutants} mutants played, {report.cached_mutants} from the cache, "
        f"{report.jobs} workers, {report.duration_s:.1f} s"
    )
    if report.judges:
        lines.append(
            "killed first by: " + ", ".join(f"{k} ({v})" for k, v in list(report.judges.items())[:6])
        )
    if report.clean_failing:
        lines.append(f"clean agent fails (cannot kill anything): {', '.join(report.clean_failing)}")
    if report.stale_equivalents:
        lines.append(
            f"equivalents matching no mutant (the code changed; review or delete them): "
            f"{', '.join(report.stale_equivalents)}"
        )
    alive = [m for m in report.mutants if m.status == MutantStatus.survived]
    if alive:
        lines.append("")
        lines.append(f"surviving mutants ({len(alive)}; all in mutation.json / mutation.html):")
        for m in alive[:survivors]:
            change = f"{' '.join(m.original.split())[:60]}  ->  {' '.join(m.mutated.split())[:60]}"
            lines.append(f"  {m.id}  {m.module}:{m.line}  {change}")
            lines.append(f"      hint: {m.hint}")
        if len(alive) > survivors:
            lines.append(f"  ... {len(alive) - survivors} more")
    if report.interrupted:
        lines.append("interrupted: the counts cover only the mutants played before the stop")
    return "\n".join(lines)
