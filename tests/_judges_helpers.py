"""Small builders for judge and simulator tests (not collected: no ``test_`` prefix)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from evalkit.core.results import Verdict
from evalkit.core.transcript import AgentTurn, Handoff, ToolCall, Transcript, UserTurn
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.registry import build_judge
from evalkit.scenarios.models import JudgeSpec


def agent(
    content: str = "", *, tools: list[tuple[str, dict[str, Any]]] | None = None, **fields: Any
) -> AgentTurn:
    """An agent turn; ``tools=[("name", {args})]``, ``handoff="reason"`` or a dict."""
    if isinstance(fields.get("handoff"), str):
        fields["handoff"] = Handoff(reason=fields["handoff"])
    elif isinstance(fields.get("handoff"), dict):
        fields["handoff"] = Handoff(**fields["handoff"])
    calls = [ToolCall(name=n, arguments=a) for n, a in tools or []]
    return AgentTurn(content=content, tool_calls=calls, **fields)


def convo(*exchanges: tuple[str, AgentTurn | str], **fields: Any) -> Transcript:
    """A transcript from (user text, agent turn or text) pairs."""
    turns: list[Any] = []
    for user, reply in exchanges:
        turns.append(UserTurn(content=user))
        turns.append(agent(reply) if isinstance(reply, str) else reply)
    return Transcript(scenario_id="s", turns=turns, **fields)


def judge(spec: Any) -> Judge:
    """Build a judge from what a scenario file would hold, e.g. ``{"outcome": "escalated"}``."""
    return build_judge(JudgeSpec.model_validate(spec))


def run(spec: Any, transcript: Transcript, window: tuple[int, int] | None = None) -> Verdict:
    j = spec if isinstance(spec, Judge) else judge(spec)
    out = j.evaluate(JudgeContext(transcript=transcript, window=window))
    return asyncio.run(out) if inspect.isawaitable(out) else out
