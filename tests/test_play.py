"""``evalkit.run.play.play``, the one conversation loop: typed turn errors and stop reasons, the
observers' events in order, the agent's end state after a timeout, and proof that the runner,
the pytest plugin and the load tester all play through it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from _core_helpers import script_suite

import evalkit.run.play
from evalkit.agents.base import AgentReply, SessionInfo, TurnContext
from evalkit.core.transcript import Outcome, StopReason, Transcript, TurnError
from evalkit.run.play import (
    ConversationEnd,
    ConversationStart,
    Limits,
    Observer,
    TurnEnd,
    TurnStart,
    derive_outcome,
    play,
)
from evalkit.scenarios.models import Scenario
from evalkit.simulators.base import SimulatorContext, Stop, UserMessage

ROOT = Path(__file__).resolve().parents[1]


def scenario(*lines: str, max_turns: int | None = None) -> Scenario:
    data: dict[str, Any] = {"id": "s", "user": {"script": list(lines)}}
    if max_turns is not None:
        data["max_turns"] = max_turns
    return Scenario.model_validate(data)


class Echo:
    """A tiny python agent: echoes, hangs on the turns in ``hang``, raises on ``fail``."""

    def __init__(self, hang: tuple[int, ...] = (), fail: tuple[int, ...] = (), junk: tuple[int, ...] = (),
                 end_on: str | None = None) -> None:
        self.hang, self.fail, self.junk, self.end_on = hang, fail, junk, end_on
        self.closed = False
        self.turns = 0

    async def respond(self, ctx: TurnContext) -> Any:
        self.turns += 1
        if ctx.turn in self.hang:
            await asyncio.sleep(30)
        if ctx.turn in self.fail:
            raise RuntimeError(f"boom on {ctx.turn}")
        if ctx.turn in self.junk:
            return 42
        return AgentReply(content=f"echo {ctx.message}", end_conversation=ctx.message == self.end_on)

    def end_state(self) -> dict[str, Any]:
        return {"turns": self.turns}

    def close(self) -> None:
        self.closed = True


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_conversation_start(self, event: ConversationStart) -> None:
        self.events.append(("start", event.info.session_id))

    def on_turn_start(self, event: TurnStart) -> None:
        self.events.append(("turn_start", event.turn))

    def on_turn(self, event: TurnEnd) -> None:
        assert event.ended >= event.started
        self.events.append(("turn", (event.turn, event.error_kind)))

    def on_conversation_end(self, event: ConversationEnd) -> None:
        self.events.append(("end", event.transcript.stop_reason))


def go(sc: Scenario, agent: Any, *, turn_timeout: float = 5.0, conv_timeout: float | None = None,
       observers: tuple[Observer, ...] = (), **kw: Any) -> Transcript:
    from evalkit.simulators import make_simulator

    info = SessionInfo(session_id="sess-1", scenario_id=sc.id, seed=3)
    limits = Limits(max_turns=sc.max_turns or 10, turn_timeout_s=turn_timeout, conversation_timeout_s=conv_timeout)
    return asyncio.run(play(sc, lambda: make_simulator(sc, kind="auto", seed=3), lambda _info: agent, info,
                            limits, observers=observers, **kw))


def test_a_script_plays_to_the_end_and_observers_see_every_event_in_order() -> None:
    rec = Recorder()
    agent = Echo()
    t = go(scenario("hi", "bye"), agent, observers=(rec,))
    assert (t.stop_reason, t.outcome, t.error) == (StopReason.script_done, Outcome.resolved, None)
    assert [turn.content for turn in t.turns] == ["hi", "echo hi", "bye", "echo bye"]
    assert rec.events == [
        ("start", "sess-1"),
        ("turn_start", 1), ("turn", (1, None)),
        ("turn_start", 2), ("turn", (2, None)),
        ("end", StopReason.script_done),
    ]
    assert t.end_state == {"turns": 2} and agent.closed
    assert t.duration_ms is not None and t.seed == 3


def test_a_turn_timeout_is_typed_and_the_end_state_is_still_recorded() -> None:
    rec = Recorder()
    agent = Echo(hang=(2,))
    started = time.monotonic()
    t = go(scenario("one", "two", "three"), agent, turn_timeout=0.2, observers=(rec,))
    assert time.monotonic() - started < 3
    last = t.agent_turns[-1]
    assert last.error_kind is TurnError.timeout and last.error == "no reply within 0.2s (turn timeout)"
    assert (t.stop_reason, t.outcome) == (StopReason.timeout, Outcome.error)
    assert t.error == "turn 2: no reply within 0.2s (turn timeout)"
    assert t.end_state == {"turns": 2} and agent.closed  # fetched after the timeout, then closed
    assert rec.events[-2:] == [("turn", (2, TurnError.timeout)), ("end", StopReason.timeout)]


def test_a_conversation_timeout_cancels_the_turn_as_a_typed_value() -> None:
    agent = Echo(hang=(2,))
    t = go(scenario("one", "two", "three"), agent, turn_timeout=5.0, conv_timeout=0.3)
    assert (t.stop_reason, t.outcome) == (StopReason.timeout, Outcome.error)
    assert t.error == "conversation took longer than 0.3s (conversation timeout)"
    last = t.agent_turns[-1]
    assert (last.error_kind, last.error) == (TurnError.cancelled, "cancelled: conversation timeout")
    assert t.end_state == {"turns": 2} and agent.closed


@pytest.mark.parametrize(
    ("agent", "kind", "reason", "error"),
    [
        (Echo(fail=(1,)), TurnError.raised, StopReason.agent_error, "turn 1: agent raised RuntimeError: boom on 1"),
        (Echo(junk=(1,)), TurnError.junk, StopReason.agent_error, "turn 1: junk reply: respond() returned int 42"),
    ],
)
def test_agent_failures_are_typed(agent: Echo, kind: TurnError, reason: StopReason, error: str) -> None:
    t = go(scenario("hi"), agent)
    assert t.agent_turns[-1].error_kind is kind
    assert t.stop_reason is reason and t.outcome is Outcome.error
    assert (t.error or "").startswith(error)


def test_a_reply_over_the_cap_is_typed_too_large() -> None:
    from evalkit.simulators import make_simulator

    sc = scenario("hi")
    info = SessionInfo(session_id="s", scenario_id=sc.id)
    t = asyncio.run(play(sc, make_simulator(sc, kind="auto", seed=0), lambda _i: Echo(), info,
                         Limits(max_turns=5, turn_timeout_s=5.0, max_reply_bytes=4)))
    assert t.agent_turns[-1].error_kind is TurnError.too_large and t.stop_reason is StopReason.agent_error


def test_stop_reasons_agent_ended_max_turns_and_interrupted() -> None:
    assert go(scenario("a", "b", "c"), Echo(end_on="b")).stop_reason is StopReason.agent_ended
    t = go(scenario("a", "b", "c", max_turns=2), Echo())
    assert (t.stop_reason, t.outcome, len(t.user_turns)) == (StopReason.max_turns, Outcome.max_turns, 2)
    asked: list[int] = []

    def go_on() -> bool:
        asked.append(1)
        return len(asked) < 2

    t = go(scenario("a", "b", "c"), Echo(), go_on=go_on)
    assert (t.stop_reason, len(t.user_turns), t.error) == (StopReason.interrupted, 1, None)
    assert derive_outcome(t) is Outcome.abandoned


def test_simulator_failures_are_recorded_not_raised() -> None:
    sc = scenario("hi")
    info = SessionInfo(session_id="s", scenario_id=sc.id)
    limits = Limits(max_turns=5, turn_timeout_s=1.0)

    def broken() -> Any:
        raise ValueError("no persona")

    t = asyncio.run(play(sc, broken, lambda _i: Echo(), info, limits))
    assert (t.stop_reason, t.error) == (StopReason.simulator_error, "simulator could not start: ValueError: no persona")

    class Odd:
        def next_turn(self, ctx: SimulatorContext) -> Any:
            return "hello"

    t = asyncio.run(play(sc, Odd(), lambda _i: Echo(), info, limits))
    assert t.stop_reason is StopReason.simulator_error and "not UserMessage or Stop" in (t.error or "")


def test_a_cancelled_play_tells_the_observers_closes_the_session_and_propagates() -> None:
    rec = Recorder()
    agent = Echo(hang=(1,))
    sc = scenario("hi")

    class User:
        def next_turn(self, ctx: SimulatorContext) -> UserMessage | Stop:
            return UserMessage(content="hi") if ctx.turn == 1 else Stop(reason=StopReason.script_done)

    async def main() -> None:
        info = SessionInfo(session_id="s", scenario_id=sc.id)
        task = asyncio.create_task(play(sc, User(), lambda _i: agent, info, Limits(max_turns=5, turn_timeout_s=10),
                                        observers=[rec]))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert rec.events[-2:] == [("turn", (1, TurnError.cancelled)), ("end", StopReason.interrupted)]
    assert agent.closed


def test_turns_recorded_before_error_kinds_still_load() -> None:
    old = {"scenario_id": "s", "turns": [{"role": "user", "content": "hi"},
                                         {"role": "agent", "error": "no reply within 1s (turn timeout)"}],
           "outcome": "error", "stop_reason": "timeout", "error": "turn 1: no reply within 1s (turn timeout)"}
    t = Transcript.model_validate(old)
    assert t.agent_turns[0].error_kind is None and t.stop_reason is StopReason.timeout


# -- one path: every caller plays through play() -------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every agent turn asked through play() (``respond`` as play() sees it), by session id."""
    seen: list[str] = []
    real = evalkit.run.play.respond

    async def counting(agent: Any, ctx: TurnContext, clock: Any = None) -> AgentReply:
        seen.append(ctx.session_id)
        return await real(agent, ctx, clock)

    monkeypatch.setattr(evalkit.run.play, "respond", counting)
    return seen


