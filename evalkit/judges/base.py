"""Judges: ``evaluate(ctx) -> Verdict``. A judge holds its configuration, never results."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from evalkit.core.results import JudgeKind, Verdict
from evalkit.core.transcript import AgentTurn, ToolCall, Transcript, UserTurn
from evalkit.scenarios.models import Scenario

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = ["JudgeContext", "Judge"]


@dataclass(frozen=True)
class JudgeContext:
    """What a judge sees: the transcript, the scenario, an optional window and model."""

    transcript: Transcript
    scenario: Scenario | None = None
    # Inclusive range of exchange numbers (1-based user turns) the judge looks at;
    # None means the whole conversation. Script-step expectations set (n, n).
    window: tuple[int, int] | None = None
    llm: ModelClients | None = None  # model clients (``llm.judge`` for model judges); None offline

    def _in_window(self, n: int) -> bool:
        return self.window is None or self.window[0] <= n <= self.window[1]

    def exchanges(self) -> list[tuple[int, UserTurn | None, list[AgentTurn]]]:
        return [e for e in self.transcript.exchanges() if self._in_window(e[0])]

    def agent_turns(self) -> list[tuple[int, AgentTurn]]:
        """(exchange number, agent turn) pairs inside the window."""
        return [(n, a) for n, _, agents in self.exchanges() for a in agents]

    def tool_calls(self) -> list[tuple[int, ToolCall]]:
        """(exchange number, tool call) pairs inside the window, in call order."""
        return [(n, c) for n, a in self.agent_turns() for c in a.tool_calls]


class Judge(BaseModel):
    """Base class for judges. Fields are the judge's arguments from the scenario file
    (validated, ``extra="forbid"``); ``evaluate`` may be sync or async."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = "judge"
    # The field a scalar argument maps to (`- outcome: escalated`), if any.
    primary: ClassVar[str | None] = None
    kind: ClassVar[JudgeKind] = JudgeKind.deterministic

    def evaluate(self, ctx: JudgeContext) -> Verdict | Awaitable[Verdict]:
        raise NotImplementedError

    def verdict(
        self,
        passed: bool | None,
        reason: str,
        *,
        score: float | None = None,
        label: str | None = None,
        turn: int | None = None,
        **details: Any,
    ) -> Verdict:
        """Build this judge's verdict."""
        return Verdict(
            judge=self.name,
            passed=passed,
            score=score,
            label=label,
            reason=reason,
            kind=self.kind,
            turn=turn,
            details=details,
        )

    def skip(self, why: str) -> Verdict:
        return Verdict(judge=self.name, skipped=why, reason=f"skipped: {why}", kind=self.kind)
