"""The agent side of a conversation: one method, one context object."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from evalkit.core.transcript import Handoff, ToolCall, Turn, Usage

if TYPE_CHECKING:  # evalkit.llm loads openai: not at import time
    from evalkit.llm.settings import ModelSettings

__all__ = [
    "AgentConfig",
    "DEFAULT_MAX_REPLY_BYTES",
    "SessionInfo",
    "TurnContext",
    "AgentReply",
    "AgentAdapter",
    "AgentProvider",
]

# A reply bigger than this is an agent error (suite.yaml max_reply_bytes, --max-reply-bytes).
DEFAULT_MAX_REPLY_BYTES = 5_000_000


@dataclass(frozen=True)
class AgentConfig:
    """What the run configures for the agent under test, the same for every conversation.

    A Python factory with an ``agent_config`` parameter receives it (``--agent
    module:factory``); model-backed adapters (``openai-chat:``) read it too. Model flags
    reach the agent this way, never through environment variables set behind its back.
    """

    # The agent role's model: --agent-model / --model with --base-url and the API key
    # (EVALKIT_AGENT_API_KEY / OPENAI_API_KEY); None when no model is configured for it.
    model: ModelSettings | None = None
    # --base-url as given, for adapters that name their own model (openai-chat:MODEL); it
    # ranks like the flag: below EVALKIT_AGENT_BASE_URL, above EVALKIT_BASE_URL.
    base_url: str | None = None


@dataclass(frozen=True)
class SessionInfo:
    """Who and what one conversation is about; fixed for the whole conversation."""

    session_id: str
    scenario_id: str
    trial: int = 0
    seed: int = 0
    variant: str = "default"
    channel: str = "web"
    customer: dict[str, JsonValue] | None = None
    initial_state: dict[str, JsonValue] | None = None


@dataclass
class TurnContext:
    """Everything an agent gets for one user message. New fields are added here, never as
    new ``respond`` parameters, so no adapter breaks."""

    session: SessionInfo
    message: str
    turn: int  # 1-based exchange number
    history: list[Turn] = field(default_factory=list)  # turns before this message
    # The run's cap on one reply: adapters that read a reply stop past it (None: no cap).
    max_reply_bytes: int | None = None
    _on_first_token: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def channel(self) -> str:
        return self.session.channel

    @property
    def customer(self) -> dict[str, JsonValue] | None:
        return self.session.customer

    def first_token(self) -> None:
        """Streaming adapters call this when the first token arrives (measures TTFT)."""
        if self._on_first_token is not None:
            self._on_first_token()


class AgentReply(BaseModel):
    """What the agent answered to one user message."""

    model_config = ConfigDict(extra="forbid")

    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    handoff: Handoff | None = None
    usage: Usage | None = None
    # The agent closed the conversation (e.g. after handing off).
    end_conversation: bool = False
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


@runtime_checkable
class AgentAdapter(Protocol):
    """What a user's agent object provides (one per conversation).

    ``respond`` may be sync or async and may return an :class:`AgentReply`, a mapping
    with its fields, or a plain string. ``end_state()`` (the state the conversation left
    behind, for ``state`` assertions), ``reset()`` and ``aclose()`` are optional.
    """

    def respond(self, ctx: TurnContext) -> AgentReply | Awaitable[AgentReply] | Any: ...


class AgentProvider(ABC):
    """Builds one isolated agent session per conversation from an agent spec."""

    spec: str

    @abstractmethod
    def new_session(self, info: SessionInfo) -> AgentAdapter:
        """A fresh agent for one conversation, sharing no state with any other."""

    def model_settings(self) -> list[ModelSettings]:
        """The models this agent calls with evalkit's settings, checked before a run starts
        (none by default: evalkit cannot see inside a user's agent)."""
        return []

    async def aclose(self) -> None:  # noqa: B027  # optional hook: most providers hold nothing
        """Release shared resources (HTTP clients, servers)."""