def test_the_runner_plays_through_play(tmp_path: Path, counted: list[str]) -> None:
    from evalkit.run.runner import RunConfig, Runner, RunObserver

    class Watch(RunObserver):
        def __init__(self) -> None:
            self.turns = 0
            self.results: list[str] = []

        def on_turn(self, event: TurnEnd) -> None:
            self.turns += 1

        async def on_result(self, result: Any) -> None:
            self.results.append(result.transcript.scenario_id)

    watch = Watch()
    suite = script_suite(tmp_path / "suite", 3, steps=2)
    run = Runner(RunConfig(suite=[suite], agent="evalkit.testing.agents:EchoAgent", out=tmp_path / "r",
                           progress=False, handle_signals=False, observers=[watch])).run_sync()
    n_turns = sum(len(c.transcript.agent_turns) for c in run.conversations)
    assert n_turns == len(counted) == watch.turns == 6
    assert sorted(watch.results) == sorted(c.transcript.scenario_id for c in run.conversations)


def test_the_pytest_plugin_plays_through_play(counted: list[str]) -> None:
    from evalkit.integrations.pytest_plugin import play_conversation

    result = play_conversation(Echo(), scenario("hi", "bye"))
    assert len(counted) == len(result.transcript.agent_turns) == 2


def test_the_load_tester_plays_through_play(counted: list[str]) -> None:
    from evalkit.run.load import LoadConfig, LoadTest
    from tests._service_server import serve

    with serve() as (_app, base):
        config = LoadConfig(suite=[ROOT / "datasets" / "support"], agent=base, users=2, ramp_s=0, duration_s=1.0,
                            steps=1, turn_timeout_s=5.0, progress=False, handle_signals=False)
        report = LoadTest(config).run_sync()
    assert report.totals.requests == len(counted) > 0


