"""Shared helpers for the reference agent tests."""

from __future__ import annotations

from reference_agent.agent import AgentResponse, SupportAgent

ANA = "ana.silva@example.com"
BEN = "ben.carter@example.com"
CHLOE = "chloe.nguyen@example.com"


def agent(email: str | None = ANA, **kw) -> SupportAgent:
    return SupportAgent(session_id=kw.pop("session_id", "test"), customer_email=email, **kw)


def chat(a: SupportAgent, *messages: str) -> list[AgentResponse]:
    return [a.reply(m) for m in messages]


def tools(responses: list[AgentResponse]) -> list[str]:
    return [c["name"] for r in responses for c in r.tool_calls]


def calls(responses: list[AgentResponse], name: str) -> list[dict]:
    return [c for r in responses for c in r.tool_calls if c["name"] == name]
