"""A minimal conversation loop for simulator tests (the real one is the runner's)."""

from __future__ import annotations

import asyncio
import inspect
import random
import re
from collections.abc import Callable
from typing import Any

from evalkit.core.transcript import AgentTurn, Handoff, ToolCall, Transcript, UserTurn
from evalkit.scenarios.models import Scenario
from evalkit.simulators import make_simulator
from evalkit.simulators.base import SimulatorContext, Stop

Agent = Callable[[str, Transcript], AgentTurn]


def persona_scenario(**persona: Any) -> Scenario:
    persona.setdefault("goal", {"description": "track my order", "intent": "track_order"})
    return Scenario.model_validate({"id": "p", "user": {"persona": persona}})


def play(scenario: Scenario, agent: Agent, *, seed: int = 0, max_turns: int = 30) -> tuple[Transcript, Stop]:
    sim = make_simulator(scenario, seed=seed)
    t = Transcript(scenario_id=scenario.id)
    for _ in range(100):
        ctx = SimulatorContext(
            scenario=scenario,
            transcript=t,
            turn=len(t.user_turns) + 1,
            rng=random.Random(seed),
            max_turns=max_turns,
        )
        out = sim.next_turn(ctx)
        if inspect.isawaitable(out):
            out = asyncio.run(out)
        if isinstance(out, Stop):
            return t, out
        t.turns.append(UserTurn(content=out.content, act=out.act))
        t.turns.append(agent(out.content, t))
    raise AssertionError("the simulator never stopped")


def users(t: Transcript) -> list[str]:
    return [u.content for u in t.user_turns]


def acts(t: Transcript) -> list[str | None]:
    return [u.act for u in t.user_turns]


def reply(
    content: str = "",
    *,
    tool: str | None = None,
    args: dict[str, Any] | None = None,
    handoff: str | None = None,
) -> AgentTurn:
    calls = [ToolCall(name=tool, arguments=args or {})] if tool else []
    return AgentTurn(content=content, tool_calls=calls, handoff=Handoff(reason=handoff) if handoff else None)


def order_desk(msg: str, t: Transcript) -> AgentTurn:
    """A competent agent: asks for the order id, then looks it up and offers more help."""
    m = re.search(r"ORD-\d+", msg)
    if m:
        return reply(
            f"Order {m.group(0)} has shipped. Is there anything else?",
            tool="check_order_status",
            args={"order_id": m.group(0)},
        )
    return reply("Sure, I can help. What's your order number?")


def always(text: str) -> Agent:
    return lambda _msg, _t: reply(text)
