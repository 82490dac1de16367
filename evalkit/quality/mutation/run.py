"""``run_mutation``: generate mutants, play the suite against each, score and cache.

1. The clean agent plays the whole suite once under ``coverage`` (one coverage context per
   scenario) in a worker process: which scenarios pass (the oracle) and which scenarios run
   each line of the targets.
2. Each mutant plays only the passing scenarios that run its line (fastest first), in its
   own worker process, and stops at the first conversation that fails. A mutant whose line
   no scenario runs survives without playing: no conversation can notice it.
3. Results are cached by (mutant, suite hash, agent source hash): a rerun plays only the
   mutants whose code, suite or agent changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from evalkit.core.errors import ConfigError
from evalkit.quality.mutation import _worker
from evalkit.quality.mutation.mutants import (
    CORE_OPERATORS,
    Mutant,
    Target,
    apply_patch,
    generate_mutants,
    require_engine,
    resolve_target,
)
from evalkit.quality.mutation.results import (
    KillingVerdict,
    MutantResult,
    MutantStatus,
    MutationReport,
    load_equivalents,
    score,
)

__all__ = ["DEFAULT_CACHE", "MutateConfig", "run_mutation", "hint_for", "MUTATION_JSON"]

DEFAULT_CACHE = ".evalkit-cache/mutation.jsonl"
MUTATION_JSON = "mutation.json"
CACHE_VERSION = 1


@dataclass
class MutateConfig:
    """One mutation run."""

    suite: Sequence[str | Path] = ("datasets/support",)
    targets: Sequence[str] = ()
    agent: str | None = None  # None: the suite's `agent:` (per scenario)
    operators: Sequence[str] | None = None  # None: CORE_OPERATORS; ["all"]: every cosmic-ray operator
    jobs: int = 2
    timeout_s: float | None = None  # None: 10 s + 5 x the clean time of the mutant's conversations
    sample: int | None = None
    seed: int = 0
    cache: str | Path | None = DEFAULT_CACHE  # None: no cache
    equivalents: str | Path | None = None  # None: ./mutation-equivalents.yaml when present
    tags: list[str] | None = None
    progress: IO[str] | None = None


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _suite_hash(suite: Any, ids: Sequence[str]) -> str:
    files = sorted({Path(f).resolve() for f in suite.files})
    return _sha(*(f.as_posix().encode() + b"\n" + f.read_bytes() for f in files if f.is_file()), *ids)


def _scenario_hashes(suite: Any, config: MutateConfig) -> dict[str, str]:
    """scenario id -> hash of everything that decides its verdicts (the scenario, its suite
    settings and judges, the agent spec used): a cached result stays valid while these do."""
    out: dict[str, str] = {}
    for sc in suite.scenarios:
        out[sc.id] = _sha(
            sc.model_dump_json(),
            suite.config_for(sc).model_dump_json(),
            config.agent or suite.agent_for(sc) or "",
            str(suite.trials_for(sc)),
        )[:16]
    return out


def _package_dir(target: Target) -> Path:
    """The folder of the target's top-level package (the file itself for a lone module)."""
    depth = target.module.count(".") + (1 if target.path.name == "__init__.py" else 0)
    root = target.path
    for _ in range(depth + 1):
        root = root.parent
    top = root / target.module.split(".")[0]
    return top if top.is_dir() else target.path


def _agent_hash(targets: Sequence[Target], specs: Sequence[str]) -> str:
    """The agent's source: every .py file of the targets' packages and of the agent
    factories' packages (found without importing), and the agent specs."""
    files: set[Path] = set()
    roots = [_package_dir(t) for t in targets]
    for spec in specs:
        module = spec.partition("?")[0].partition(":")[0]
        try:
            roots.append(_package_dir(resolve_target(module)))
        except ConfigError:
            pass  # not a Python module (an HTTP agent): only its spec is hashed
    for root in roots:
        files.update([root] if root.is_file() else root.rglob("*.py"))
    return _sha(*sorted(specs), *(f.as_posix().encode() + b"\n" + f.read_bytes() for f in sorted(files)))


