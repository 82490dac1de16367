"""The transcript: what happened in one conversation, as data on disk."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, JsonValue

from evalkit.core.strict import StrictModel

__all__ = [
    "SCHEMA_VERSION",
    "Outcome",
    "StopReason",
    "TurnError",
    "ToolCall",
    "Usage",
    "Handoff",
    "UserTurn",
    "AgentTurn",
    "ToolTurn",
    "Turn",
    "Transcript",
]

SCHEMA_VERSION = 1


class Outcome(StrEnum):
    """How a conversation ended, from the customer's point of view."""

    resolved = "resolved"
    escalated = "escalated"
    abandoned = "abandoned"
    max_turns = "max_turns"
    error = "error"


class StopReason(StrEnum):
    """Why the conversation loop stopped (reported, never a magic string)."""

    goal_met = "goal_met"
    gave_up = "gave_up"
    transferred = "transferred"
    script_done = "script_done"
    max_turns = "max_turns"
    out_of_scope = "out_of_scope"  # the agent cannot help with this: counts against the agent
    # The scenario lacks information the user needs to go on (τ-bench's out-of-scope): a gap in
    # the test, not the agent's fault, so it is left out of the agent's metrics.
    missing_info = "missing_info"
    agent_error = "agent_error"
    timeout = "timeout"
    agent_ended = "agent_ended"
    recorded = "recorded"  # imported from a recording; the loop never ran
    simulator_error = "simulator_error"  # the simulated user (e.g. its model) failed
    # The caller stopped the conversation before it ended (a load test's deadline or request
    # cap, a run's Ctrl-C); such conversations are never journaled.
    interrupted = "interrupted"


class TurnError(StrEnum):
    """Why an agent turn failed (``AgentTurn.error_kind``); ``AgentTurn.error`` says it in words."""

    timeout = "timeout"  # no reply within the turn timeout
    cancelled = "cancelled"  # cut short by the conversation timeout or a stop of the run
    raised = "raised"  # the agent's code raised
    junk = "junk"  # the agent answered something that is not a reply
    too_large = "too_large"  # the reply was larger than max_reply_bytes


class ToolCall(StrictModel):
    """One tool call the agent made, with its arguments and what it returned."""

    name: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    result: JsonValue | None = None
    error: str | None = None
    id: str | None = None


class Usage(StrictModel):
    """Model tokens (and their cost, when priced) spent producing one reply."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Handoff(StrictModel):
    """The agent handed the conversation to a human."""

    ticket_id: str | None = None
    reason: str | None = None


class UserTurn(StrictModel):
    role: Literal["user"] = "user"
    content: str
    # Offline simulators may record what they meant to do (e.g. "answer_fact:order_id").
    act: str | None = None
    # What evalkit changed in this turn's text and why (e.g. invalid characters replaced).
    notes: list[str] = Field(default_factory=list)


class AgentTurn(StrictModel):
    role: Literal["agent"] = "agent"
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    latency_ms: float | None = None
    ttft_ms: float | None = None
    usage: Usage | None = None
    handoff: Handoff | None = None
    # Set when this turn failed (agent raised, timed out, returned junk): what happened, in
    # words, and its kind. Turns recorded before kinds existed have an error and no kind.
    error: str | None = None
    error_kind: TurnError | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    # What evalkit changed in this turn's text and why (e.g. invalid characters replaced).
    notes: list[str] = Field(default_factory=list)


class ToolTurn(StrictModel):
    """A tool result recorded as its own message (imported recordings only)."""

    role: Literal["tool"] = "tool"
    name: str | None = None
    tool_call_id: str | None = None
    content: str = ""


Turn = Annotated[UserTurn | AgentTurn | ToolTurn, Field(discriminator="role")]


class Transcript(StrictModel):
    """Everything one conversation produced: turns, end state and how it ended."""

    schema_version: int = SCHEMA_VERSION
    scenario_id: str
    trial: int = 0
    seed: int | None = None
    variant: str = "default"
    channel: str = "web"
    turns: list[Turn] = Field(default_factory=list)
    outcome: Outcome = Outcome.resolved
    stop_reason: StopReason = StopReason.script_done
    end_state: dict[str, JsonValue] | None = None
    error: str | None = None
    started_at: str | None = None
    duration_ms: float | None = None

    @property
    def agent_turns(self) -> list[AgentTurn]:
        return [t for t in self.turns if isinstance(t, AgentTurn)]

    @property
    def user_turns(self) -> list[UserTurn]:
        return [t for t in self.turns if isinstance(t, UserTurn)]

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for t in self.agent_turns for c in t.tool_calls]

    @property
    def handoff(self) -> Handoff | None:
        for t in self.agent_turns:
            if t.handoff is not None:
                return t.handoff
        return None

    def exchanges(self) -> list[tuple[int, UserTurn | None, list[AgentTurn]]]:
        """Group turns into exchanges: (1-based number, user turn, the agent turns answering it).

        Agent turns before any user message (a greeting) form exchange 0 with no user turn.
        """
        out: list[tuple[int, UserTurn | None, list[AgentTurn]]] = []
        current: tuple[int, UserTurn | None, list[AgentTurn]] | None = None
        n = 0
        for t in self.turns:
            if isinstance(t, UserTurn):
                n += 1
                current = (n, t, [])
                out.append(current)
            elif isinstance(t, AgentTurn):
                if current is None:
                    current = (0, None, [])
                    out.append(current)
                current[2].append(t)
        return out
