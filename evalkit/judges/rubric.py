"""LLM-as-judge with a rubric: criteria (and optional steps) in the scenario file, a score on
a stated scale with a reason, asked for as structured output and validated.

In a scenario file::

    expect:
      - rubric:
          criteria: The agent confirms the new address back to the customer before changing it.
          steps: [Find the address change, Check it was read back first]
          scale: [1, 5]
          threshold: 4
          samples: 3          # ask 3 times; majority/mean with the agreement in details
          levels:             # optional: what each score means (default anchors follow the scale)
            1: The address was changed without reading it back.
            3: Read back, but only after the change.
            5: Read back and confirmed before the change.
          checklist: [Asked which order, Read the new address back]   # optional yes/no items
          models: [gpt-4.1, claude-sonnet-4, llama-3.3-70b]   # optional panel: one vote per model

A malformed answer is re-asked (``retries``), then recorded as a judge failure
(``Verdict.error``), never turned into a score. With no judge model configured the verdict
is ``skipped``. Cost: ``samples`` model calls per conversation (plus one per malformed
answer re-asked).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from evalkit.core.results import JudgeKind, Verdict
from evalkit.judges.base import Judge, JudgeContext
from evalkit.llm.client import ChatResult, LLMClient
from evalkit.llm.errors import ModelCallError
from evalkit.llm.render import TOOL_RESULT_CHARS, render_prompt, render_transcript
from evalkit.scenarios.models import Scenario

__all__ = [
    "RubricJudge",
    "ModelJudge",
    "NO_JUDGE_MODEL",
    "scenario_context",
    "sample_settings",
    "prompt_sha256",
    "reproducibility",
    "self_preference",
]

NO_JUDGE_MODEL = "no judge model configured (set --judge-model or --model, or EVALKIT_JUDGE_MODEL / EVALKIT_MODEL)"
PROMPTS = "evalkit.judges"


def scenario_context(scenario: Scenario | None) -> str:
    """What the judge should know about the scenario: its purpose and the customer's goal."""
    if scenario is None:
        return ""
    lines = [f"Scenario: {scenario.title or scenario.id}."]
    if scenario.description:
        lines.append(scenario.description.strip())
    persona = scenario.user.persona
    if persona is not None:
        lines.append(f"The customer's goal: {persona.goal.description}")
        if persona.goal.accept_handoff:
            lines.append("The customer accepts being handed to a human as an end to the conversation.")
    if scenario.customer:
        who = ", ".join(f"{k}={v}" for k, v in scenario.customer.items())
        lines.append(f"The customer is identified as: {who}.")
    return "\n".join(lines)


def sample_settings(samples: int, temperature: float | None, client: LLMClient) -> list[tuple[float, int | None]]:
    """(temperature, seed) per sample: deterministic for one sample, varied for several (each
    sample is its own request, so each is cached separately)."""
    base_seed = client.settings.seed if client.settings.seed is not None else 0
    if samples == 1:
        return [(0.0 if temperature is None else temperature, client.settings.seed)]
    temp = 0.7 if temperature is None else temperature
    return [(temp, base_seed + i) for i in range(samples)]


class ModelJudge(Judge):
    """Shared arguments and plumbing of the model-based judges (kind ``model``)."""

    kind: ClassVar[JudgeKind] = JudgeKind.model

    samples: int = Field(default=1, ge=1, le=25)
    temperature: float | None = Field(default=None, ge=0, le=2)
    retries: int = Field(default=2, ge=0, le=5)
    # Characters of each tool result the judge sees (null: all of it); a cut one is marked.
    tool_result_chars: int | None = Field(default=TOOL_RESULT_CHARS, ge=100)

    # A panel: the same question to several judge models (on the judge endpoint), then a vote.
    models: list[str] = Field(default_factory=list, max_length=9)

    def _client(self, ctx: JudgeContext) -> LLMClient | None:
        return ctx.llm.judge if ctx.llm is not None else None

    def panel(self, client: LLMClient) -> list[str]:
        """The judge models asked: ``models`` when given, else the judge role's model."""
        return list(dict.fromkeys(self.models)) or [client.model]

    def _failed(self, error: str, **details: Any) -> Verdict:
        return Verdict(judge=self.name, kind=self.kind, reason=f"judge failed: {error}", error=error,
                       details=details)