class _Cache:
    """Append-only JSON lines: ``{"key": ..., "value": ...}``; the last line for a key wins."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.data[row["key"]] = row["value"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash: that entry is simply played again

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"key": key, "value": value}, sort_keys=True) + "\n")


# -- hints ------------------------------------------------------------------------------------
def _short(text: str, limit: int = 70) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def hint_for(m: MutantResult) -> str:
    """One line: the assertion the suite seems to lack, from the kind of change."""
    code = f"`{_short(m.original)}`"
    op = m.operator.split("/")[-1]
    if not m.covered_by:
        return f"no scenario runs line {m.line}: add a scenario that takes this path and checks its result"
    if op.startswith("ReplaceComparisonOperator_") and any(x in op for x in ("_Lt", "_Gt")):
        return f"boundary value: no scenario sits exactly on the edge of {code}; add one at the limit and one just past it"
    if op.startswith("ReplaceComparisonOperator_"):
        return f"no verdict tells the two sides of {code} apart: assert the reply, tool call or stored state that depends on it"
    if op == "NumberReplacer":
        return f"the constant in {code} is never pinned: add a scenario whose expected reply or stored value depends on it"
    if op.startswith("ReplaceBinaryOperator_") or op.startswith("ReplaceUnaryOperator_"):
        return f"the value computed by {code} is not checked: assert the amount, date or count it produces (state or tool arguments)"
    if op in (
        "AddNot",
        "ReplaceAndWithOr",
        "ReplaceOrWithAnd",
        "ReplaceTrueWithFalse",
        "ReplaceFalseWithTrue",
    ):
        return f"the condition {code} is not checked both ways: add a scenario for the other case and assert what differs"
    if op == "ZeroIterationForLoop":
        return f"no verdict checks what the loop {code} does per item: assert the stored state or every item in the reply"
    if op == "ExceptionReplacer":
        return f"no scenario makes the error handled by {code} happen and checks the agent's answer to it"
    if op in ("ReplaceBreakWithContinue", "ReplaceContinueWithBreak"):
        return (
            f"no scenario has items after the one that stops the loop {code}: add a case with several matches"
        )
    return f"no verdict notices the change to {code}: assert its effect on the reply or the stored state"


# -- the run ----------------------------------------------------------------------------------
def _mutants(targets: Sequence[Target], operators: list[str], cache: _Cache) -> list[Mutant]:
    """The mutants of every target; parsing is the slow part (parso, ~0.1-0.3 s per mutant),
    so each file's mutants are cached by its content, the operators and the engine version."""
    from importlib.metadata import version

    out: list[Mutant] = []
    for t in targets:
        code = t.path.read_text(encoding="utf-8")
        key = _sha("mutants", str(CACHE_VERSION), version("cosmic-ray"), t.module, code, *operators)
        rows = cache.get(key)
        if rows is None:
            made = generate_mutants([t], operators)
            cache.put(
                key,
                [
                    {
                        "operator": m.operator,
                        "occurrence": m.occurrence,
                        "line": m.line,
                        "original": m.original,
                        "mutated": m.mutated,
                        "annotation_only": m.annotation_only,
                        "patch": [list(p) for p in m.patch],
                        "id": m.id,
                        "diff": m.diff,
                    }
                    for m in made
                ],
            )
            out += made
            continue
        for row in rows:
            patch = tuple((int(i1), int(i2), tuple(new)) for i1, i2, new in row.pop("patch"))
            out.append(Mutant(target=t, source=apply_patch(code, patch), patch=patch, **row))
    return out


def _statement_of(line: int, statements: list[int]) -> int:
    """The statement a node on ``line`` belongs to (coverage records a statement's first line)."""
    i = bisect_right(statements, line)
    return statements[i - 1] if i else line


_CACHE_ONLY = ("survived", "killer_hash")
ANNOTATION_ONLY = (
    "changes only a function annotation, which `from __future__ import annotations` never evaluates"
)


