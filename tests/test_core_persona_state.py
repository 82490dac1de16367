"""The runner lets a persona's ``done_when`` use ``state`` judges: it hands the simulator
``extra["end_state"]`` (the agent's state, fetched mid-conversation) only when needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from _core_helpers import write

from evalkit.agents.base import SessionInfo
from evalkit.core.results import RunResult
from evalkit.core.transcript import StopReason
from evalkit.run.runner import RunConfig, Runner
from evalkit.testing.agents import StatefulAgent

SCENARIO = """
id: cancel-until-cancelled
initial_state: {{orders: {{ORD-7: placed}}}}
max_turns: 6
user:
  persona:
    traits: {{asks_for_human: never, patience: 5}}
    goal:
      description: cancel my order
      intent: cancel
      done_when:
        - {done_when}
    facts: {{order_id: ORD-7}}
expect:
  - state: {{contains: {{orders: {{ORD-7: cancelled}}}}}}
"""


class CountingAgent(StatefulAgent):
    """StatefulAgent that counts how often the runner asks for its state."""

    calls: ClassVar[list[int]] = []  # end_state() calls, one entry per call: the turn count then

    def __init__(self, session: SessionInfo | None = None) -> None:
        super().__init__(session=session)
        self.turns = 0

    def respond(self, ctx: Any) -> Any:
        self.turns += 1
        return super().respond(ctx)

    def end_state(self) -> dict[str, Any]:
        CountingAgent.calls.append(self.turns)
        return super().end_state()


def _run(tmp_path: Path, done_when: str, name: str) -> RunResult:
    write(tmp_path / name / "p.yaml", SCENARIO.format(done_when=done_when))
    CountingAgent.calls = []
    config = RunConfig(
        suite=[tmp_path / name],
        agent="test_core_persona_state:CountingAgent",
        out=tmp_path / f"run-{name}",
        progress=False,
        handle_signals=False,
        concurrency=1,
    )
    return Runner(config).run_sync()


def test_state_in_done_when_ends_the_conversation_once_the_state_is_reached(tmp_path: Path) -> None:
    result = _run(tmp_path, "state: {contains: {orders: {ORD-7: cancelled}}}", "state")
    conv = result.conversations[0]
    t = conv.transcript
    assert t.stop_reason == StopReason.goal_met and conv.passed
    assert t.end_state == {"orders": {"ORD-7": "cancelled"}, "tickets": []}
    # Fetched live after each agent reply (not only at the end) until the reply that
    # cancelled the order; then the persona only says thanks and stops.
    *live, final = CountingAgent.calls
    assert live == list(range(1, len(live) + 1))
    cancelled_at = next(i for i, a in enumerate(t.agent_turns, 1) if any(c.name == "cancel_order" for c in a.tool_calls))
    assert live[-1] == cancelled_at and len(t.user_turns) <= cancelled_at + 1 < 6
    assert final == len(t.agent_turns)  # the end state the runner records


def test_state_never_reached_keeps_the_persona_pushing(tmp_path: Path) -> None:
    # The judge can fail: an order that must end up refunded never does (the agent cancels).
    result = _run(tmp_path, "state: {contains: {orders: {ORD-7: refunded}}}", "never")
    t = result.conversations[0].transcript
    assert t.stop_reason != StopReason.goal_met
    assert len(CountingAgent.calls) > 2


def test_ordinary_runs_fetch_the_state_only_at_the_end(tmp_path: Path) -> None:
    result = _run(tmp_path, "tool_called: {name: cancel_order, arguments: {order_id: ORD-7}}", "plain")
    t = result.conversations[0].transcript
    assert t.stop_reason == StopReason.goal_met
    assert CountingAgent.calls == [len(t.agent_turns)]
