"""Pairwise comparison of two transcripts, run in both orders to cancel position bias.

:func:`compare_pairwise` asks the judge model "which conversation is better?" twice, once
with A shown first and once with B first. A wins only if it wins in both orders (likewise
B); a split decision is a tie flagged ``consistent=False`` (position bias). Cost: 2 model
calls per pair per sample.

:class:`PairwiseJudge` uses it from a scenario file, against a baseline run::

    expect:
      - pairwise: {baseline: runs/main, criteria: Resolves the issue with less customer effort}

It passes when this conversation is at least as good as the baseline's conversation of the
same scenario and trial (score 1 = better, 0.5 = tie, 0 = worse).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from evalkit.core.results import ConversationResult, Verdict
from evalkit.core.transcript import Transcript
from evalkit.judges.base import JudgeContext
from evalkit.judges.rubric import NO_JUDGE_MODEL, PROMPTS, ModelJudge, sample_settings, scenario_context
from evalkit.llm.client import LLMClient
from evalkit.llm.errors import ModelCallError
from evalkit.llm.render import render_prompt, render_transcript
from evalkit.scenarios.models import Scenario

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = ["PairwiseResult", "PairwiseJudge", "compare_pairwise", "DEFAULT_PAIRWISE_CRITERIA"]

DEFAULT_PAIRWISE_CRITERIA = (
    "Which agent better resolved the customer's request: correct actions confirmed by tool results, "
    "accurate information, policy followed, less effort for the customer, appropriate tone."
)


class _PairAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str
    winner: Literal["first", "second", "tie"]


@dataclass
class PairwiseResult:
    """The outcome of comparing A with B: ``winner`` is ``a``, ``b`` or ``tie``."""

    winner: Literal["a", "b", "tie"] | None
    consistent: bool = True
    # One vote per order and sample, already mapped to a/b/tie.
    votes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    prompt_version: str = ""
    calls: int = 0
    error: str | None = None

    @property
    def score(self) -> float | None:
        """1 when A wins, 0.5 for a tie, 0 when B wins."""
        return None if self.winner is None else {"a": 1.0, "tie": 0.5, "b": 0.0}[self.winner]


async def compare_pairwise(
    a: Transcript,
    b: Transcript,
    *,
    llm: ModelClients | None,
    criteria: str = DEFAULT_PAIRWISE_CRITERIA,
    scenario: Scenario | None = None,
    samples: int = 1,
    temperature: float | None = None,
    retries: int = 2,
) -> PairwiseResult:
    """Compare transcripts ``a`` and ``b`` in both orders (see the module docstring).

    ``llm.judge`` asks the questions.
    Model failures come back as ``PairwiseResult(winner=None, error=...)``.
    """
    client = llm.judge if llm is not None else None
    if client is None:
        return PairwiseResult(winner=None, error=NO_JUDGE_MODEL)
    ta, tb = render_transcript(a), render_transcript(b)
    context = scenario_context(scenario)
    system = render_prompt(PROMPTS, "system.j2").text
    orders = [("a", ta, "b", tb), ("b", tb, "a", ta)]
    plans = [(o, t, s) for o in orders for t, s in sample_settings(samples, temperature, client)]

    async def ask(order: tuple[str, str, str, str], temp: float, seed: int | None) -> tuple[str, str, str, int]:
        first_name, first, second_name, second = order
        prompt = render_prompt(PROMPTS, "pairwise.j2", context=context, criteria=criteria, first=first, second=second)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt.text}]
        answer, result = await _structured(client, messages, retries, temp, seed)
        vote = {"first": first_name, "second": second_name, "tie": "tie"}[answer.winner]
        return vote, answer.reason, prompt.version, result

    try:
        outcomes = await asyncio.gather(*(ask(o, t, s) for o, t, s in plans))
    except ModelCallError as exc:
        return PairwiseResult(winner=None, error=exc.reason)
    votes = [o[0] for o in outcomes]
    half = len(votes) // 2
    by_order = [_majority(votes[:half]), _majority(votes[half:])]
    consistent = by_order[0] == by_order[1]
    return PairwiseResult(
        winner=by_order[0] if consistent else "tie",  # type: ignore[arg-type]
        consistent=consistent,
        votes=votes,
        reasons=[o[1] for o in outcomes],
        prompt_version=outcomes[0][2],
        calls=sum(o[3] for o in outcomes),
    )


async def _structured(
    client: LLMClient, messages: list[dict[str, str]], retries: int, temperature: float, seed: int | None
) -> tuple[_PairAnswer, int]:
    answer, result = await client.structured(
        messages, _PairAnswer, name="pairwise_verdict", retries=retries, temperature=temperature, seed=seed
    )
    return answer, result.attempts


def _majority(votes: list[str]) -> str:
    counts = {v: votes.count(v) for v in ("a", "b", "tie")}
    top = max(counts.values())
    winners = [v for v, c in counts.items() if c == top]
    return winners[0] if len(winners) == 1 else "tie"


def _read_baseline(path: str) -> dict[tuple[str, int], Transcript]:
    p = Path(path)
    journal = p / "conversations.jsonl" if p.is_dir() else p
    out: dict[tuple[str, int], Transcript] = {}
    with journal.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                conv = ConversationResult.model_validate_json(line)
                out.setdefault((conv.transcript.scenario_id, conv.transcript.trial), conv.transcript)
    return out


class PairwiseJudge(ModelJudge):
    """Is this conversation at least as good as the baseline run's conversation of the same
    scenario and trial? ``baseline`` is a run folder or a ``conversations.jsonl``."""

    name: ClassVar[str] = "pairwise"
    primary: ClassVar[str | None] = "baseline"

    baseline: str
    criteria: str = DEFAULT_PAIRWISE_CRITERIA
    require: Literal["better", "not_worse"] = Field(default="not_worse")
    # The baseline's transcripts, read on first use by this judge (a run builds its judges once,
    # so once per run; the next run reads the file again, as it is then).
    _transcripts: dict[tuple[str, int], Transcript] | None = PrivateAttr(default=None)

    def _baseline(self) -> dict[tuple[str, int], Transcript]:
        if self._transcripts is None:
            self._transcripts = _read_baseline(self.baseline)
        return self._transcripts

    async def evaluate(self, ctx: JudgeContext) -> Verdict:
        client = self._client(ctx)
        if client is None:
            return self.skip(NO_JUDGE_MODEL)
        try:
            base = self._baseline()
        except (OSError, ValueError) as exc:
            return self._failed(f"cannot read baseline '{self.baseline}': {exc}")
        t = ctx.transcript
        other = base.get((t.scenario_id, t.trial)) or base.get((t.scenario_id, 0))
        if other is None:
            return self.skip(f"baseline '{self.baseline}' has no conversation for scenario '{t.scenario_id}'")
        r = await compare_pairwise(t, other, llm=ctx.llm, criteria=self.criteria, scenario=ctx.scenario,
                                   samples=self.samples, temperature=self.temperature, retries=self.retries)
        details: dict[str, Any] = {"votes": r.votes, "consistent": r.consistent, "prompt_version": r.prompt_version,
                                   "model": client.model, "calls": r.calls, "baseline": self.baseline}
        if r.error is not None or r.winner is None:
            return self._failed(r.error or "no decision", **details)
        passed = r.winner == "a" if self.require == "better" else r.winner != "b"
        word = {"a": "better than", "b": "worse than", "tie": "as good as"}[r.winner]
        bias = "" if r.consistent else " (the two orders disagreed: position bias, counted as a tie)"
        return self.verdict(passed, f"{word} the baseline{bias}: {r.reasons[0]}", score=r.score,
                            label={"a": "better", "b": "worse", "tie": "tie"}[r.winner], **details)
