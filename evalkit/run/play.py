"""One conversation, played: the only conversation loop in evalkit.

:func:`play` alternates simulated-user turns and agent turns until someone stops, and
returns the :class:`~evalkit.core.transcript.Transcript`. Every caller that plays a conversation
goes through it: the runner (``evalkit run``, the self-test, mutation testing, the pytest
plugin and ``run_conversation`` through :meth:`evalkit.run.runner.Runner.play_one`) and the
load tester. It owns:

* opening the agent session (``new_session(info)``, ``reset()``), the turn and
  conversation timeouts, the reply cap, and ``end_state()`` then ``close()`` of the session,
  even after a timeout;
* the typed results: every failed agent turn carries a :class:`~evalkit.core.transcript.TurnError`
  kind, every conversation a :class:`~evalkit.core.transcript.StopReason` and an
  :class:`~evalkit.core.transcript.Outcome` (:func:`derive_outcome`);
* the hooks: :class:`Observer` objects see typed events (conversation start, each agent
  turn's start and end, conversation end). Progress, the journal and the load tester's
  latency samples are observers; none of them is code inside the loop.

Failures of the agent or of the simulated user are recorded on the transcript, never
raised. A cancellation of the task running :func:`play` (a run's Ctrl-C, a load test's hard
stop) closes the session, tells the observers (``stop_reason=interrupted``) and propagates.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from evalkit.agents.base import SessionInfo, TurnContext
from evalkit.agents.session import (
    AgentCrash,
    AgentJunk,
    LoopClock,
    ReplyTooLarge,
    call_maybe_async,
    close,
    end_state,
    respond,
    vet_reply,
)
from evalkit.core.transcript import AgentTurn, Outcome, StopReason, Transcript, TurnError, UserTurn
from evalkit.core.untrusted import clean_text, exc_line, one_line, safe_str
from evalkit.scenarios.models import Scenario
from evalkit.simulators.base import Simulator, SimulatorContext, Stop, UserMessage

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = [
    "Limits",
    "Observer",
    "ConversationStart",
    "TurnStart",
    "TurnEnd",
    "ConversationEnd",
    "LoopStalls",
    "play",
    "derive_outcome",
]

log = logging.getLogger("evalkit")

# Closing a session after the task was cancelled waits at most this long (a stop stays prompt).
_CLOSE_ON_CANCEL_S = 5.0
# An async agent step holding the loop this long is remembered, to explain others' timeouts.
_STALL_S = 0.5


@dataclass(frozen=True)
class Limits:
    """The bounds of one conversation."""

    max_turns: int
    turn_timeout_s: float
    conversation_timeout_s: float | None = None  # None: no bound on the whole conversation
    max_reply_bytes: int | None = None  # None: replies are not capped


# -- events and observers ------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationStart:
    info: SessionInfo
    scenario: Scenario
    at: float  # time.monotonic()


@dataclass(frozen=True)
class TurnStart:
    """An agent turn is about to be asked for (``turn`` is 1-based)."""

    info: SessionInfo
    turn: int
    message: str
    at: float  # time.monotonic()


@dataclass(frozen=True)
class TurnEnd:
    """An agent turn ended: answered, or failed with ``agent.error_kind`` set."""

    info: SessionInfo
    turn: int
    agent: AgentTurn
    started: float  # time.monotonic() when the turn was asked for
    ended: float

    @property
    def error_kind(self) -> TurnError | None:
        return self.agent.error_kind


@dataclass(frozen=True)
class ConversationEnd:
    """The conversation is over; ``transcript`` is final (the session is closed next)."""

    info: SessionInfo
    transcript: Transcript
    at: float  # time.monotonic()


class Observer:
    """Hooks :func:`play` calls, in order: ``on_conversation_start``, then per agent turn
    ``on_turn_start`` and ``on_turn``, then ``on_conversation_end`` (also when the task is
    cancelled). Override what you need; the defaults do nothing. Observers run on the event
    loop between awaits: keep them quick, and do not raise (an exception is a bug and ends
    the caller)."""

    def on_conversation_start(self, event: ConversationStart) -> None:
        """A conversation begins."""

    def on_turn_start(self, event: TurnStart) -> None:
        """The user's message is about to go to the agent."""

    def on_turn(self, event: TurnEnd) -> None:
        """The agent answered, or the turn failed (``event.error_kind``)."""

    def on_conversation_end(self, event: ConversationEnd) -> None:
        """The conversation ended; its transcript is final."""