def _without_error_kinds(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_error_kinds(v) for k, v in value.items() if k != "error_kind"}
    if isinstance(value, list):
        return [_without_error_kinds(v) for v in value]
    return value


def test_a_run_folder_written_before_error_kinds_resumes_and_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from _core_helpers import write
    from _recorded_helpers import make_cli

    from evalkit.run.runfiles import JOURNAL, load_run
    from evalkit.run.runner import RunConfig, Runner

    suite = tmp_path / "s"
    write(suite / "a.yaml", "id: hangs\nuser: {script: [one, two]}\n")
    write(suite / "b.yaml", "id: later\nuser: {script: [one]}\n")
    out = tmp_path / "r"
    config = dict(agent="evalkit.testing.agents:FlakyAgent?mode=hang&turns=[1]&hang_s=5", out=out,
                  turn_timeout_s=0.2, progress=False, handle_signals=False, concurrency=1)
    Runner(RunConfig(suite=[suite], **config)).run_sync()  # type: ignore[arg-type]
    journal = out / JOURNAL
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert any(t.get("error_kind") == "timeout" for line in lines for t in line["transcript"]["turns"])
    # An older evalkit wrote no error kinds; and its run stopped after the first conversation.
    old = [line for line in lines if line["transcript"]["scenario_id"] == "hangs"]
    journal.write_text("".join(json.dumps(_without_error_kinds(line)) + "\n" for line in old))
    resumed = Runner(RunConfig(suite=[], resume=True, **{**config, "agent": None})).run_sync()  # type: ignore[arg-type]
    assert resumed.manifest.status == "complete" and len(resumed.conversations) == 2
    hangs = next(c for c in resumed.conversations if c.transcript.scenario_id == "hangs").transcript
    assert (hangs.stop_reason, hangs.agent_turns[-1].error_kind) == (StopReason.timeout, None)
    assert len(load_run(out).conversations) == 2
    cli = make_cli(monkeypatch, capsys)
    scored = cli("score", str(out), "--scenarios", str(suite))
    assert scored.returncode == 0, scored.stderr
    assert "ERROR  hangs trial 0: agent error: turn 1: no reply within 0.2s (turn timeout)" in scored.stdout


