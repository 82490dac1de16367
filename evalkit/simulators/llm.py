"""An LLM-simulated user: a persona with a goal, played by a model.

It plays the same :class:`~evalkit.scenarios.models.Persona` as the offline
``PersonaUser`` (τ²-bench's structure: traits, a goal, facts revealed only when asked,
facts the user does not know, free-text instructions), so a scenario runs offline or with
an LLM user by a flag: ``--simulator persona|llm``.

Each turn is one structured-output call (``{"message": ..., "end": ...}``), so ending is
typed (``goal_met``, ``transferred``, ``out_of_scope``, ``gave_up``), never a magic string.
Guards against the classic simulator failure of declaring victory early:

- a ``goal_met`` claim is accepted only if every ``goal.done_when`` judge passes on the
  transcript so far (with no ``done_when``, the ``goal_completion`` judge decides, on the judge
  model or else the simulator's); otherwise the model is told only that the goal is not done
  yet (never the judges' reasons, which would let it coach the agent) and asked again, and if
  it insists its message is sent as an ordinary turn (act ``goal_claim_rejected``);
- a ``transferred`` claim is accepted only if the agent really handed off.

``out_of_scope`` (the agent cannot help) counts against the agent; ``missing_info`` (the
scenario did not give the user what the agent needs) is a gap in the test and is left out of
the agent's metrics.

Cost: one model call per user turn (the scripted ``goal.opening``, if any, costs none),
plus one per rejected claim.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from evalkit.core.errors import ConfigError
from evalkit.core.transcript import AgentTurn, Outcome, StopReason, UserTurn
from evalkit.judges.base import Judge, JudgeContext
from evalkit.llm.client import LLMClient
from evalkit.llm.clients import ModelClients
from evalkit.llm.render import render_prompt
from evalkit.scenarios.models import JudgeSpec, Scenario
from evalkit.simulators.base import SimulatorContext, Stop, UserMessage

__all__ = ["LLMUser", "UserAnswer", "NO_SIMULATOR_MODEL"]

NO_SIMULATOR_MODEL = (
    "--simulator llm needs a model: set --simulator-model or --model "
    "(or EVALKIT_SIMULATOR_MODEL / EVALKIT_MODEL)"
)


class UserAnswer(BaseModel):
    """What the simulated user's model answers each turn."""

    model_config = ConfigDict(extra="forbid")

    message: str
    end: Literal["continue", "goal_met", "transferred", "out_of_scope", "missing_info", "gave_up"]


_END = {
    "goal_met": StopReason.goal_met,
    "transferred": StopReason.transferred,
    "out_of_scope": StopReason.out_of_scope,
    "missing_info": StopReason.missing_info,
    "gave_up": StopReason.gave_up,
}


