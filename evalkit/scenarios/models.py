"""The scenario file format, as pydantic models (the JSON Schema is generated from these).

A scenario file holds one scenario (a mapping) or many (a list, or a mapping with a
``scenarios:`` list). A suite is a folder of such files with an optional ``suite.yaml``
(:class:`SuiteConfig`) whose defaults apply to every scenario in it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, JsonValue, PrivateAttr, model_validator

from evalkit.agents.base import DEFAULT_MAX_REPLY_BYTES
from evalkit.core.results import GateConfig  # recorded in the manifest; defined with it
from evalkit.core.strict import StrictModel

__all__ = [
    "Channel",
    "JudgeSpec",
    "ScriptStep",
    "PersonaTraits",
    "Goal",
    "Persona",
    "UserSpec",
    "Scenario",
    "GateConfig",
    "SuiteConfig",
]

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


class Channel(StrEnum):
    web = "web"
    whatsapp = "whatsapp"
    slack = "slack"
    voice = "voice"


def _json_keys(value: Any) -> Any:
    """Mapping keys as JSON has them: YAML reads ``levels: {1: ...}`` with int keys."""
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else str(k).lower() if isinstance(k, bool) else str(k)): _json_keys(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_json_keys(v) for v in value]
    return value


class JudgeSpec(StrictModel):
    """One expectation: a judge name (or ``module:Class``) and its arguments.

    Written in YAML as a one-key mapping, ``- tool_called: {name: cancel_order}``; a judge
    with no arguments may be a bare string, ``- no_pii_leak``; a judge with one main
    argument may take it as a scalar, ``- outcome: escalated`` (stored as ``{"value": ...}``
    and mapped to the judge's ``primary`` field by the registry).
    """

    name: str
    args: dict[str, JsonValue] = Field(default_factory=dict)
    # Set by the loader: where the spec was written, for one-line error messages.
    _file: str | None = PrivateAttr(default=None)
    _line: int | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data, "args": {}}
        if isinstance(data, dict) and set(data) - {"name", "args"}:
            if len(data) != 1:
                raise ValueError(
                    f"an expectation is a mapping with exactly one judge name as key, got {sorted(data)}"
                )
            ((name, args),) = data.items()
            if args is None:
                args = {}
            if not isinstance(args, dict):
                args = {"value": args}
            return {"name": name, "args": _json_keys(args)}
        if isinstance(data, dict) and isinstance(data.get("args"), dict):
            return {**data, "args": _json_keys(data["args"])}
        return data

    def label(self) -> str:
        """Short human label, e.g. ``tool_called(check_order_status)``."""
        hint = self.args.get("name") or self.args.get("outcome") or self.args.get("contains")
        if isinstance(hint, list):
            hint = ", ".join(str(h) for h in hint[:3])
        return f"{self.name}({hint})" if hint else self.name


class ScriptStep(StrictModel):
    """One scripted user message and the expectations checked on the agent's reply to it."""

    say: str
    expect: list[JudgeSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"say": data} if isinstance(data, str) else data


class PersonaTraits(StrictModel):
    tone: Literal["polite", "impatient", "angry", "confused", "terse"] = "polite"
    verbosity: Literal["low", "normal", "high"] = "normal"
    typo_rate: float = Field(default=0.0, ge=0.0, le=0.5)
    # How many unhelpful agent replies the user tolerates before getting frustrated.
    patience: int = Field(default=3, ge=0, le=20)
    # Ask for a human: never, when frustrated, or straight away.
    asks_for_human: Literal["never", "when_frustrated", "immediately"] = "when_frustrated"
    language: str = "en"


class Goal(StrictModel):
    """What the simulated user wants, and what "met" looks like (checkable offline)."""

    description: str
    # A coarse intent the offline persona engine plays: track_order, return, refund,
    # cancel, change_address, faq, human, other.
    intent: str = "other"
    # The first message; when absent the persona engine phrases one from the intent.
    opening: str | None = None
    # Every judge here must pass (on the transcript so far) for the goal to count as met.
    done_when: list[JudgeSpec] = Field(default_factory=list)
    # The user accepts an escalation to a human as an end to the conversation.
    accept_handoff: bool = True


class Persona(StrictModel):
    """A simulated user: traits, a goal, and facts revealed only when asked."""

    name: str | None = None
    traits: PersonaTraits = Field(default_factory=PersonaTraits)
    goal: Goal
    # Facts the user knows and reveals only when the agent asks (order_id, email, reason, ...).
    facts: dict[str, JsonValue] = Field(default_factory=dict)
    # Facts the user does not know (says so when asked).
    unknown: list[str] = Field(default_factory=list)
    # Free-text instructions for an LLM-driven user (ignored by the offline engine).
    instructions: str | None = None
    max_turns: int = Field(default=12, ge=1, le=200)


class UserSpec(StrictModel):
    """The user side of a scenario: a script or a persona, exactly one."""

    script: list[ScriptStep] | None = None
    persona: Persona | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UserSpec:
        if (self.script is None) == (self.persona is None):
            raise ValueError("give exactly one of 'script' or 'persona'")
        if self.script is not None and not self.script:
            raise ValueError("'script' must have at least one step")
        return self


class Scenario(StrictModel):
    """One conversation to play against the agent, and what must be true of it."""

    id: str = Field(pattern=_ID_PATTERN)
    title: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    channel: Channel | None = None  # None: the suite's default (web)
    # Who the customer is (e.g. {email: ..., name: ...}); given to the agent as identity.
    customer: dict[str, JsonValue] | None = None
    # Initial agent state, passed to the agent at session start (free-form).
    initial_state: dict[str, JsonValue] | None = None
    user: UserSpec
    expect: list[JudgeSpec] = Field(default_factory=list)
    trials: int | None = Field(default=None, ge=1, le=1000)
    max_turns: int | None = Field(default=None, ge=1, le=200)
    # Per-scenario agent spec override (rare; normally the suite or --agent names it).
    agent: str | None = None

    _file: str | None = PrivateAttr(default=None)
    _line: int | None = PrivateAttr(default=None)

    @property
    def kind(self) -> str:
        return "script" if self.user.script is not None else "persona"


class SuiteConfig(StrictModel):
    """``suite.yaml``: defaults for every scenario in the folder."""

    name: str | None = None
    description: str = ""
    agent: str | None = None
    channel: Channel = Channel.web
    trials: int = Field(default=1, ge=1, le=1000)
    # Judges applied to every scenario, in addition to its own expectations.
    judges: list[JudgeSpec] = Field(default_factory=list)
    gate: GateConfig = Field(default_factory=GateConfig)
    # Files or folders (relative to the suite folder, never outside it) to load; by default
    # every *.yaml / *.yml file below the folder except suite.yaml.
    include: list[str] | None = None
    max_turns: int = Field(default=12, ge=1, le=200)
    turn_timeout_s: float = Field(default=30.0, gt=0)
    conversation_timeout_s: float = Field(default=300.0, gt=0)
    # Largest agent reply kept: an HTTP body is not read past it; a bigger reply is an
    # agent error on that turn (runaway replies would otherwise fill memory and the journal).
    max_reply_bytes: int = Field(default=DEFAULT_MAX_REPLY_BYTES, ge=1024)