# -- the shared record of event-loop stalls -------------------------------------------------


@dataclass(frozen=True)
class _Stall:
    """An agent's coroutine held the event loop (every conversation waited meanwhile)."""

    start: float
    end: float
    session_id: str
    turn: int


class LoopStalls:
    """Times an async agent held the event loop, shared by the conversations of one run so
    that a turn timing out meanwhile says whose agent made it wait."""

    def __init__(self) -> None:
        self._stalls: list[_Stall] = []

    def note(self, info: SessionInfo, turn: int, clock: LoopClock) -> None:
        if clock.longest_s >= _STALL_S:
            self._stalls.append(_Stall(clock.longest_at, clock.longest_at + clock.longest_s, info.session_id, turn))

    def timeout_error(self, info: SessionInfo, turn: int, turn_timeout: float, clock: LoopClock, t0: float) -> str:
        """"no reply within ...", saying who held the event loop when that is why."""
        error = f"no reply within {turn_timeout:g}s (turn timeout)"
        if clock.longest_s >= turn_timeout:
            return (
                f"{error}: its async respond() blocked the event loop for {clock.longest_s:.1f}s "
                "(blocking code such as time.sleep or a sync HTTP client in a coroutine; make "
                "respond() a plain def to run it in a thread, or await the call)"
            )
        return error + self.meanwhile(info, t0, "this turn's")

    def meanwhile(self, info: SessionInfo, t0: float, whose: str) -> str:
        """"; meanwhile the event loop was blocked ... by the agent of conversation X" when
        another conversation's agent held the loop since ``t0`` (else ""): a timeout it caused
        is said, never blamed on this conversation."""
        now = time.monotonic()
        others = [
            st for st in self._stalls if st.end > t0 and st.start < now and st.session_id != info.session_id
        ]
        if not others:
            return ""
        worst = max(others, key=lambda st: st.end - st.start)
        return (
            f"; meanwhile the event loop was blocked for {worst.end - worst.start:.1f}s by "
            f"the agent of conversation {worst.session_id} (turn {worst.turn}), so {whose} "
            "time is not all its own"
        )


# -- outcome -------------------------------------------------------------------------------


def derive_outcome(t: Transcript) -> Outcome:
    """How the conversation ended for the customer, from its stop reason and turns."""
    if t.error is not None:
        return Outcome.error
    if t.handoff is not None or t.stop_reason == StopReason.transferred:
        return Outcome.escalated
    if t.stop_reason in (StopReason.goal_met, StopReason.script_done, StopReason.agent_ended):
        return Outcome.resolved
    if t.stop_reason in (
        StopReason.gave_up, StopReason.out_of_scope, StopReason.missing_info, StopReason.interrupted
    ):
        return Outcome.abandoned
    if t.stop_reason == StopReason.max_turns:
        return Outcome.max_turns
    if t.stop_reason in (StopReason.agent_error, StopReason.timeout, StopReason.simulator_error):
        return Outcome.error
    return Outcome.resolved


# -- the loop ------------------------------------------------------------------------------


