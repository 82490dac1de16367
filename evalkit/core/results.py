"""Verdicts and results: what the judges concluded and what a run wrote."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path

from pydantic import Field, JsonValue

from evalkit.core.strict import StrictModel
from evalkit.core.transcript import SCHEMA_VERSION, Transcript

__all__ = [
    "GateConfig",
    "JudgeKind",
    "Verdict",
    "ConversationResult",
    "RunManifest",
    "RunResult",
    "Renderer",
    "common_failure",
]


class JudgeKind(StrEnum):
    """What kind of evidence a verdict is.

    Only ``deterministic`` verdicts decide a conversation's ``passed`` (task completion);
    model and proxy verdicts are reported beside them.
    """

    deterministic = "deterministic"
    model = "model"
    proxy = "proxy"


class Verdict(StrictModel):
    """One judge's conclusion on one conversation.

    ``skipped`` says honestly that the judge could not run (and why); a skipped verdict
    has ``passed`` and ``score`` both ``None``.
    """

    judge: str
    passed: bool | None = None
    score: float | None = None
    label: str | None = None
    reason: str = ""
    skipped: str | None = None
    kind: JudgeKind = JudgeKind.deterministic
    # The exchange (1-based user-turn number) the verdict points at, when it has one.
    turn: int | None = None
    # The judge's spec as written in the scenario, for display ("tool_called(check_order_status)").
    spec: str | None = None
    # A judge that crashed or whose model misbehaved: recorded, counted, never a score.
    error: str | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)

    @classmethod
    def skip(cls, judge: str, why: str, *, kind: JudgeKind = JudgeKind.model) -> Verdict:
        return cls(judge=judge, skipped=why, reason=f"skipped: {why}", kind=kind)


class ConversationResult(StrictModel):
    """A transcript with its verdicts and per-conversation metrics (one journal line)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str = ""
    # The suite it was played from (set by the run folder): a resume refuses foreign lines.
    suite_hash: str | None = None
    title: str = ""
    tags: list[str] = Field(default_factory=list)
    transcript: Transcript
    verdicts: list[Verdict] = Field(default_factory=list)
    # Flat per-conversation numbers: csat_proxy, human_csat, source_verdict, ...
    metrics: dict[str, float | bool | str | None] = Field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity of a conversation inside a run: (variant, scenario id, trial)."""
        t = self.transcript
        return (t.variant, t.scenario_id, t.trial)

    @property
    def passed(self) -> bool | None:
        """All deterministic verdicts passed; ``None`` when none ran."""
        ran = [
            v.passed
            for v in self.verdicts
            if v.kind == JudgeKind.deterministic and v.skipped is None and v.passed is not None
        ]
        errored = any(v.kind == JudgeKind.deterministic and v.error for v in self.verdicts)
        if self.transcript.error is not None:
            return False
        if not ran:
            return False if errored else None
        return all(ran) and not errored

    @property
    def failed_verdicts(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.passed is False or v.error]


# A run records its suite's thresholds in the manifest, so the gate never depends on
# where it is run from; the scenario format (suite.yaml ``gate:``) uses the same model.
class GateConfig(StrictModel):
    """CI gate thresholds (also settable by flags on ``evalkit gate``)."""

    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)
    max_drop: dict[str, float] = Field(default_factory=dict)
    no_new_failures: bool = False

    @property
    def empty(self) -> bool:
        """No check at all."""
        return not (self.min or self.max or self.max_drop or self.no_new_failures)


class RunManifest(StrictModel):
    """How a run was made: enough to reproduce it and to label its report."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    evalkit_version: str
    git_sha: str | None = None
    command: str | None = None
    suites: list[str] = Field(default_factory=list)
    # A hash of the scenarios and settings played; every journal line carries the same.
    suite_hash: str | None = None
    # The suite's gate thresholds at run time (None: not recorded, e.g. an older run).
    gate: GateConfig | None = None
    agent: str | None = None
    # variant name -> agent spec; a single-agent run has {"default": spec}.
    variants: dict[str, str] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    simulator: str = "auto"
    seed: int = 0
    trials: int = 1
    concurrency: int = 1
    tags: list[str] = Field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    status: str = "running"  # running | complete | interrupted
    n_planned: int | None = None
    cache: dict[str, int] = Field(default_factory=dict)
    python: str | None = None
    platform: str | None = None
    extra: dict[str, JsonValue] = Field(default_factory=dict)


class RunResult(StrictModel):
    """A whole run: the manifest and every finished conversation."""

    manifest: RunManifest
    conversations: list[ConversationResult] = Field(default_factory=list)


def common_failure(conversations: Iterable[ConversationResult]) -> str | None:
    """The error every one of two or more conversations failed with before the agent
    answered once (it could not start, or raised, timed out or answered junk on the first
    message), or ``None``.

    Then nothing about the agent was measured: a configuration problem (e.g. "creating the
    agent failed: engine 'llm' needs a model", or an agent whose own API key is missing),
    not a result. An agent that answers and fails later is a result, however often.
    """
    convs = list(conversations)
    errors = {
        c.transcript.error if not any(a.error is None for a in c.transcript.agent_turns) else None
        for c in convs
    }
    if len(convs) < 2 or len(errors) != 1:
        return None
    return errors.pop()


# Writes one output file (report.html, junit.xml, ...) of a run into a folder; returns its path
# (RunFolder.finish calls the ones it is handed, so the run never imports a renderer).
Renderer = Callable[[RunResult, Path], Path]
