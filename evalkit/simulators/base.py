"""The user side of a conversation: ``next_turn(ctx) -> UserMessage | Stop``."""

from __future__ import annotations

import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from evalkit.core.transcript import AgentTurn, StopReason, Transcript
from evalkit.scenarios.models import Scenario

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = ["SimulatorContext", "UserMessage", "Stop", "Simulator"]


class UserMessage(BaseModel):
    """The next thing the simulated user says."""

    model_config = ConfigDict(extra="forbid")

    content: str
    # What the user meant to do, for the transcript (e.g. "give_fact:order_id").
    act: str | None = None


class Stop(BaseModel):
    """The user ends the conversation, for a typed reason."""

    model_config = ConfigDict(extra="forbid")

    reason: StopReason
    detail: str = ""


@dataclass
class SimulatorContext:
    """Everything a simulator gets to choose the next user turn."""

    scenario: Scenario
    transcript: Transcript  # the conversation so far (partial)
    turn: int  # 1-based number of the user turn about to be produced
    rng: random.Random
    max_turns: int
    llm: ModelClients | None = None  # model clients (``llm.simulator`` for LLM-driven users)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def last_reply(self) -> AgentTurn | None:
        agent = self.transcript.agent_turns
        return agent[-1] if agent else None


@runtime_checkable
class Simulator(Protocol):
    """A simulated user for one conversation (sync or async ``next_turn``)."""

    def next_turn(self, ctx: SimulatorContext) -> UserMessage | Stop | Awaitable[UserMessage | Stop]: ...