async def play(
    scenario: Scenario,
    user: Simulator | Callable[[], Simulator],
    new_session: Callable[[SessionInfo], Any],
    info: SessionInfo,
    limits: Limits,
    *,
    observers: Sequence[Observer] = (),
    llm: ModelClients | None = None,
    go_on: Callable[[], bool] | None = None,
    fetch_end_state: bool = True,
    stalls: LoopStalls | None = None,
) -> Transcript:
    """Play one conversation of ``scenario`` and return its transcript.

    ``user`` is the simulated user, or a zero-argument callable making it (a failure to make
    it is recorded as ``simulator_error``). ``new_session(info)`` (sync or async, e.g.
    ``AgentProvider.new_session``) opens the agent session for ``info``. ``go_on``, asked
    before each agent turn, ends the conversation with ``stop_reason=interrupted`` when it
    says no (a load test's deadline and request cap). ``fetch_end_state=False`` skips
    ``end_state()`` (a load test does not judge). ``stalls`` is shared by the conversations
    of one run, to explain timeouts caused by another conversation's agent.
    """
    game = _Conversation(scenario, user, new_session, info, limits, observers, llm, go_on, stalls or LoopStalls())
    return await game.run(fetch_end_state)


class _Conversation:
    """The state of one :func:`play` call."""

    def __init__(
        self,
        scenario: Scenario,
        user: Simulator | Callable[[], Simulator],
        new_session: Callable[[SessionInfo], Any],
        info: SessionInfo,
        limits: Limits,
        observers: Sequence[Observer],
        llm: ModelClients | None,
        go_on: Callable[[], bool] | None,
        stalls: LoopStalls,
    ) -> None:
        self.scenario = scenario
        self.user = user
        self.new_session = new_session
        self.info = info
        self.limits = limits
        self.observers = observers
        self.llm = llm
        self.go_on = go_on
        self.stalls = stalls
        self.session: Any = None  # the agent session, once opened
        self._deadline: asyncio.Timeout | None = None  # the conversation timeout
        self.t = Transcript(
            scenario_id=scenario.id,
            trial=info.trial,
            seed=info.seed,
            variant=info.variant,
            channel=info.channel,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    async def run(self, fetch_end_state: bool) -> Transcript:
        t, limits = self.t, self.limits
        t0 = time.monotonic()
        for ob in self.observers:
            ob.on_conversation_start(ConversationStart(self.info, self.scenario, t0))
        try:
            try:
                async with asyncio.timeout(limits.conversation_timeout_s) as self._deadline:
                    await self._loop()
            except TimeoutError:
                t.error = f"conversation took longer than {limits.conversation_timeout_s:g}s (conversation timeout)"
                t.stop_reason = StopReason.timeout
            if self.session is not None and fetch_end_state:
                await self._fetch_end_state()
        except asyncio.CancelledError:
            t.stop_reason = StopReason.interrupted
            self._end(t0)
            await self._close(min(limits.turn_timeout_s, _CLOSE_ON_CANCEL_S))
            raise
        self._end(t0)
        await self._close(limits.turn_timeout_s)
        return t

    def _end(self, t0: float) -> None:
        t = self.t
        now = time.monotonic()
        t.duration_ms = round((now - t0) * 1000, 3)
        t.outcome = derive_outcome(t)
        for ob in self.observers:
            ob.on_conversation_end(ConversationEnd(self.info, t, now))

    def _fail(self, reason: StopReason, error: str) -> None:
        self.t.stop_reason = reason
        self.t.error = one_line(error)

    async def _loop(self) -> None:
        """User turn, agent turn, until someone stops."""
        scenario, info, limits, t = self.scenario, self.info, self.limits, self.t
        turn_timeout = limits.turn_timeout_s
        try:
            simulator = _make_user(self.user)
        except Exception as exc:  # a simulator that cannot play this scenario: recorded
            return self._fail(StopReason.simulator_error, f"simulator could not start: {_exc_line(exc)}")
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(turn_timeout):
                agent = await call_maybe_async(self.new_session, info)
        except TimeoutError:
            return self._fail(
                StopReason.timeout,
                f"creating the agent took longer than {turn_timeout:g}s"
                + self.stalls.meanwhile(info, t0, "its"),
            )
        except Exception as exc:
            return self._fail(StopReason.agent_error, f"creating the agent failed: {_exc_line(exc)}")
        self.session = agent
        if not callable(getattr(agent, "respond", None)):
            return self._fail(
                StopReason.agent_error,
                f"the agent factory returned {type(agent).__name__}, which has no respond()",
            )
        reset = getattr(agent, "reset", None)
        if callable(reset):  # e.g. a factory handing out pooled agents: start each one clean
            t0 = time.monotonic()
            try:
                async with asyncio.timeout(turn_timeout):
                    await call_maybe_async(reset)
            except TimeoutError:
                return self._fail(
                    StopReason.timeout,
                    f"reset() took longer than {turn_timeout:g}s" + self.stalls.meanwhile(info, t0, "its"),
                )
            except Exception as exc:
                return self._fail(StopReason.agent_error, f"reset() failed: {_exc_line(exc)}")
        accepts_handoff = scenario.user.persona is not None and scenario.user.persona.goal.accept_handoff
        extra = self._simulator_extra(agent)
        rng = random.Random(info.seed)
        n = 0
        while True:
            sctx = SimulatorContext(
                scenario=scenario,
                transcript=t,
                turn=n + 1,
                rng=rng,
                max_turns=limits.max_turns,
                llm=self.llm,
                extra=extra,
            )
            try:
                nxt = await call_maybe_async(simulator.next_turn, sctx, thread=False)
            except Exception as exc:
                return self._fail(StopReason.simulator_error, f"simulator failed: {_exc_line(exc)}")
            if isinstance(nxt, Stop):
                t.stop_reason = nxt.reason
                return None
            if not isinstance(nxt, UserMessage):
                return self._fail(
                    StopReason.simulator_error,
                    f"simulator returned {type(nxt).__name__}, not UserMessage or Stop",
                )
            if n >= limits.max_turns:
                t.stop_reason = StopReason.max_turns
                return None
            if self.go_on is not None and not self.go_on():
                t.stop_reason = StopReason.interrupted
                return None
            n += 1
            history = list(t.turns)
            content, replaced = clean_text(str(nxt.content))
            user_turn = UserTurn(content=content, act=nxt.act)
            if replaced:
                user_turn.notes.append(replaced_note(replaced, "the simulated user's message"))
            t.turns.append(user_turn)
            turn, reply_ended = await self._agent_turn(agent, content, n, history)
            if turn.error_kind is not None:
                reason = StopReason.timeout if turn.error_kind is TurnError.timeout else StopReason.agent_error
                return self._fail(reason, f"turn {n}: {turn.error}")
            if reply_ended:
                t.stop_reason = StopReason.agent_ended
                return None
            if turn.handoff is not None and accepts_handoff:
                t.stop_reason = StopReason.transferred
                return None

    async def _agent_turn(self, agent: Any, message: str, n: int, history: list[Any]) -> tuple[AgentTurn, bool]:
        """Ask the agent for turn ``n``; the turn is appended to the transcript and reported."""
        info, turn_timeout = self.info, self.limits.turn_timeout_s
        max_reply = self.limits.max_reply_bytes
        first: list[float] = []

        def on_first_token() -> None:
            if not first:
                first.append(time.monotonic())

        ctx = TurnContext(
            session=info,
            message=message,
            turn=n,
            history=history,
            max_reply_bytes=max_reply,
            _on_first_token=on_first_token,
        )
        clock = LoopClock()
        t0 = time.monotonic()
        for ob in self.observers:
            ob.on_turn_start(TurnStart(info, n, message, t0))

        def done(turn: AgentTurn, ended: bool = False) -> tuple[AgentTurn, bool]:
            self.t.turns.append(turn)
            now = time.monotonic()
            for ob in self.observers:
                ob.on_turn(TurnEnd(info, n, turn, t0, now))
            return turn, ended

        def failed(kind: TurnError, error: str) -> tuple[AgentTurn, bool]:
            return done(AgentTurn(error=error, error_kind=kind, latency_ms=round((time.monotonic() - t0) * 1000, 3)))

        try:
            # asyncio.timeout, not wait_for: in 3.11 wait_for runs the reply in a task of its
            # own (a task per turn) and can swallow a cancel that arrives with the reply.
            async with asyncio.timeout(turn_timeout):
                reply = await respond(agent, ctx, clock)
        except TimeoutError:
            return failed(TurnError.timeout, self.stalls.timeout_error(info, n, turn_timeout, clock, t0))
        except ReplyTooLarge as exc:
            return failed(TurnError.too_large, safe_str(exc))
        except AgentJunk as exc:
            return failed(TurnError.junk, f"junk reply: {one_line(safe_str(exc))}")
        except Exception as exc:  # the agent raised: its failure, recorded on the turn
            return failed(TurnError.raised, f"agent raised {_exc_line(exc)}")
        except asyncio.CancelledError:  # the conversation timeout, or a stop of the run
            expired = self._deadline is not None and self._deadline.expired()
            failed(TurnError.cancelled, "cancelled: conversation timeout" if expired else "cancelled")
            raise
        finally:
            self.stalls.note(info, n, clock)
        latency = (time.monotonic() - t0) * 1000
        if latency > turn_timeout * 1000:
            # The timer could not fire: the agent's coroutine kept the event loop to itself
            # (e.g. time.sleep in async code). The clock, not the timer, decides.
            return failed(TurnError.timeout, self.stalls.timeout_error(info, n, turn_timeout, clock, t0))
        try:
            reply, replaced = vet_reply(reply, max_reply)
        except ReplyTooLarge as exc:
            return failed(TurnError.too_large, str(exc))
        turn = AgentTurn(
            content=reply.content,
            tool_calls=reply.tool_calls,
            latency_ms=round(latency, 3),
            ttft_ms=round((first[0] - t0) * 1000, 3) if first else None,
            usage=reply.usage,
            handoff=reply.handoff,
            metadata=reply.metadata,
        )
        if replaced:
            turn.notes.append(replaced_note(replaced, "the reply"))
        return done(turn, reply.end_conversation)

    def _simulator_extra(self, agent: Any) -> dict[str, Any]:
        """``extra`` for the simulator: ``end_state`` (an async callable fetching the agent's
        state now) when the persona's ``done_when`` has a ``state`` judge; ordinary runs
        pay nothing."""
        scenario, turn_timeout = self.scenario, self.limits.turn_timeout_s
        persona = scenario.user.persona
        if persona is None or not any(spec.name == "state" for spec in persona.goal.done_when):
            return {}

        async def fetch_state() -> dict[str, Any] | None:
            # A state the agent cannot give now reads as "goal not met yet"; a real failure
            # of end_state() is recorded when the conversation ends (_fetch_end_state).
            try:
                async with asyncio.timeout(turn_timeout):
                    return await end_state(agent)
            except Exception as exc:
                log.debug("end_state() during %s failed: %s", scenario.id, _exc_line(exc))
                return None

        return {"end_state": fetch_state}

    async def _fetch_end_state(self) -> None:
        t, turn_timeout = self.t, self.limits.turn_timeout_s
        try:
            async with asyncio.timeout(turn_timeout):
                t.end_state = await end_state(self.session)
        except TimeoutError:
            if t.error is None:
                t.error = f"end_state() gave no answer within {turn_timeout:g}s"
                t.stop_reason = StopReason.timeout
        except Exception as exc:  # the agent's failure, recorded
            if t.error is None:
                t.error = f"end_state() failed: {_exc_line(exc)}"
                t.stop_reason = StopReason.agent_error

    async def _close(self, timeout_s: float) -> None:
        if self.session is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await close(self.session)
        except Exception as exc:  # closing is cleanup; the conversation is already complete
            log.warning("closing agent session for %s failed: %s", self.t.scenario_id, _exc_line(exc))


def _make_user(user: Simulator | Callable[[], Simulator]) -> Simulator:
    if isinstance(user, Simulator):  # it has next_turn
        return user
    return user()


def _exc_line(exc: BaseException) -> str:
    # An agent's SystemExit & co. arrive wrapped (AgentCrash): name what it really raised.
    return exc_line(exc.original if isinstance(exc, AgentCrash) else exc)


def replaced_note(count: int, what: str) -> str:
    """The note on a turn whose text had lone surrogates replaced."""
    return (
        f"{count} lone surrogate{'s' if count != 1 else ''} (text that is not valid Unicode) in "
        f"{what} replaced by U+FFFD"
    )