def _reusable(value: Any, cover: Sequence[str], hashes: dict[str, str]) -> dict[str, Any] | None:
    """A cached kill (or timeout) still holds while the killing scenario is unchanged; a
    survivor is never reused here (the caller plays the scenarios it has not met yet)."""
    if not isinstance(value, dict) or value.get("status") not in ("killed", "timeout"):
        return None
    killer = value.get("killed_by")
    if killer is not None and (killer not in hashes or hashes[killer] != value.get("killer_hash")):
        return None
    return {k: v for k, v in value.items() if k not in _CACHE_ONLY} | {"cached": True}


def _say(config: MutateConfig, text: str) -> None:
    if config.progress is not None:
        config.progress.write(text + "\n")
        config.progress.flush()


def run_mutation(config: MutateConfig) -> MutationReport:
    """Run mutation testing as configured; returns the report (the caller writes it)."""
    from evalkit.scenarios.loader import load_suite

    require_engine()
    try:
        import coverage  # noqa: F401  # checked up front: the clean run needs it
    except ImportError:
        raise ConfigError(
            "mutation testing needs coverage: pip install 'evalkit-support[mutate]'", field="evalkit mutate"
        ) from None
    if not config.targets:
        raise ConfigError("name at least one module to mutate", field="--target")
    if config.jobs < 1:
        raise ConfigError("must be at least 1", field="--jobs")
    started = time.monotonic()
    targets = list(dict.fromkeys(resolve_target(t) for t in config.targets))
    suite = load_suite(list(config.suite), tags=config.tags or None)
    if not suite.scenarios:
        raise ConfigError("no scenario selected", field="suite")
    plays: list[_worker.Play] = []
    for scenario in suite.scenarios:
        spec = config.agent or suite.agent_for(scenario)
        if not spec:
            raise ConfigError("no agent given (use --agent or 'agent:' in suite.yaml)", field="--agent")
        plays += [_worker.Play(scenario, trial, spec) for trial in range(suite.trials_for(scenario))]
    specs = sorted({p.spec for p in plays})
    packages = sorted(
        {t.module.split(".")[0] for t in targets}
        | {s.partition("?")[0].partition(":")[0].split(".")[0] for s in specs}
    )
    operators = None if config.operators is None else list(config.operators)
    if operators == ["all"]:
        operators = list(require_engine().operator_names())
    op_label = (
        "core" if operators is None else ("all" if config.operators == ["all"] else ",".join(operators))
    )
    suite_hash = _suite_hash(suite, [p.scenario.id for p in plays])
    hashes = _scenario_hashes(suite, config)
    agent_hash = _agent_hash(targets, specs)
    cache = _Cache(Path(config.cache) if config.cache is not None else None)
    equivalents = load_equivalents(config.equivalents)

    if _worker._context().get_start_method() == "fork":
        _worker.warm_up(suite, plays, config.seed, packages)

    # 1. the clean run, with coverage (cached like the mutants)
    base_key = _sha(
        "baseline",
        str(CACHE_VERSION),
        suite_hash,
        agent_hash,
        str(config.seed),
        *[str(t.path) for t in targets],
    )
    baseline = cache.get(base_key)
    if baseline is None:
        _say(config, f"clean run of {len(plays)} conversations under coverage ...")
        got: list[dict[str, Any]] = []
        _worker.run_pool(
            [_worker.Job("clean", _worker.clean_run, (suite, plays, config.seed, targets, packages), None)],
            1,
            lambda job, payload, s: got.append(payload),
        )
        baseline = got[0]
        if "crash" in baseline:
            raise ConfigError(
                f"the clean agent could not be played: {baseline['crash']}", field="evalkit mutate"
            )
        baseline["lines"] = {p: {str(k): v for k, v in d.items()} for p, d in baseline["lines"].items()}
        cache.put(base_key, baseline)
    passing = {sid for sid, e in baseline["scenarios"].items() if e["passed"]}
    seconds = {sid: float(e["seconds"]) for sid, e in baseline["scenarios"].items()}
    clean_failing = sorted(set(baseline["scenarios"]) - passing)
    all_passing = [sid for sid in dict.fromkeys(p.scenario.id for p in plays) if sid in passing]

    # 2. the mutants
    mutants = _mutants(targets, operators if operators is not None else list(CORE_OPERATORS), cache)
    generated = len(mutants)
    # Entries for a module mutated here that match none of its mutants: the code changed under
    # them (or the id was mistyped). Listed so they get reviewed, never silently applied.
    mutated_modules = {t.display for t in targets}
    ids = {m.id for m in mutants}
    stale = sorted(e.id for e in equivalents.values() if e.module in mutated_modules and e.id not in ids)
    if config.sample is not None and config.sample < generated:
        chosen = set(random.Random(config.seed).sample(range(generated), config.sample))
        mutants = [m for i, m in enumerate(mutants) if i in chosen]

    def covering(m: Mutant) -> list[str]:
        path = str(m.target.path)
        line = _statement_of(m.line, baseline["statements"].get(path, []))
        contexts = set(baseline["lines"].get(path, {}).get(str(line), []))
        if contexts & {_worker.IMPORT_CONTEXT, ""}:
            return list(all_passing)  # module-level code: every conversation depends on it
        return sorted((c for c in contexts if c in passing), key=lambda sid: (seconds.get(sid, 0.0), sid))

    results: dict[str, MutantResult] = {}
    jobs: list[_worker.Job] = []
    for m in mutants:
        cover = covering(m)
        key = _sha(
            "mutant",
            str(CACHE_VERSION),
            m.target.module,
            m.operator,
            m.source_sha,
            agent_hash,
            str(config.seed),
        )
        base: dict[str, Any] = dict(
            id=m.id,
            module=m.target.display,
            operator=m.operator,
            occurrence=m.occurrence,
            line=m.line,
            original=m.original,
            mutated=m.mutated,
            diff=m.diff,
            covered_by=cover,
        )
        if m.annotation_only:
            results[m.id] = MutantResult(
                **base, status=MutantStatus.equivalent, equivalent_reason=ANNOTATION_ONLY
            )
            continue
        cached = _reusable(cache.get(key), cover, hashes)
        if cached is not None:
            results[m.id] = MutantResult(**base, **cached)
            continue
        survived_before = set((cache.get(key) or {}).get("survived", []))
        if not cover or all(hashes[sid] in survived_before for sid in cover):
            # no scenario runs the line, or every one that does already let it survive
            results[m.id] = MutantResult(**base, status=MutantStatus.survived, cached=bool(cover))
            if cache.get(key) is None:
                cache.put(key, {"status": "survived", "survived": [], "seconds": 0.0})
            continue
        # only the scenarios that are new or changed since the mutant last survived
        cover_to_play = [sid for sid in cover if hashes[sid] not in survived_before]
        wanted = set(cover_to_play)
        order = {sid: i for i, sid in enumerate(cover_to_play)}
        mplays = sorted(
            (p for p in plays if p.scenario.id in wanted), key=lambda p: (order[p.scenario.id], p.trial)
        )
        budget = (
            config.timeout_s
            if config.timeout_s is not None
            else 10.0 + 5.0 * sum(seconds.get(s, 1.0) for s in cover_to_play)
        )
        jobs.append(
            _worker.Job(
                (m, key, base, survived_before, cover_to_play),
                _worker.play_mutant,
                (suite, mplays, config.seed, m.target, m.source, packages),
                budget,
            )
        )

    n_cached = sum(1 for r in results.values() if r.cached)
    n_equivalent = sum(1 for r in results.values() if r.status == MutantStatus.equivalent)
    n_uncovered = len(results) - n_cached - n_equivalent
    sampled = f", {len(mutants)} sampled (seed {config.seed})" if len(mutants) < generated else ""
    _say(
        config,
        f"{generated} mutants generated{sampled}; {n_cached} from the cache, {n_equivalent} annotation-only, "
        f"{n_uncovered} on lines no scenario runs; {len(jobs)} to play on {config.jobs} workers",
    )
    done = [0]

    def on_done(job: _worker.Job, payload: dict[str, Any], took: float) -> None:
        m, key, base, survived_before, cover_to_play = job.key
        value: dict[str, Any]
        if payload.get("timeout"):
            value = {"status": "timeout", "error": f"no answer within {job.timeout:.0f}s (killed by timeout)"}
        elif "crash" in payload:
            value = {"status": "killed", "error": f"worker crashed: {payload['crash']}"}
        else:
            killed = payload["killed_by"] is not None or payload["error"] is not None
            value = {
                "status": "killed" if killed else "survived",
                "killed_by": payload["killed_by"],
                "verdicts": payload["verdicts"],
                "error": payload["error"],
                "played": payload["played"],
            }
        value["seconds"] = round(took, 3)
        if value["status"] == "survived":
            value["survived"] = sorted(survived_before | {hashes[sid] for sid in cover_to_play})
        elif value.get("killed_by"):
            value["killer_hash"] = hashes[value["killed_by"]]
        cache.put(key, value)
        results[m.id] = MutantResult(**{k: v for k, v in value.items() if k not in _CACHE_ONLY}, **base)
        done[0] += 1
        if done[0] % 10 == 0 or done[0] == len(jobs):
            _say(config, f"  {done[0]}/{len(jobs)} mutants played")

    interrupted = False
    try:
        _worker.run_pool(jobs, config.jobs, on_done)
    except KeyboardInterrupt:
        interrupted = True  # every child is already killed; finished mutants are in the cache

    # 3. equivalents, hints, scores
    ordered = [results[m.id] for m in mutants if m.id in results]
    for r in ordered:
        eq = equivalents.get(r.id)
        if eq is not None:
            r.equivalent_reason = eq.reason
            if r.status == MutantStatus.survived:
                r.status = MutantStatus.equivalent
        if r.status == MutantStatus.survived:
            r.hint = hint_for(r)
        if r.verdicts:
            r.verdicts = [KillingVerdict.model_validate(v) for v in r.verdicts]
    judges: Counter[str] = Counter()
    scenarios: Counter[str] = Counter()
    for r in ordered:
        if r.status == MutantStatus.killed:
            judges.update({v.judge for v in r.verdicts})
            if r.killed_by:
                scenarios[r.killed_by] += 1
    by_module: dict[str, list[MutantResult]] = {}
    for r in ordered:
        by_module.setdefault(r.module, []).append(r)
    return MutationReport(
        suites=[str(p) for p in config.suite],
        agent=config.agent or ", ".join(specs),
        targets=[t.display for t in targets],
        operators=op_label,
        n_scenarios=len(suite.scenarios),
        clean_failing=clean_failing,
        generated=generated,
        sample=config.sample,
        seed=config.seed,
        jobs=config.jobs,
        timeout_s=config.timeout_s,
        duration_s=round(time.monotonic() - started, 2),
        played_mutants=sum(1 for r in ordered if not r.cached and r.played),
        cached_mutants=sum(1 for r in ordered if r.cached),
        totals=score("all", ordered),
        modules=[score(name, rs) for name, rs in by_module.items()],
        judges=dict(judges.most_common()),
        scenarios=dict(scenarios.most_common()),
        mutants=ordered,
        stale_equivalents=stale,
        interrupted=interrupted,
    )


def write_report(
    report: MutationReport, out: str | Path, render_html: Callable[[MutationReport], str] | None = None
) -> Path:
    """Write ``mutation.json`` (and ``mutation.html``) into ``out``; returns the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (MUTATION_JSON + ".tmp")
    tmp.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / MUTATION_JSON)
    if render_html is not None:
        (out / "mutation.html").write_text(render_html(report), encoding="utf-8")
    return out