class RubricJudge(ModelJudge):
    """Scores a conversation against ``criteria`` on ``scale``; passes at ``threshold``
    (default: three quarters up the scale, 4 on 1-5)."""

    name: ClassVar[str] = "rubric"
    primary: ClassVar[str | None] = "criteria"
    template: ClassVar[str] = "rubric.j2"
    criteria_required: ClassVar[bool] = True

    # What the lowest score, the scores in between and the highest score mean, when the
    # scenario gives no ``levels``: the prompt's anchors follow whatever ``scale`` is used.
    anchors: ClassVar[tuple[str, str, str]] = (
        "the criteria are not met at all", "the criteria are partly met", "the criteria are fully met"
    )

    criteria: str = ""
    steps: list[str] = Field(default_factory=list)
    scale: tuple[int, int] = (1, 5)
    threshold: float | None = None
    aggregate: Literal["mean", "median", "majority"] = "mean"
    # A description per score, as Prometheus does ({1: "...", 3: "...", 5: "..."}).
    levels: dict[int, str] | None = None
    # Yes/no items the judge decides one by one before scoring; the answers are in the verdict.
    checklist: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] >= value[1]:
            raise ValueError(f"scale {list(value)} must be [low, high] with low < high")
        return value

    @model_validator(mode="after")
    def _check(self) -> RubricJudge:
        if self.criteria_required and not self.criteria.strip():
            raise ValueError("'criteria' is required: say what a good conversation does")
        if self.threshold is not None and not self.scale[0] <= self.threshold <= self.scale[1]:
            raise ValueError(f"threshold {self.threshold:g} is outside the scale {list(self.scale)}")
        if self.levels is not None:
            lo, hi = self.scale
            outside = sorted(k for k in self.levels if not lo <= k <= hi)
            if outside:
                raise ValueError(f"levels: score(s) {', '.join(map(str, outside))} outside the scale {list(self.scale)}")
            if lo not in self.levels or hi not in self.levels:
                raise ValueError(f"levels: describe at least the lowest ({lo}) and the highest ({hi}) score")
            if any(not str(t).strip() for t in self.levels.values()):
                raise ValueError("levels: every description must say something")
        if any(not item.strip() for item in self.checklist):
            raise ValueError("checklist: every item must say something")
        return self

    def default_levels(self) -> list[tuple[str, str]]:
        """The anchors for this judge's scale when the scenario gives no ``levels``."""
        lo, hi = self.scale
        low, middle, high = self.anchors
        out = [(str(lo), low)]
        if hi - lo == 2:
            out.append((str(lo + 1), middle))
        elif hi - lo > 2:
            out.append((f"{lo + 1} to {hi - 1}", f"in between: {middle}; higher the closer it comes to {hi}"))
        out.append((str(hi), high))
        return out

    def level_texts(self) -> list[tuple[str, str]]:
        """(score, meaning) pairs shown to the judge under "Scale"."""
        if self.levels:
            return [(str(k), v.strip()) for k, v in sorted(self.levels.items())]
        return self.default_levels()

    # -- prompt ------------------------------------------------------------------------------

    def prompt_variables(self, ctx: JudgeContext) -> dict[str, Any]:
        """Template variables; built-in judges add their own."""
        return {
            "context": scenario_context(ctx.scenario),
            "conversation": render_transcript(ctx.transcript, window=ctx.window,
                                              tool_result_chars=self.tool_result_chars),
            "criteria": self.criteria,
            "steps": self.steps,
            "lo": self.scale[0],
            "hi": self.scale[1],
            "levels": self.level_texts(),
            "checklist": self.checklist,
            "window": ctx.window,
        }

    def messages(self, ctx: JudgeContext) -> tuple[list[dict[str, str]], str]:
        """The chat messages for this judge and the prompt version."""
        system = render_prompt(PROMPTS, "system.j2")
        user = render_prompt(PROMPTS, self.template, **self.prompt_variables(ctx))
        msgs = [{"role": "system", "content": system.text}, {"role": "user", "content": user.text}]
        return msgs, user.version

    def answer_model(self) -> type[BaseModel]:
        return _rubric_answer(*self.scale, len(self.checklist))

    @property
    def pass_at(self) -> float:
        if self.threshold is not None:
            return self.threshold
        lo, hi = self.scale
        return lo + 0.75 * (hi - lo)

    def label_for(self, score: float) -> str:
        return f"{score:g}/{self.scale[1]}"

    # -- evaluation --------------------------------------------------------------------------

    async def evaluate(self, ctx: JudgeContext) -> Verdict:
        client = self._client(ctx)
        if client is None:
            return self.skip(NO_JUDGE_MODEL)
        messages, version = self.messages(ctx)
        answer = self.answer_model()
        models = self.panel(client)
        settings = sample_settings(self.samples, self.temperature, client)

        async def one(model: str, temperature: float, seed: int | None) -> tuple[Any, ChatResult] | ModelCallError:
            try:
                return await client.structured(
                    messages, answer, name=f"{self.name}_verdict", retries=self.retries,
                    temperature=temperature, seed=seed, model=model,
                )
            except ModelCallError as exc:
                return exc

        plans = [(m, t, sd) for m in models for t, sd in settings]
        runs = await asyncio.gather(*(one(*plan) for plan in plans))
        ok = [r for r in runs if not isinstance(r, ModelCallError)]
        errors = [r for r in runs if isinstance(r, ModelCallError)]
        details: dict[str, Any] = {
            "prompt_version": version,
            **reproducibility(messages, models, settings),
            **self_preference(ctx, models),
            "scale": list(self.scale),
            "threshold": self.pass_at,
            "samples": self.samples,
            "calls": sum(r[1].attempts for r in ok),
            "cached": all(r[1].cached for r in ok) if ok else False,
            "tokens": sum(r[1].total_tokens for r in ok),
            "cost_usd": _sum_cost([r[1] for r in ok]),
        }
        if not ok:
            return self._failed(errors[0].reason, **details, failed_samples=len(errors))
        if len(models) > 1:
            return self._panel_verdict(models, plans, runs, details)
        scores = [int(r[0].score) for r in ok]
        reasons = [str(r[0].reason) for r in ok]
        score, reason = self._aggregate(scores, reasons)
        passed = score >= self.pass_at
        if self.checklist:
            # Each item by majority over the samples (a tie counts as not met).
            votes = [list(r[0].checklist) for r in ok]
            details["checklist"] = [
                {"item": item, "met": sum(v[i] for v in votes) * 2 > len(votes)}
                for i, item in enumerate(self.checklist)
            ]
        if self.samples > 1:
            details["scores"] = scores
            details["failed_samples"] = len(errors)
            details["agreement"] = round(sum((s >= self.pass_at) == passed for s in scores) / len(scores), 4)
            details["score_agreement"] = round(Counter(scores).most_common(1)[0][1] / len(scores), 4)
            details["stdev"] = round(statistics.pstdev(scores), 4)
            details["aggregate"] = self.aggregate
            if errors:
                details["sample_errors"] = [e.reason for e in errors]
        return Verdict(
            judge=self.name,
            kind=self.kind,
            passed=passed,
            score=score,
            label=self.label_for(score),
            reason=reason,
            details=details,
        )

    def _panel_verdict(self, models: list[str], plans: list[tuple[str, float, int | None]],
                       runs: list[Any], details: dict[str, Any]) -> Verdict:
        """One vote per judge model (its samples aggregated first); passes on a strict majority
        of the models that answered, scores their mean. A model that failed on every sample
        does not vote and is named in the details."""
        votes: dict[str, dict[str, Any]] = {}
        for model in models:
            mine = [r for (m, _, _), r in zip(plans, runs, strict=True) if m == model and not isinstance(r, ModelCallError)]
            if not mine:
                failed = [r for (m, _, _), r in zip(plans, runs, strict=True) if m == model]
                votes[model] = {"error": failed[0].reason if failed else "no answer"}
                continue
            score, reason = self._aggregate([int(r[0].score) for r in mine], [str(r[0].reason) for r in mine])
            votes[model] = {"score": score, "passed": score >= self.pass_at, "reason": reason}
        voted = {m: v for m, v in votes.items() if "score" in v}
        n_pass = sum(v["passed"] for v in voted.values())
        passed = n_pass * 2 > len(voted)  # a tie is not a pass: a panel should not round up
        score = round(statistics.fmean(v["score"] for v in voted.values()), 4)
        # The reason of a model that voted with the majority, closest to the panel's score.
        side = [m for m, v in voted.items() if v["passed"] == passed] or list(voted)
        best = min(side, key=lambda m: (abs(voted[m]["score"] - score), models.index(m)))
        details["panel"] = votes
        details["panel_agreement"] = round(max(n_pass, len(voted) - n_pass) / len(voted), 4)
        return Verdict(judge=self.name, kind=self.kind, passed=passed, score=score, label=self.label_for(score),
                       reason=f"{n_pass} of {len(voted)} judge models passed it; {best}: {voted[best]['reason']}",
                       details=details)

    def _aggregate(self, scores: list[int], reasons: list[str]) -> tuple[float, str]:
        if self.aggregate == "majority":
            counts = Counter(scores)
            top = max(counts.values())
            # Ties go to the lower score: a judge should not round disagreement upwards.
            score: float = min(s for s, c in counts.items() if c == top)
        elif self.aggregate == "median":
            score = float(statistics.median_low(scores))
        else:
            score = round(statistics.fmean(scores), 4)
        # The reason of the sample closest to the aggregate explains it best.
        best = min(range(len(scores)), key=lambda i: (abs(scores[i] - score), i))
        return score, reasons[best]


