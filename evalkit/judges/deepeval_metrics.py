"""deepeval's conversational metrics as evalkit judges, with evalkit's client as the model.

In a scenario file::

    expect:
      - deepeval: {metric: knowledge_retention, threshold: 0.5}
      - deepeval: {metric: role_adherence, chatbot_role: "a polite support agent for Acme"}
      - deepeval:
          metric: conversational_g_eval
          criteria: The agent never asks twice for information the customer already gave.

Metrics: ``conversational_g_eval``, ``role_adherence``, ``knowledge_retention``,
``conversation_completeness``, ``turn_relevancy``. The transcript becomes a deepeval
``ConversationalTestCase`` (:func:`to_test_case`: turns with their tool calls, the
scenario, the expected outcome, the chatbot role) and the metric is measured with an
:class:`~evalkit.llm.LLMClient` wrapped as deepeval's ``DeepEvalBaseLLM``, so its calls
share evalkit's cache, rate limits, retries and cost accounting. The judge model is the
``judge`` role; without one the verdict is ``skipped``.

deepeval is imported only when such a judge runs, after setting
``DEEPEVAL_TELEMETRY_OPT_OUT=YES``, ``DEEPEVAL_DISABLE_DOTENV=1`` (no ``.env`` loading)
and ``DEEPEVAL_DISABLE_LEGACY_KEYFILE=1``; its pytest plugin is never loaded by evalkit.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from evalkit.core.results import JudgeKind, Verdict
from evalkit.core.transcript import AgentTurn, Outcome, Transcript, UserTurn
from evalkit.judges._deepeval_env import import_deepeval
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.rubric import NO_JUDGE_MODEL, self_preference
from evalkit.llm.client import ChatResult, LLMClient
from evalkit.llm.errors import ModelCallError
from evalkit.scenarios.models import Scenario

__all__ = ["DEEPEVAL_METRICS", "DEEPEVAL_MISSING", "DeepEvalJudge", "deepeval_installed", "import_deepeval", "evalkit_model", "to_test_case"]

DEEPEVAL_METRICS = (
    "conversational_g_eval",
    "role_adherence",
    "knowledge_retention",
    "conversation_completeness",
    "turn_relevancy",
)

DEEPEVAL_MISSING = "deepeval not installed (pip install 'evalkit-support[deepeval]')"

DEFAULT_CHATBOT_ROLE = "a helpful, policy-abiding customer-support agent"

def deepeval_installed() -> bool:
    """Whether deepeval imports (it is the optional extra ``evalkit-support[deepeval]``)."""
    try:
        import_deepeval()
    except ModuleNotFoundError as exc:
        if exc.name == "deepeval":
            return False
        raise
    return True


def evalkit_model(client: LLMClient) -> Any:
    """A ``DeepEvalBaseLLM`` that answers through ``client`` (cache, limits, retries, costs).

    The instance records every :class:`ChatResult` in ``.results`` so a verdict can report
    the calls, tokens and cost of its own metric.
    """
    from evalkit.judges._deepeval_model import EvalkitDeepEvalModel  # imports deepeval

    return EvalkitDeepEvalModel(client)


def _expected_outcome(scenario: Scenario | None) -> str | None:
    if scenario is None:
        return None
    persona = scenario.user.persona
    if persona is not None:
        return f"The customer's goal is achieved: {persona.goal.description}"
    for spec in scenario.expect:
        if spec.name == "outcome":
            value = spec.args.get("expected", spec.args.get("value"))
            return f"The conversation ends {value}" if value else None
    return None


def to_test_case(
    transcript: Transcript,
    scenario: Scenario | None = None,
    *,
    chatbot_role: str | None = None,
    expected_outcome: str | None = None,
) -> Any:
    """The transcript as a deepeval ``ConversationalTestCase``.

    User turns become ``user`` turns; agent turns become ``assistant`` turns carrying their
    tool calls (``tools_called``: name, arguments, output); a failed agent turn is kept as
    an explicit ``<no reply: ...>`` so metrics see the gap.
    """
    import_deepeval()
    from deepeval.test_case import ConversationalTestCase, ToolCall, Turn

    turns: list[Any] = []
    for t in transcript.turns:
        if isinstance(t, UserTurn):
            turns.append(Turn(role="user", content=t.content or "(empty message)"))
        elif isinstance(t, AgentTurn):
            content = t.content or (f"<no reply: {t.error}>" if t.error else "")
            if t.handoff is not None:
                content = (content + " [handed the conversation to a human]").strip()
            tools = [
                ToolCall(name=c.name, input_parameters=dict(c.arguments),
                         output=c.result if c.error is None else {"error": c.error})
                for c in t.tool_calls
            ]
            turns.append(Turn(role="assistant", content=content or "(no text reply)", tools_called=tools or None))
    if not turns:
        turns.append(Turn(role="user", content="(empty conversation)"))
    description = None
    if scenario is not None:
        description = scenario.description or scenario.title or None
        persona = scenario.user.persona
        if persona is not None and not description:
            description = persona.goal.description
    user_description = None
    if scenario is not None and scenario.user.persona is not None:
        p = scenario.user.persona
        user_description = f"{p.name or 'A customer'}, {p.traits.tone}" + (f". {p.instructions}" if p.instructions else "")
    return ConversationalTestCase(
        turns=turns,
        scenario=description or f"Customer-support conversation {transcript.scenario_id}",
        expected_outcome=expected_outcome or _expected_outcome(scenario)
        or ("The customer's request is resolved" if transcript.outcome == Outcome.resolved else None),
        chatbot_role=chatbot_role or DEFAULT_CHATBOT_ROLE,
        user_description=user_description,
        name=f"{transcript.scenario_id}#{transcript.trial}",
    )


def _metric(judge: DeepEvalJudge, model: Any) -> Any:
    import_deepeval()
    import deepeval.metrics as m

    common: dict[str, Any] = {"threshold": judge.threshold, "model": model, "async_mode": True}
    if judge.metric == "conversational_g_eval":
        from deepeval.test_case import MultiTurnParams as P

        params = [P.ROLE, P.CONTENT, P.TOOLS_CALLED, P.SCENARIO, P.EXPECTED_OUTCOME]
        return m.ConversationalGEval(
            evaluation_params=params,
            name=judge.title or "evalkit criteria",
            criteria=judge.criteria,
            evaluation_steps=judge.evaluation_steps or None,
            **common,
        )
    cls = {
        "role_adherence": m.RoleAdherenceMetric,
        "knowledge_retention": m.KnowledgeRetentionMetric,
        "conversation_completeness": m.ConversationCompletenessMetric,
        "turn_relevancy": m.TurnRelevancyMetric,
    }[judge.metric]
    if judge.window_size is not None and judge.metric in ("conversation_completeness", "turn_relevancy"):
        common["window_size"] = judge.window_size
    return cls(**common)


class DeepEvalJudge(Judge):
    """Runs one deepeval conversational metric; its score (0-1) and reason become the verdict."""

    name: ClassVar[str] = "deepeval"
    primary: ClassVar[str | None] = "metric"
    kind: ClassVar[JudgeKind] = JudgeKind.model

    metric: Literal[
        "conversational_g_eval", "role_adherence", "knowledge_retention", "conversation_completeness", "turn_relevancy"
    ]
    threshold: float = Field(default=0.5, ge=0, le=1)
    criteria: str | None = None
    evaluation_steps: list[str] = Field(default_factory=list)
    chatbot_role: str | None = None
    expected_outcome: str | None = None
    window_size: int | None = Field(default=None, ge=1)
    title: str | None = None  # the G-Eval metric name shown by deepeval

    @model_validator(mode="after")
    def _criteria(self) -> DeepEvalJudge:
        if self.metric == "conversational_g_eval" and not (self.criteria or self.evaluation_steps):
            raise ValueError("conversational_g_eval needs 'criteria' or 'evaluation_steps'")
        return self

    async def evaluate(self, ctx: JudgeContext) -> Verdict:
        judge_name = f"deepeval_{self.metric}"
        if not deepeval_installed():
            return Verdict.skip(judge_name, DEEPEVAL_MISSING)
        client = ctx.llm.judge if ctx.llm is not None else None
        if client is None:
            return Verdict.skip(judge_name, NO_JUDGE_MODEL)
        model = evalkit_model(client)
        details: dict[str, Any] = {
            "metric": self.metric, "threshold": self.threshold, "model": client.model,
            "temperature": 0.0, "seed": client.settings.seed, "deepeval_version": _deepeval_version(),
            **self_preference(ctx, [client.model]),
        }
        try:
            case = to_test_case(ctx.transcript, ctx.scenario, chatbot_role=self.chatbot_role,
                                expected_outcome=self.expected_outcome)
            metric = _metric(self, model)
            await metric.a_measure(case, _show_indicator=False)
        except ModelCallError as exc:
            return self._failure(judge_name, exc.reason, model, details)
        except Exception as exc:  # deepeval's own failures (bad JSON it could not parse, ...): data
            return self._failure(judge_name, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                                 model, details)
        score = float(metric.score) if metric.score is not None else None
        if score is None or math.isnan(score):
            return self._failure(judge_name, "deepeval returned no score", model, details)
        passed = bool(metric.success) if metric.success is not None else score >= self.threshold
        return Verdict(judge=judge_name, kind=self.kind, passed=passed, score=round(score, 6),
                       label=self.metric, reason=str(metric.reason or ""), details={**details, **_usage(model)})

    def _failure(self, judge_name: str, why: str, model: Any, details: dict[str, Any]) -> Verdict:
        return Verdict(judge=judge_name, kind=self.kind, reason=f"judge failed: {why}", error=why,
                       details={**details, **_usage(model)})


def _deepeval_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepeval")
    except PackageNotFoundError:
        return None


def _usage(model: Any) -> dict[str, Any]:
    results: list[ChatResult] = getattr(model, "results", [])
    costs = [0.0 if r.cached else r.cost_usd for r in results]
    prompts = sorted(getattr(model, "prompts", []))  # sorted: deepeval may send them concurrently
    return {
        "prompt_sha256": hashlib.sha256("".join(prompts).encode()).hexdigest() if prompts else None,
        "calls": len(results),
        "cached": bool(results) and all(r.cached for r in results),
        "tokens": sum(r.total_tokens for r in results),
        "cost_usd": None if any(c is None for c in costs) else math.fsum(c for c in costs if c is not None),
    }