class LLMUser:
    """Plays ``scenario``'s persona with the simulator model (``llm.simulator``).

    Constructed once per conversation as ``LLMUser(scenario, seed=..., llm=...)``; raises
    :class:`ConfigError` when no simulator model is configured (the runner calls the
    constructor before the run starts, so this fails fast).
    """

    max_claim_retries = 1

    def __init__(self, scenario: Scenario, *, seed: int = 0, llm: ModelClients | None = None) -> None:
        persona = scenario.user.persona
        if persona is None:
            raise ConfigError(f"scenario '{scenario.id}' has a script, not a persona", field="simulator")
        client = llm.simulator if llm is not None else None
        if client is None:
            raise ConfigError(NO_SIMULATOR_MODEL, field="--simulator")
        from evalkit.judges.registry import build_judge

        self.scenario = scenario
        self.persona = persona
        self.seed = seed
        self.llm = llm
        self.client: LLMClient = client
        # Built up front: a bad done_when is a scenario error, raised before any turn.
        self.done_when: list[Judge] = [build_judge(spec) for spec in persona.goal.done_when]
        self._checker_llm = llm
        if not self.done_when:
            # No done_when: the goal_completion judge checks the claim, on the judge model if
            # there is one, else on the simulator's model (a separate, judge-prompted call).
            self.done_when = [build_judge(JudgeSpec(name="goal_completion"))]
            if llm is None or llm.judge is None:
                self._checker_llm = ModelClients(judge=client)
        self.goal_checks = 0
        self.rejected_claims = 0
        self.prompt = self._system_prompt(scenario.channel.value if scenario.channel else "web")

    def _system_prompt(self, channel: str) -> Any:
        p, t = self.persona, self.persona.traits
        facts = [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in p.facts.items()]
        return render_prompt(
            "evalkit.simulators",
            "user.j2",
            channel=channel,
            name=p.name,
            tone=t.tone,
            verbosity={"low": "short", "normal": "normal", "high": "long and detailed"}[t.verbosity],
            language=t.language,
            patience=t.patience,
            asks_for_human=t.asks_for_human,
            goal=p.goal.description,
            instructions=p.instructions,
            facts=facts,
            unknown=list(p.unknown),
            accept_handoff=p.goal.accept_handoff,
        )

    @property
    def prompt_version(self) -> str:
        return str(self.prompt.version)

    def _messages(self, ctx: SimulatorContext) -> list[dict[str, str]]:
        # Seen from the simulated user: the agent is the "user" of the chat, the customer
        # (this model) is the "assistant".
        msgs = [{"role": "system", "content": self.prompt.text}]
        for turn in ctx.transcript.turns:
            if isinstance(turn, UserTurn):
                msgs.append({"role": "assistant", "content": json.dumps({"message": turn.content, "end": "continue"})})
            elif isinstance(turn, AgentTurn):
                text = turn.content or ("(the agent did not answer)" if turn.error else "")
                if turn.handoff is not None:
                    text += "\n(The agent has transferred you to a human colleague.)"
                msgs.append({"role": "user", "content": text.strip() or "(no reply)"})
        if len(msgs) == 1:
            msgs.append({"role": "user", "content": "(The support chat is open. Write your first message.)"})
        return msgs

    async def _ask(self, messages: list[dict[str, str]], turn: int) -> UserAnswer:
        temp = self.client.settings.temperature
        answer, _ = await self.client.structured(
            messages,
            UserAnswer,
            name="customer_turn",
            temperature=0.7 if temp is None else temp,
            # The conversation seed makes trials differ (and each cached separately).
            seed=self.seed,
        )
        return answer

    async def _goal_done(self, ctx: SimulatorContext) -> bool:
        """Whether a "goal met" claim holds: every ``done_when`` judge passes, or, for a persona
        with no ``done_when``, the ``goal_completion`` judge (on the judge model, else the
        simulator's own) passes. A claim is never taken on the user model's word alone."""
        from evalkit.judges import run_judges

        jctx = JudgeContext(transcript=ctx.transcript, scenario=self.scenario, llm=self._checker_llm)
        verdicts = await run_judges(self.done_when, jctx)
        self.goal_checks += 1
        return all(v.passed is True for v in verdicts)

    def _handed_off(self, ctx: SimulatorContext) -> bool:
        return ctx.transcript.handoff is not None or ctx.transcript.outcome == Outcome.escalated

    async def next_turn(self, ctx: SimulatorContext) -> UserMessage | Stop:
        """The next customer message, or a typed Stop."""
        opening = self.persona.goal.opening
        if ctx.turn == 1 and opening and not ctx.transcript.user_turns:
            return UserMessage(content=opening, act="opening")
        messages = self._messages(ctx)
        answer = await self._ask(messages, ctx.turn)
        rejected = 0
        for attempt in range(self.max_claim_retries + 1):
            if answer.end == "continue":
                # A turn that followed a rejected claim is marked, so reports can count them.
                return UserMessage(content=answer.message, act="goal_claim_rejected" if rejected else "llm")
            if answer.end == "goal_met":
                done = await self._goal_done(ctx)
                if done:
                    return Stop(reason=StopReason.goal_met, detail=answer.message)
                # Only "not done yet": the judges' reasons name the expected tool calls and
                # arguments, and a user who knows them coaches the agent (the test then
                # measures the user, not the agent).
                feedback = (
                    "(Note for the customer: what you wanted has NOT actually been done yet. Do not end "
                    "the conversation; reply to the agent and make sure it really completes your request.)"
                )
            elif answer.end == "transferred":
                if self._handed_off(ctx):
                    return Stop(reason=StopReason.transferred, detail=answer.message)
                feedback = "(Note for the customer: you have NOT been transferred to a human. Continue the conversation.)"
            else:
                return Stop(reason=_END[answer.end], detail=answer.message)
            self.rejected_claims += 1
            rejected += 1
            if attempt < self.max_claim_retries:
                answer = await self._ask([*messages, {"role": "user", "content": feedback}], ctx.turn)
        # The model insists on a claim the transcript does not support: keep talking anyway.
        text = answer.message.strip() or "Has that actually been done? Please confirm once it is completed."
        return UserMessage(content=text, act="goal_claim_rejected")
