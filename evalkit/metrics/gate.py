"""The CI gate: thresholds on a run's metrics, and regressions against a baseline.

Rules (documented in docs/ci.md):

* ``min METRIC=V`` passes when the metric's point value is >= V; ``max METRIC=V`` when it is
  <= V. A metric that was not measured fails its check ("not measured"), except cost
  metrics of a run with no model cost, which are reported as skipped.
* ``max_drop METRIC=D`` (needs a baseline) compares the candidate with the baseline on the
  scenarios both ran (see :mod:`evalkit.metrics.compare`). The *worsening* is ``base - cand`` for
  higher-is-better metrics and ``cand - base`` for lower-is-better ones. The check fails
  only when the worsening is larger than D **and** the 95% CI of the paired difference
  excludes 0 on the worse side, so a drop that noise alone could explain never fails a
  build.
  A sample too small to show a drop of size D is flagged *underpowered* (see
  :func:`detectable_drop`); the check then passes with that note, or fails with
  ``fail_underpowered``.
* ``no_new_failures`` (needs a baseline) fails when a scenario that passed in the baseline
  (majority of its trials) fails now; each such scenario is listed.

Thresholds come from ``suite.yaml``'s ``gate:`` section (as recorded in the run's manifest
when the run was made, so the gate reads the same thresholds from any folder) and from
flags; a flag overrides the suite's value for the same metric and kind. A gate with no check
at all fails (``checks`` row) unless ``allow_empty``: a gate that cannot find its thresholds
must not pass a broken run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationError

from evalkit.core._plural import plural
from evalkit.core._yaml import YamlSyntaxError, parse_yaml
from evalkit.core.errors import ConfigError
from evalkit.core.results import RunResult
from evalkit.core.strict import StrictModel
from evalkit.metrics.compare import Comparison, MetricDelta, compare_runs, select_variant
from evalkit.metrics.summary import (
    DEFAULT_SLOW_TURN_MS,
    MetricValue,
    cost_note,
    evaluation_spend,
    higher_is_better,
    metric_names,
    summarize_with_ci,
)
from evalkit.metrics.table import conversation_table
from evalkit.scenarios.models import GateConfig, SuiteConfig

__all__ = [
    "GATE_FILE",
    "CheckKind",
    "GateCheck",
    "GateResult",
    "parse_threshold",
    "validate_metric",
    "merge_gate_configs",
    "suite_gate_config",
    "evaluate_gate",
    "detectable_drop",
    "scenarios_needed",
    "render_gate_table",
    "render_gate_markdown",
]

GATE_FILE = "gate.json"

CheckKind = Literal["min", "max", "max_drop", "no_new_failures", "complete", "checks"]
_PASS_HAT = re.compile(r"^pass_hat_([1-9][0-9]*)$")


class GateCheck(StrictModel):
    """One line of the gate table."""

    metric: str
    kind: CheckKind
    threshold: float | None = None
    value: MetricValue | None = None
    # For max_drop: the baseline's value and the difference (cand - base) with its CI.
    baseline: MetricValue | None = None
    delta: float | None = None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    # True pass, False fail, None skipped (cannot be judged; does not fail the gate).
    passed: bool | None
    detail: str = ""
    # max_drop only: why this sample cannot show a drop of the allowed size (None: it can).
    underpowered: str | None = None

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else ("SKIP" if self.passed is None else "FAIL")

    def threshold_text(self) -> str:
        """The rule in words: ``>= 90.0%``, ``drop <= 5.0 pp``, ``no new failures``, ..."""
        return _threshold_text(self)

    def value_text(self) -> str:
        """The measured value with its CI (and the delta vs the baseline for max_drop)."""
        return _value_text(self)


class GateResult(StrictModel):
    """All checks of one gate evaluation (saved as ``gate.json`` in the run folder)."""

    run_id: str
    variant: str
    baseline_run_id: str | None = None
    baseline_variant: str | None = None
    checks: list[GateCheck] = Field(default_factory=list)
    new_failures: list[str] = Field(default_factory=list)
    cost_note: str | None = None
    # The baseline comparison behind max_drop / no_new_failures (not saved in gate.json).
    _comparison: Comparison | None = PrivateAttr(default=None)

    @property
    def comparison(self) -> Comparison | None:
        return self._comparison

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def n_failed(self) -> int:
        return sum(1 for c in self.checks if c.passed is False)

    @property
    def n_underpowered(self) -> int:
        return sum(1 for c in self.checks if c.underpowered)


# --- parsing -------------------------------------------------------------------------------


def validate_metric(name: str, *, kind: str = "min") -> str:
    """The metric name if the gate knows it; otherwise a one-line :class:`ConfigError`."""
    valid = [m for m in metric_names() if not m.startswith("pass_hat_")]
    if name in valid or _PASS_HAT.match(name):
        if kind == "max_drop" and higher_is_better(name) is None:
            raise ConfigError(f"'{name}' has no better or worse direction: it cannot have a max-drop", field=kind)
        return name
    raise ConfigError(f"unknown metric '{name}' (valid: {', '.join(valid)}, pass_hat_<k>)", field=kind)


def parse_threshold(text: str, *, kind: str = "min") -> tuple[str, float]:
    """``METRIC=VALUE`` (VALUE may be ``85%``) -> (metric, value)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise ConfigError(f"expected METRIC=VALUE, got '{text}'", field=f"--{kind.replace('_', '-')}")
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"'{raw}' is not a number", field=f"--{kind.replace('_', '-')} {name}") from None
    if not math.isfinite(value):
        raise ConfigError(f"'{raw}' is not a finite number", field=f"--{kind.replace('_', '-')} {name}")
    return validate_metric(name, kind=kind), value


