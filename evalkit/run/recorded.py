"""Scoring recorded conversations (no agent, no simulator) and agreeing with the source's verdicts.

:func:`score_run` re-runs every judge over the transcripts of a run folder (an imported
one, or any earlier run) with the scenarios saved beside them, then writes the same files
``evalkit run`` writes. :func:`agreement` compares evalkit's pass/fail with the source's own
(``source_verdict``, e.g. τ-bench's reward): rate with a Wilson 95% interval, confusion
matrix, Cohen's kappa, pass^k from both, and every disagreement with its reason.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.core._clock import now_iso
from evalkit.core._plural import plural
from evalkit.core.errors import ConfigError
from evalkit.core.masking import Secrets
from evalkit.core.results import ConversationResult, JudgeKind, RunResult
from evalkit.metrics.summary import pass_hat_k
from evalkit.scenarios.models import Scenario

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients
    from evalkit.run.runfolder import RunFolder

__all__ = ["AGREEMENT_FILE", "score_run", "agreement", "format_agreement", "source_pass_hat_k"]

AGREEMENT_FILE = "agreement.json"



def score_run(
    run_dir: str | Path,
    *,
    scenarios: str | Path | None = None,
    out: str | Path | None = None,
    llm: ModelClients | None = None,
    concurrency: int = 8,
    command: str | None = None,
    redact_pii: bool = False,
    secrets: Secrets | None = None,
) -> RunResult:
    """Judge every transcript in ``run_dir`` and write the run files to ``out`` (default: in place).

    ``scenarios`` defaults to ``run_dir/scenarios.yaml``. Metrics the recording carried
    (``human_csat``, ``source_verdict``, ...) are kept; ``csat_proxy`` is recomputed.
    Writes ``agreement.json`` when some conversation has a ``source_verdict``. With
    ``redact_pii`` (kept when the run was already redacted) the conversations are judged
    as they are and written with PII masked, as ``evalkit run --redact-pii`` does, and no
    PII reaches the model response cache. ``secrets`` (default: :meth:`Secrets.from_env`) are
    masked in everything written.
    """
    from evalkit.run.runfolder import Existing, RunFolder

    run_dir = Path(run_dir)
    target = Path(out) if out is not None else run_dir
    in_place = target.resolve() == run_dir.resolve()
    # In place, the run folder is locked while it is read, scored and rewritten; a scored copy
    # elsewhere replaces whatever run is in its folder (never a folder that is not a run).
    existing = Existing.update if in_place else Existing.overwrite
    with RunFolder(target, secrets=secrets, command=command).claim(existing) as folder:
        return _score_into(folder, run_dir, scenarios, llm, concurrency, command, redact_pii)


def _score_into(
    folder: RunFolder,
    run_dir: Path,
    scenarios: str | Path | None,
    llm: ModelClients | None,
    concurrency: int,
    command: str | None,
    redact_pii: bool,
) -> RunResult:
    from evalkit.reports.outputs import standard_outputs
    from evalkit.run.runfiles import SCENARIOS_FILE, load_run
    from evalkit.run.scoring import score_transcript
    from evalkit.scenarios.fingerprint import suite_hash
    from evalkit.scenarios.loader import load_suite

    run = load_run(run_dir)
    redact_pii = redact_pii or bool(run.manifest.extra.get("redact_pii"))
    if redact_pii and llm is not None:
        llm.withhold_pii()
    scen_paths = _scenario_paths(run_dir, run.manifest.suites, scenarios)
    suite = load_suite(scen_paths)
    by_id: dict[str, Scenario] = {s.id: s for s in suite.scenarios}
    missing = sorted({c.transcript.scenario_id for c in run.conversations} - set(by_id))

    async def score_all() -> list[ConversationResult]:
        gate = asyncio.Semaphore(max(1, concurrency))
        judge_cache: dict[str, Any] = {}  # this scoring's judges, built once

        async def one(old: ConversationResult) -> ConversationResult:
            scenario = by_id.get(old.transcript.scenario_id)
            judges = suite.judges_for(scenario) if scenario is not None else suite.config.judges
            async with gate:
                new = await score_transcript(
                    old.transcript, scenario, suite_judges=judges, llm=llm, run_id=run.manifest.run_id,
                    judge_cache=judge_cache,
                )
            # The recording's own numbers (human rating, source verdict) stay; ours are fresh.
            metrics = {**old.metrics, **new.metrics}
            return new.model_copy(
                update={
                    "metrics": metrics,
                    "title": new.title or old.title,
                    "tags": new.tags or old.tags,
                }
            )

        try:
            return list(await asyncio.gather(*(one(c) for c in run.conversations)))
        finally:
            if llm is not None:
                await llm.aclose()

    results = asyncio.run(score_all())
    target = folder.path
    extra: dict[str, Any] = dict(run.manifest.extra)
    extra.update({"scored": True, "scored_at": now_iso(), "scenarios": [str(p) for p in scen_paths]})
    if redact_pii:
        extra["redact_pii"] = True
    if missing:
        extra["scenarios_missing"] = missing[:50]
    # The verdicts are new: so is the judges' spend (the simulated users' stays as recorded).
    spent = dict(extra.get("llm_usage") or {})  # type: ignore[arg-type]
    spent.pop("judge", None)
    judge_usage = llm.usage().get("judge") if llm is not None else None
    if judge_usage:
        spent["judge"] = judge_usage
    if spent or "llm_usage" in extra:
        extra["llm_usage"] = spent
    manifest = run.manifest.model_copy(
        update={
            "finished_at": now_iso(),
            "status": "complete",
            "command": command or run.manifest.command,
            "models": llm.models() if llm is not None else run.manifest.models,
            "suite_hash": suite_hash(suite.scenarios, [suite.config, *suite.scenario_configs.values()]),
            "gate": suite.config.gate,
            "extra": extra,
        }
    )
    # Judged on the text as it is; written masked (secrets always, PII when asked).
    folder.redact_pii = redact_pii
    results = folder.write_journal(manifest, results)
    own = run_dir / SCENARIOS_FILE
    if target.resolve() != run_dir.resolve() and own.is_file():
        folder.write_file(SCENARIOS_FILE, own.read_bytes())
    scored = RunResult(manifest=manifest, conversations=results)
    report = agreement(scored)
    if report["n_with_source"]:
        folder.write_json(AGREEMENT_FILE, report)
    return folder.finish(scored, standard_outputs())


def _scenario_paths(run_dir: Path, suites: list[str], given: str | Path | None) -> list[Path]:
    """``--scenarios``, else the imported ``scenarios.yaml``, else the suites the run was played from."""
    from evalkit.run.runfiles import SCENARIOS_FILE

    if given is not None:
        return [Path(given)]
    if (run_dir / SCENARIOS_FILE).exists():
        return [run_dir / SCENARIOS_FILE]
    found = [Path(p) for p in suites if Path(p).exists()]
    if suites and len(found) == len(suites):
        return found
    where = f" (the run's suites {', '.join(suites)} are not here)" if suites else ""
    raise ConfigError(
        f"no scenarios to score against: {run_dir / SCENARIOS_FILE} does not exist{where}; "
        "give --scenarios FILE_OR_FOLDER",
        field="--scenarios",
    )


def _kappa(tp: int, fn: int, fp: int, tn: int) -> float | None:
    n = tp + fn + fp + tn
    if n == 0:
        return None
    po = (tp + tn) / n
    pe = ((tp + fn) * (tp + fp) + (fp + tn) * (fn + tn)) / (n * n)
    if math.isclose(pe, 1.0):
        return None  # both raters constant: kappa is undefined
    return (po - pe) / (1 - pe)


def source_pass_hat_k(conversations: list[ConversationResult]) -> dict[int, float]:
    """pass^k computed from the source's own verdicts (τ-bench: from its rewards)."""
    by_task: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for c in conversations:
        v = c.metrics.get("source_verdict")
        if isinstance(v, bool):
            by_task[(c.transcript.variant, c.transcript.scenario_id)].append(v)
    return pass_hat_k(dict(by_task))


