"""``ScriptedUser``: replays a scenario's script, one step per turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalkit.core.errors import ScenarioError
from evalkit.core.transcript import StopReason
from evalkit.scenarios.models import Scenario, ScriptStep
from evalkit.simulators.base import SimulatorContext, Stop, UserMessage

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = ["ScriptedUser"]


@dataclass
class ScriptedUser:
    """Says each ``script`` step in order; after the agent's reply to the last step it stops
    with ``script_done`` (or with ``max_turns`` if the limit comes first).

    The step's expectations are not checked here: the runner checks them on the agent's
    reply, with the judge window set to that exchange.
    """

    scenario: Scenario
    seed: int = 0
    llm: ModelClients | None = None

    def __post_init__(self) -> None:
        if self.scenario.user.script is None:
            raise ScenarioError(
                f"scenario '{self.scenario.id}' has no script; use the persona simulator",
                file=self.scenario._file,
                line=self.scenario._line,
                field="user.script",
            )

    @property
    def steps(self) -> list[ScriptStep]:
        return list(self.scenario.user.script or [])

    def next_turn(self, ctx: SimulatorContext) -> UserMessage | Stop:
        # Count the user turns actually recorded rather than trusting a counter, so a
        # resumed or replayed transcript continues at the right step.
        done = len(ctx.transcript.user_turns)
        steps = self.steps
        if done >= len(steps):
            return Stop(reason=StopReason.script_done, detail=f"all {len(steps)} script steps sent")
        if done >= ctx.max_turns:
            return Stop(reason=StopReason.max_turns, detail=f"stopped at max_turns={ctx.max_turns}")
        return UserMessage(content=steps[done].say, act=f"script:{done + 1}")