def merge_gate_configs(base: GateConfig | None, override: GateConfig) -> GateConfig:
    """Suite thresholds updated by flag thresholds (a flag wins for the same metric)."""
    if base is None:
        return override
    return GateConfig(
        min={**base.min, **override.min},
        max={**base.max, **override.max},
        max_drop={**base.max_drop, **override.max_drop},
        no_new_failures=base.no_new_failures or override.no_new_failures,
    )


def suite_gate_config(run: RunResult, suite_path: str | Path | None = None) -> tuple[GateConfig | None, str | None]:
    """The suite's ``gate:`` section for ``run`` (or that of ``suite_path``) and where it came from.

    A run records its suite's thresholds in its manifest when it is made: those are used,
    wherever the gate runs from. For an older run without them, the suite folders the manifest
    lists are looked up (relative paths from the current folder). ``(None, None)`` when there
    are none.
    """
    recorded = run.manifest.gate
    if suite_path is None and recorded is not None:
        return (recorded, "the run's manifest (suite.yaml gate: at run time)") if not recorded.empty else (None, None)
    candidates: list[Path] = []
    if suite_path is not None:
        p = Path(suite_path)
        if not p.exists():
            raise ConfigError("no such suite file or folder", file=str(p), field="--suite")
        candidates.append(p)
    else:
        candidates += [Path(s) for s in run.manifest.suites]
    for p in candidates:
        if p.is_file():
            # A run of a single scenario file has no suite.yaml (and so no gate: section);
            # only --suite may name a settings file directly.
            files = [p] if suite_path is not None or p.name in ("suite.yaml", "suite.yml") else []
        else:
            files = [p / "suite.yaml", p / "suite.yml"]
        for f in files:
            if f.is_file():
                return _read_gate(f), str(f)
    if suite_path is not None:
        raise ConfigError("no suite.yaml in this folder", file=str(suite_path), field="--suite")
    return None, None