def _why(c: ConversationResult, source: bool) -> str:
    det = [v for v in c.verdicts if v.kind == JudgeKind.deterministic and v.skipped is None]
    if source:  # the source passed it, evalkit did not
        if c.transcript.error:
            return f"transcript error: {c.transcript.error}"
        bad = [v for v in det if v.passed is False or v.error]
        return "; ".join(f"{v.spec or v.judge}: {v.error or v.reason}" for v in bad) or "evalkit failed it"
    extra = ", ".join(
        f"{k.removeprefix('source_')}={c.metrics[k]}"
        for k in ("source_r_actions", "source_r_outputs")
        if k in c.metrics
    )
    passed = "; ".join(f"{v.spec or v.judge}: {v.reason}" for v in det)
    note = f" (source sub-scores: {extra})" if extra else ""
    return f"evalkit's checks all passed ({passed}) but the source failed it{note}"


def agreement(run: RunResult) -> dict[str, Any]:
    """Agreement between evalkit's ``passed`` and the source's ``source_verdict``."""
    from evalkit.metrics.stats import wilson_interval

    tp = fn = fp = tn = 0
    not_compared = 0
    disagreements: list[dict[str, Any]] = []
    with_source = [c for c in run.conversations if isinstance(c.metrics.get("source_verdict"), bool)]
    for c in with_source:
        source = bool(c.metrics["source_verdict"])
        ours = c.passed
        if ours is None:
            not_compared += 1
            continue
        if source and ours:
            tp += 1
        elif source and not ours:
            fn += 1
        elif not source and ours:
            fp += 1
        else:
            tn += 1
        if source != ours:
            disagreements.append(
                {
                    "scenario_id": c.transcript.scenario_id,
                    "trial": c.transcript.trial,
                    "variant": c.transcript.variant,
                    "source_verdict": source,
                    "evalkit_passed": ours,
                    "reason": _why(c, source),
                }
            )
    n = tp + fn + fp + tn
    ci = wilson_interval(tp + tn, n)
    # Both sides' pass^k over the same conversations: those with both verdicts.
    compared = [c for c in with_source if c.passed is not None]
    ours_by_task: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for c in compared:
        ours_by_task[(c.transcript.variant, c.transcript.scenario_id)].append(bool(c.passed))
    judged = sum(1 for c in run.conversations if c.passed is not None)
    return {
        "n_with_source": len(with_source),
        "n_compared": n,
        "n_not_compared": not_compared,
        "agreement_rate": (tp + tn) / n if n else None,
        "agreement_ci95": [ci.low, ci.high],
        "cohen_kappa": _kappa(tp, fn, fp, tn),
        "confusion": {
            "source_pass": {"evalkit_pass": tp, "evalkit_fail": fn},
            "source_fail": {"evalkit_pass": fp, "evalkit_fail": tn},
        },
        "pass_hat_k": {
            "source": {str(k): v for k, v in source_pass_hat_k(compared).items()},
            "evalkit": {str(k): v for k, v in pass_hat_k(dict(ours_by_task)).items()},
        },
        # What both pass^k rows count; evalkit's headline pass^k (summary.json) counts
        # every judged conversation (``n_judged``): the same figure when the two are equal.
        "pass_hat_k_basis": {"n_conversations": len(compared), "n_scenarios": len(ours_by_task),
                             "n_judged": judged},
        "disagreements": disagreements,
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_agreement(report: dict[str, Any]) -> str:
    """The agreement report as the text ``evalkit score`` prints."""
    if not report["n_with_source"]:
        return "agreement: no conversation carries a source verdict"
    conf = report["confusion"]
    lo, hi = report["agreement_ci95"]
    kappa = report["cohen_kappa"]
    lines = [
        f"agreement with the source's verdicts: {_pct(report['agreement_rate'])} "
        f"({report['n_compared'] - len(report['disagreements'])}/{report['n_compared']}; 95% CI {_pct(lo)}-{_pct(hi)}; "
        f"Cohen's kappa {'-' if kappa is None else f'{kappa:.2f}'})",
        "",
        "                   evalkit pass  evalkit fail",
        f"  source pass      {conf['source_pass']['evalkit_pass']:>12}  {conf['source_pass']['evalkit_fail']:>12}",
        f"  source fail      {conf['source_fail']['evalkit_pass']:>12}  {conf['source_fail']['evalkit_fail']:>12}",
    ]
    if report["n_not_compared"]:
        lines.append(
            f"  ({plural(report['n_not_compared'], 'conversation')} had no deterministic verdict: not compared)"
        )
    src = report["pass_hat_k"]["source"]
    ours = report["pass_hat_k"]["evalkit"]
    if src:
        ks = sorted(set(src) | set(ours), key=int)
        basis = report["pass_hat_k_basis"]
        n, m = basis["n_conversations"], basis["n_scenarios"]
        what = f"{n} conversation{'s' if n != 1 else ''} ({m} scenario{'s' if m != 1 else ''})"
        lines.append("")
        if n == basis["n_judged"]:
            lines.append(f"pass^k of both, on the same {what}:")
        else:
            lines.append(f"pass^k of both, on the {what} with a source verdict "
                         f"(evalkit's pass^k above counts all {basis['n_judged']} judged):")
        for head, cells in (
            ("pass^k", [f"k={k:<6}" for k in ks]),
            ("source", [f"{src[k]:<8.3f}" if k in src else "-       " for k in ks]),
            ("evalkit", [f"{ours[k]:<8.3f}" if k in ours else "-       " for k in ks]),
        ):
            lines.append(f"{head:<10}{'  '.join(cells)}".rstrip())
    if report["disagreements"]:
        lines.append("")
        lines.append("disagreements:")
        for d in report["disagreements"]:
            src_word = "pass" if d["source_verdict"] else "fail"
            ours_word = "pass" if d["evalkit_passed"] else "fail"
            lines.append(
                f"  {d['scenario_id']} trial {d['trial']}: source {src_word}, evalkit {ours_word}: {d['reason']}"
            )
    return "\n".join(lines)