def prompt_sha256(messages: Sequence[dict[str, Any]]) -> str:
    """A hash of exactly what the judge model was sent (roles and texts), for reproducibility."""
    blob = json.dumps([[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def reproducibility(
    messages: Sequence[dict[str, Any]], models: list[str], settings: list[tuple[float, int | None]]
) -> dict[str, Any]:
    """What a verdict records so that it can be reproduced: the prompt's hash, the model(s), and
    the temperature and seed of each sample."""
    out: dict[str, Any] = {"prompt_sha256": prompt_sha256(messages), "model": models[0]}
    if len(models) > 1:
        out["models"] = models
    temps = sorted({t for t, _ in settings})
    out["temperature"] = temps[0] if len(temps) == 1 else temps
    seeds = [sd for _, sd in settings]
    out["seed"] = seeds[0] if len(seeds) == 1 else seeds
    return out


def self_preference(ctx: JudgeContext, models: list[str]) -> dict[str, Any]:
    """A warning in the verdict when a judge model is also the agent's model: models rate their
    own answers higher (MT-Bench's judging study), so such scores flatter the agent."""
    agent = ctx.llm.agent if ctx.llm is not None else None
    if agent is None or agent.model not in models:
        return {}
    return {"warning": f"self-preference: the judge model '{agent.model}' is also the agent's model; "
                       "use another judge model (or a panel) for scores you can trust"}


@functools.lru_cache(maxsize=64)
def _rubric_answer(lo: int, hi: int, n_checklist: int = 0) -> type[BaseModel]:
    """The answer model for a ``[lo, hi]`` scale (and a checklist of ``n_checklist`` items),
    built once: pydantic builds a validator for every new class, and a new class per call
    would defeat the client's per-model schema cache."""
    fields: dict[str, Any] = {"reason": (str, ...)}
    if n_checklist:
        fields["checklist"] = (list[bool], Field(min_length=n_checklist, max_length=n_checklist))
    fields["score"] = (int, Field(ge=lo, le=hi))
    return create_model(  # type: ignore[call-overload,no-any-return]
        "RubricAnswer", __config__=ConfigDict(extra="forbid"), **fields
    )


def _sum_cost(results: list[ChatResult]) -> float | None:
    costs = [0.0 if r.cached else r.cost_usd for r in results]
    if any(c is None for c in costs):
        return None
    return math.fsum(c for c in costs if c is not None)