def _read_gate(path: Path) -> GateConfig:
    try:
        # The guarded loader scenario files use: safe tags only, no alias bombs, no duplicate keys.
        data = parse_yaml(path.read_text(encoding="utf-8")) or {}
    except YamlSyntaxError as exc:
        raise ConfigError(exc.problem, file=str(path), line=exc.line) from None
    except UnicodeDecodeError:
        raise ConfigError("not valid UTF-8", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("a suite file is a mapping", file=str(path))
    try:
        config = SuiteConfig.model_validate(data).gate
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ConfigError(err["msg"], file=str(path), field=".".join(str(x) for x in err["loc"])) from None
    for name in config.min:
        validate_metric(name, kind="min")
    for name in config.max:
        validate_metric(name, kind="max")
    for name in config.max_drop:
        validate_metric(name, kind="max_drop")
    return config


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class _Ctx:
    values: dict[str, MetricValue]
    cost_note: str | None
    comparison: Comparison | None
    explicit_baseline: bool
    fail_underpowered: bool = False
    checks: list[GateCheck] = field(default_factory=list)


def _value_check(ctx: _Ctx, metric: str, kind: Literal["min", "max"], threshold: float) -> GateCheck:
    mv = ctx.values.get(metric)
    if mv is None or mv.value is None:
        if "_usd" in metric and ctx.cost_note:
            return GateCheck(metric=metric, kind=kind, threshold=threshold, value=mv, passed=None, detail=ctx.cost_note)
        why = "not measured"
        if _PASS_HAT.match(metric):
            why = f"not measured (scenarios have fewer than {metric.rsplit('_', 1)[1]} trials)"
        return GateCheck(metric=metric, kind=kind, threshold=threshold, value=mv, passed=False, detail=why)
    ok = mv.value >= threshold if kind == "min" else mv.value <= threshold
    return GateCheck(
        metric=metric,
        kind=kind,
        threshold=threshold,
        value=mv,
        passed=ok,
        detail="" if ok else f"{'below' if kind == 'min' else 'above'} the threshold",
    )


def _drop_check(ctx: _Ctx, metric: str, max_drop: float) -> GateCheck:
    cmp = ctx.comparison
    if cmp is None:
        return GateCheck(metric=metric, kind="max_drop", threshold=max_drop, passed=None, detail="no baseline given")
    md = cmp.metric(metric)
    if md is None:
        return GateCheck(
            metric=metric,
            kind="max_drop",
            threshold=max_drop,
            value=ctx.values.get(metric),
            passed=False,
            detail="not measured on both sides",
        )
    check = GateCheck(
        metric=metric,
        kind="max_drop",
        threshold=max_drop,
        value=md.cand,
        baseline=md.base,
        delta=md.delta,
        delta_ci_low=md.ci_low,
        delta_ci_high=md.ci_high,
        passed=True,
    )
    if md.delta is None:
        if "_usd" in metric and ctx.cost_note:
            check.passed, check.detail = None, ctx.cost_note
        else:
            check.passed, check.detail = False, "not measured on both sides"
        return check
    hib = bool(md.higher_is_better)
    worsening = -md.delta if hib else md.delta
    ci_worse = (md.ci_high is not None and md.ci_high < 0) if hib else (md.ci_low is not None and md.ci_low > 0)
    if worsening > max_drop and ci_worse:
        check.passed, check.detail = False, "dropped more than allowed and the CI excludes 0"
        return check
    if worsening > max_drop:
        check.detail = "dropped more than allowed, but within noise (CI includes 0)"
    elif worsening > 0:
        check.detail = "within the allowed drop"
    smallest, why = detectable_drop(md, n_scenarios=cmp.n_common_scenarios, confidence=cmp.confidence)
    if smallest is None or smallest > max_drop:
        from evalkit.metrics._numbers import fmt_delta

        allowed = fmt_delta(metric, max_drop).lstrip("+")
        if smallest is None:
            check.underpowered = f"underpowered: {why}, so this test cannot tell a drop from noise; add scenarios"
        else:
            check.underpowered = (
                f"underpowered: the smallest drop this sample can show is about "
                f"{fmt_delta(metric, smallest).lstrip('+')} ({why}), more than the allowed {allowed}; "
                "add scenarios or trials"
            )
        if ctx.fail_underpowered:
            check.passed = False
    return check


def scenarios_needed(n_scenarios: int, confidence: float) -> int:
    """How many of ``n_scenarios`` must get worse before a bootstrap CI over scenarios can
    exclude 0: the smallest ``m`` whose share of resamples missing all of them,
    ``(1 - m/k)^k``, is below ``(1 - confidence) / 2`` (2 of 2, 3 of 5, 4 from 13 on)."""
    tail = (1 - confidence) / 2
    return next(m for m in range(1, n_scenarios + 1) if (1 - m / n_scenarios) ** n_scenarios < tail)


# Power of the conventional "minimum detectable effect": the drop found 4 times in 5.
DETECTION_POWER = 0.8


def detectable_drop(md: MetricDelta, *, n_scenarios: int, confidence: float) -> tuple[float | None, str]:
    """The smallest worsening of ``md``'s metric that the max-drop test on this sample can
    show, and why; ``None`` when it can show none at all.

    Two limits, the larger one wins:

    * the noise: a drop is shown when the paired CI excludes 0, so at ``DETECTION_POWER``
      the drop must exceed ``(z_conf + z_power) * SE``, the SE read off the CI's half-width
      on the better side of the estimate (the textbook minimum detectable effect);
    * the scenarios (pass/fail rates): the CI is a bootstrap over scenarios, and a resample
      that misses every scenario that got worse shows no drop. With ``k`` scenarios, a drop
      confined to ``m`` of them leaves a share ``(1 - m/k)^k`` of such resamples, so the CI
      can exclude 0 only when ``m`` makes that share smaller than ``(1 - conf) / 2``; at best
      each of them lost one conversation, a drop of ``m / n``. This limit holds even when
      the sample shows no spread at all (every conversation passed on both sides).

    One scenario in common gives a CI with no spread at all: no drop can be told from noise.
    """
    if n_scenarios < 2:
        return None, f"{plural(n_scenarios, 'scenario')} in common: a CI over scenarios has no spread"
    from statistics import NormalDist

    smallest, why = 0.0, ""
    if md.delta is not None and md.ci_low is not None and md.ci_high is not None:
        half = md.ci_high - md.delta if md.higher_is_better else md.delta - md.ci_low
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        smallest = max(half, 0.0) * (z + NormalDist().inv_cdf(DETECTION_POWER)) / z
        why = f"{DETECTION_POWER:.0%} power at {confidence:.0%} confidence, from the CI of the difference"
    n = md.cand.n or 0
    if md.test == "mcnemar_exact" and n > 0:
        m = scenarios_needed(n_scenarios, confidence)
        if m / n > smallest:
            smallest = m / n
            why = (
                f"the CI over {plural(n_scenarios, 'scenario')} excludes 0 only when {m} or more of them "
                f"got worse: {m} of {plural(n, 'conversation')}"
            )
    return smallest, why


def evaluate_gate(
    run: RunResult,
    config: GateConfig,
    *,
    variant: str | None = None,
    baseline: RunResult | None = None,
    baseline_variant: str | None = None,
    slow_turn_ms: float = DEFAULT_SLOW_TURN_MS,
    n_resamples: int = 2000,
    seed: int = 0,
    require_baseline: bool = False,
    allow_incomplete: bool = False,
    fail_underpowered: bool = False,
    allow_empty: bool = False,
) -> GateResult:
    """Every check of ``config`` on one variant of ``run`` (against ``baseline`` if given).

    ``baseline`` may be ``run`` itself with another ``baseline_variant`` (A/B in one run).
    With ``require_baseline`` (flags asked for baseline checks), a missing baseline is a
    :class:`ConfigError`; otherwise baseline checks are reported as skipped. A run that did
    not finish (interrupted, or fewer conversations than planned) fails a ``complete``
    check unless ``allow_incomplete``; a ``config`` with no check fails a ``checks`` check
    unless ``allow_empty``. A max-drop check whose sample cannot show a drop of the allowed
    size is marked underpowered; ``fail_underpowered`` makes it fail.
    """
    variant, convs = select_variant(run, variant, role="run")
    table = conversation_table(convs)
    values = summarize_with_ci(table, slow_turn_ms=slow_turn_ms, n_resamples=n_resamples, seed=seed)
    needs_baseline = bool(config.max_drop) or config.no_new_failures
    comparison = None
    if baseline is not None and needs_baseline:
        bvar = baseline_variant
        if bvar is None:
            known = {c.transcript.variant for c in baseline.conversations}
            bvar = variant if variant in known and baseline is not run else None
        comparison = compare_runs(
            baseline,
            run,
            base_variant=bvar,
            cand_variant=variant,
            slow_turn_ms=slow_turn_ms,
            n_resamples=n_resamples,
            seed=seed,
        )
    elif baseline is None and needs_baseline and require_baseline:
        raise ConfigError("--max-drop and --no-new-failures need --baseline RUN (or --baseline-variant)", field="--baseline")
    note = cost_note(table, evaluation_spend(run.manifest))
    ctx = _Ctx(values=values, cost_note=note, comparison=comparison, explicit_baseline=require_baseline,
               fail_underpowered=fail_underpowered)
    checks: list[GateCheck] = []
    m = run.manifest
    planned = m.n_planned
    done = len(run.conversations)
    if m.status != "complete" or (planned is not None and done < planned):
        detail = f"run is {m.status}: {done} of " + (plural(planned, "conversation") if planned is not None else "? conversations")
        checks.append(
            GateCheck(
                metric="run",
                kind="complete",
                value=MetricValue(value=float(done), n=planned or done),
                threshold=float(planned) if planned is not None else None,
                passed=None if allow_incomplete else False,
                detail=detail + ("" if not allow_incomplete else " (allowed)"),
            )
        )
    if config.empty and not allow_empty:
        checks.append(
            GateCheck(
                metric="gate",
                kind="checks",
                passed=False,
                detail="no checks configured (no --min/--max/--max-drop/--no-new-failures flag and no "
                "gate: section recorded with the run); pass --allow-empty to let an empty gate pass",
            )
        )
    for metric, v in config.min.items():
        checks.append(_value_check(ctx, validate_metric(metric, kind="min"), "min", v))
    for metric, v in config.max.items():
        checks.append(_value_check(ctx, validate_metric(metric, kind="max"), "max", v))
    for metric, v in config.max_drop.items():
        checks.append(_drop_check(ctx, validate_metric(metric, kind="max_drop"), v))
    new_failures: list[str] = []
    if config.no_new_failures:
        if comparison is None:
            checks.append(GateCheck(metric="scenarios", kind="no_new_failures", passed=None, detail="no baseline given"))
        else:
            new_failures = [f.scenario_id for f in comparison.regressions]
            shown = ", ".join(new_failures[:10]) + (f" and {len(new_failures) - 10} more" if len(new_failures) > 10 else "")
            checks.append(
                GateCheck(
                    metric="scenarios",
                    kind="no_new_failures",
                    threshold=0,
                    value=MetricValue(value=float(len(new_failures)), n=comparison.n_common_scenarios),
                    passed=not new_failures,
                    detail=f"newly failing: {shown}" if new_failures else "no scenario that passed in the baseline fails",
                )
            )
    result = GateResult(
        run_id=run.manifest.run_id,
        variant=variant,
        baseline_run_id=comparison.base.run_id if comparison else None,
        baseline_variant=comparison.base.variant if comparison else None,
        checks=checks,
        new_failures=new_failures,
        cost_note=ctx.cost_note,
    )
    result._comparison = comparison
    return result


# --- rendering --------------------------------------------------------------------------------


def _threshold_text(c: GateCheck) -> str:
    from evalkit.metrics._numbers import fmt_delta, fmt_value

    if c.kind == "min":
        return f">= {fmt_value(c.metric, c.threshold)}"
    if c.kind == "max":
        return f"<= {fmt_value(c.metric, c.threshold)}"
    if c.kind == "max_drop":
        return f"drop <= {fmt_delta(c.metric, c.threshold).lstrip('+')}"
    if c.kind == "complete":
        return "all planned conversations"
    if c.kind == "checks":
        return "at least one check"
    return "no new failures"


def _value_text(c: GateCheck) -> str:
    from evalkit.metrics._numbers import fmt_delta, fmt_metric

    if c.kind == "no_new_failures":
        return "n/a" if c.value is None or c.value.value is None else f"{c.value.value:.0f} new"
    if c.kind == "complete":
        return "n/a" if c.value is None or c.value.value is None else f"{c.value.value:.0f} done"
    if c.kind == "checks":
        return "none"
    text = fmt_metric(c.metric, c.value)
    if c.kind == "max_drop" and c.delta is not None:
        ci = ""
        if c.delta_ci_low is not None and c.delta_ci_high is not None:
            ci = f" [{fmt_delta(c.metric, c.delta_ci_low)}, {fmt_delta(c.metric, c.delta_ci_high)}]"
        text += f"; Δ {fmt_delta(c.metric, c.delta)}{ci} vs baseline"
    return text


def render_gate_table(result: GateResult) -> str:
    """A plain-text table of every check, then the overall verdict (for the terminal)."""
    rows = [("CHECK", "METRIC", "VALUE [95% CI]", "THRESHOLD", "VERDICT")]
    for c in result.checks:
        rows.append((c.kind, c.metric, _value_text(c), _threshold_text(c), c.verdict + _notes(c, " ({})")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    head = f"evalkit gate: run {result.run_id} variant {result.variant}"
    if result.baseline_run_id:
        head += f" vs baseline {result.baseline_run_id} variant {result.baseline_variant}"
    if not result.checks:
        lines = ["(no checks configured: give --min/--max/--max-drop/--no-new-failures or a suite gate section)"]
    status = "PASSED" if result.passed else f"FAILED ({result.n_failed} of {plural(len(result.checks), 'check')} failed)"
    if result.passed and result.n_underpowered:
        status += (
            f" ({plural(result.n_underpowered, 'check')} underpowered: a drop of the allowed size could "
            "have passed unseen; --fail-underpowered fails on it)"
        )
    return "\n".join([head, *lines, f"gate {status}"]) + "\n"


def _notes(c: GateCheck, wrap: str) -> str:
    """The detail of a check that did not pass (or passed underpowered: what it saw matters
    then), and the underpowered note."""
    notes = [c.detail] if c.detail and (c.passed is not True or c.underpowered) else []
    if c.underpowered:
        notes.append(c.underpowered)
    return wrap.format("; ".join(notes)) if notes else ""


def render_gate_markdown(result: GateResult) -> str:
    """The gate as Markdown (for ``$GITHUB_STEP_SUMMARY`` and PR comments)."""
    from evalkit.metrics._numbers import md_escape

    icon = "✅" if result.passed else "❌"
    status = "passed" if result.passed else f"failed ({result.n_failed} of {plural(len(result.checks), 'check')})"
    lines = [f"### {icon} evalkit gate {status}", ""]
    lines.append(
        f"Run `{result.run_id}`, variant `{result.variant}`"
        + (f", baseline `{result.baseline_run_id}` variant `{result.baseline_variant}`" if result.baseline_run_id else "")
        + "."
    )
    if not result.checks:
        lines += ["", "No checks configured."]
        return "\n".join(lines) + "\n"
    lines += ["", "| Check | Metric | Value [95% CI] | Threshold | Verdict |", "|---|---|---|---|---|"]
    marks = {"PASS": "✅ pass", "FAIL": "❌ fail", "SKIP": "⏭️ skip"}
    for c in result.checks:
        verdict = marks[c.verdict] + md_escape(_notes(c, ": {}"), None)
        lines.append(
            f"| {c.kind} | {c.metric} | {md_escape(_value_text(c), None)} | {md_escape(_threshold_text(c), None)} | {verdict} |"
        )
    return "\n".join(lines) + "\n"