def test_a_slow_session_start_names_another_agent_that_held_the_event_loop() -> None:
    """Opening the session timed out while another conversation's async agent blocked the event
    loop: the error says so (as a turn timeout does) instead of blaming this agent alone."""
    from types import SimpleNamespace

    from evalkit.run.play import LoopStalls
    from evalkit.simulators import make_simulator

    stalls = LoopStalls()

    async def slow_start(_info: SessionInfo) -> Echo:
        # The stall of another conversation, noted while this session is being created.
        clock = SimpleNamespace(longest_s=1.2, longest_at=time.monotonic())
        stalls.note(SessionInfo(session_id="other-7", scenario_id="x"), 3, clock)  # type: ignore[arg-type]
        await asyncio.sleep(5)
        return Echo()

    sc = scenario("hi")
    info = SessionInfo(session_id="sess-1", scenario_id=sc.id)
    t = asyncio.run(play(sc, lambda: make_simulator(sc, kind="auto", seed=0), slow_start, info, Limits(max_turns=3, turn_timeout_s=0.2), stalls=stalls))
    assert t.stop_reason is StopReason.timeout
    assert t.error is not None and t.error.startswith("creating the agent took longer than 0.2s; meanwhile the "
                                                      "event loop was blocked for 1.2s by the agent of "
                                                      "conversation other-7 (turn 3)")
    # Without another agent's stall the message stays plain.
    t = asyncio.run(play(sc, lambda: make_simulator(sc, kind="auto", seed=0), slow_start, SessionInfo(session_id="other-7", scenario_id=sc.id),
        Limits(max_turns=3, turn_timeout_s=0.2), stalls=LoopStalls()))
    assert t.error == "creating the agent took longer than 0.2s"
