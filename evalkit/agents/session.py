"""Calling an agent object safely: sync or async methods, replies normalised, junk detected.

Every adapter (python, http, openai-chat) hands the runner an object with ``respond``;
these helpers are the one place that knows how to call it. A sync method runs in a
daemon thread so a hung agent can be abandoned on timeout without blocking the event
loop or the interpreter's exit.

Whatever the agent's code raises is the agent's failure, recorded on its conversation:
``SystemExit``, ``GeneratorExit``, ``KeyboardInterrupt`` and any other ``BaseException``
come back as :class:`AgentCrash` (an ``Exception``), so they can never end the run. Two
things are not the agent's and pass through untouched: a cancellation of the running task
(the run's own timeout or interrupt) and a ``KeyboardInterrupt`` that may really be the
user's Ctrl-C (see :func:`evalkit.core.untrusted.stops_the_run`).

An async ``respond`` runs on the run's event loop; :class:`LoopClock` measures how long each
of its steps held the loop, so an agent that blocks it (``time.sleep`` in a coroutine) is
named and timed out by the clock instead of passing as a slow success.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from evalkit.agents.base import AgentReply, TurnContext
from evalkit.core.untrusted import clean_value, exc_line, safe_str, stops_the_run

__all__ = [
    "AgentJunk",
    "AgentThreads",
    "agent_threads",
    "AgentCrash",
    "LoopClock",
    "ReplyTooLarge",
    "normalize_reply",
    "vet_reply",
    "call_maybe_async",
    "respond",
    "end_state",
    "close",
]


_STATE: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])


class AgentJunk(Exception):
    """The agent answered something that is not a reply (recorded as an agent error)."""


class ReplyTooLarge(AgentJunk):
    """The reply is larger than the run's ``max_reply_bytes`` (nothing past it is kept)."""


class AgentCrash(Exception):
    """Agent code raised a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
    ``GeneratorExit``, its own ``KeyboardInterrupt``...): recorded, never propagated."""

    def __init__(self, original: BaseException) -> None:
        self.original = original
        super().__init__(exc_line(original))


def _agent_failure(exc: BaseException, *, in_thread: bool) -> BaseException:
    """What a ``BaseException`` from agent code becomes: itself when it is an ``Exception``
    or really a stop of the run, else :class:`AgentCrash`."""
    if isinstance(exc, Exception) or stops_the_run(exc, in_thread=in_thread):
        return exc
    return AgentCrash(exc)


def normalize_reply(raw: Any) -> AgentReply:
    """An :class:`AgentReply` from what ``respond`` returned: a reply, a mapping or a str."""
    if isinstance(raw, AgentReply):
        return raw
    if isinstance(raw, str):
        return AgentReply(content=raw)
    if isinstance(raw, Mapping):
        try:
            return AgentReply.model_validate(dict(raw))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"]) or "reply"
            raise AgentJunk(f"reply field '{loc}': {err['msg']}") from None
    if isinstance(raw, BaseModel):
        # Another pydantic model with reply-like fields (e.g. an SDK type).
        return normalize_reply(raw.model_dump(mode="json"))
    try:
        shown = safe_str(repr(raw))
    except Exception:  # noqa: BLE001 - a hostile __repr__
        shown = "<repr() failed>"
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise AgentJunk(f"respond() returned {type(raw).__name__} {shown}, not a str, mapping or AgentReply")


class AgentThreads:
    """Daemon worker threads for one run's sync agent calls, reused between calls and grown on
    demand; :meth:`close` lets the idle ones go when the run ends.

    Unlike ``ThreadPoolExecutor`` (joined at interpreter exit, fixed size), a call that
    never returns only costs one parked daemon thread: it cannot block other
    conversations waiting for a free worker, nor the process from exiting. One pool per run
    (see :func:`agent_threads`): a thread-local an agent set in one run is never seen by the
    next run in the same process.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._closed = False
        self._pid = os.getpid()

    def submit(self, job: Callable[[], None]) -> None:
        if self._pid != os.getpid():
            # A forked child has none of the parent's threads (nor a usable lock): its jobs
            # would wait for idle workers that only exist in the parent.
            self._reset()
        with self._lock:
            if self._closed:
                spawn = True
            else:
                spawn = self._idle == 0
                if not spawn:
                    self._idle -= 1  # reserve an idle worker for this job
        if spawn:
            threading.Thread(target=self._work, args=(job,), name="evalkit-agent", daemon=True).start()
        else:
            self._queue.put(job)

    def _work(self, job: Callable[[], None] | None) -> None:
        while job is not None:
            job()
            with self._lock:
                if self._closed:
                    return
                self._idle += 1
            job = self._queue.get()

    def close(self) -> None:
        """Idle workers end; busy ones end after their call (a hung call keeps its thread)."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, 0
        for _ in range(idle):
            self._queue.put(None)


_THREADS: contextvars.ContextVar[AgentThreads | None] = contextvars.ContextVar("evalkit_agent_threads",
                                                                              default=None)


@contextlib.contextmanager
def agent_threads() -> Iterator[AgentThreads]:
    """The worker threads of one run: sync agent calls made in this context (and in the tasks
    it starts) share them; they are let go on exit. Outside any run, each sync call gets a
    thread of its own."""
    pool = AgentThreads()
    token = _THREADS.set(pool)
    try:
        yield pool
    finally:
        _THREADS.reset(token)
        pool.close()


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(ok: bool, value: Any) -> None:
        if fut.done():  # abandoned after a timeout or cancellation
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def work() -> None:
        try:
            result = ctx.run(fn, *args)
        except BaseException as exc:  # handed back to the loop, never lost
            # Never a stop of the run: signals reach only the main thread. A SystemExit
            # handed to the loop as is would end asyncio.run() (and the whole run).
            ok, value = False, _agent_failure(exc, in_thread=True)
        else:
            ok, value = True, result
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    pool = _THREADS.get()
    if pool is not None:
        pool.submit(work)
    else:
        threading.Thread(target=work, name="evalkit-agent", daemon=True).start()
    return await fut


class LoopClock:
    """How long the agent's own code held the event loop in one call: the longest single
    step of its coroutine (the time between two of its ``await`` points)."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self.longest_at = 0.0  # time.monotonic() when that step began

    def watch(self, awaitable: Any) -> Any:
        """``awaitable``, driven step by step with each step timed."""
        return _Timed(awaitable, self)


class _Timed:
    """Delegates to an awaitable like ``await`` does, timing each step it runs."""

    def __init__(self, awaitable: Any, clock: LoopClock) -> None:
        self._awaitable = awaitable
        self._clock = clock

    def __await__(self) -> Generator[Any, Any, Any]:
        gen = self._awaitable.__await__()
        send: Any = None
        throw: BaseException | None = None
        while True:
            t0 = time.monotonic()
            try:
                yielded = gen.throw(throw) if throw is not None else gen.send(send)
            except StopIteration as stop:
                return stop.value
            finally:
                took = time.monotonic() - t0
                if took > self._clock.longest_s:
                    self._clock.longest_s, self._clock.longest_at = took, t0
            try:
                send, throw = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001 - handed to the agent's coroutine, as await does
                send, throw = None, exc


async def call_maybe_async(
    fn: Callable[..., Any], *args: Any, thread: bool = True, clock: LoopClock | None = None
) -> Any:
    """Call a sync-or-async callable of an agent; sync ones run in a worker thread when
    ``thread``. Any ``BaseException`` of the agent's comes back as :class:`AgentCrash`;
    ``clock`` (for coroutines) times how long the agent held the event loop."""
    try:
        if inspect.iscoroutinefunction(fn):
            coro = fn(*args)
            return await (clock.watch(coro) if clock is not None else coro)
        result = await _in_thread(fn, *args) if thread else fn(*args)
        if inspect.isawaitable(result):
            result = await (clock.watch(result) if clock is not None else result)
        return result
    except Exception:
        raise
    except BaseException as exc:
        failure = _agent_failure(exc, in_thread=False)
        if failure is exc:
            raise
        raise failure from None


async def respond(agent: Any, ctx: TurnContext, clock: LoopClock | None = None) -> AgentReply:
    """Ask ``agent`` for its reply to ``ctx`` and normalise it (raises on agent failure)."""
    method = getattr(agent, "respond", None)
    if not callable(method):
        raise AgentJunk(f"agent object {type(agent).__name__} has no respond(ctx) method")
    return normalize_reply(await call_maybe_async(method, ctx, clock=clock))


def _text_size(value: Any, limit: int) -> int:
    """Characters in the strings of JSON-like ``value``; stops counting past ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            total += 8  # a number, bool or null: a few characters of JSON
    return total


def vet_reply(reply: AgentReply, max_chars: int | None = None) -> tuple[AgentReply, int]:
    """``reply`` made safe to keep: refused (:class:`ReplyTooLarge`) when its text exceeds
    ``max_chars``, and with lone surrogates replaced by U+FFFD; also returns how many were."""
    if max_chars is not None:
        # The content first: a huge reply is refused without walking anything else.
        size = len(reply.content)
        if size <= max_chars:
            rest = [
                [c.model_dump(mode="python") for c in reply.tool_calls],
                reply.metadata,
                reply.handoff.model_dump(mode="python") if reply.handoff else None,
            ]
            size += _text_size(rest, max_chars - size)
        if size > max_chars:
            raise ReplyTooLarge(
                f"reply is larger than the limit of {max_chars} characters (max_reply_bytes); "
                "it was not kept"
            )
    data = reply.model_dump(mode="python", exclude_defaults=True)
    cleaned, replaced = clean_value(data)
    if not replaced:
        return reply, 0
    return AgentReply.model_validate(cleaned), replaced


async def end_state(agent: Any) -> dict[str, JsonValue] | None:
    """The agent's end state, when it offers one (raises on agent failure)."""
    method = getattr(agent, "end_state", None)
    if not callable(method):
        return None
    state = await call_maybe_async(method)
    if state is None:
        return None
    if hasattr(state, "model_dump"):
        state = state.model_dump(mode="python")
    if not isinstance(state, Mapping):
        raise AgentJunk(f"end_state() returned {type(state).__name__}, not a mapping")
    try:
        # Lone surrogates become U+FFFD: the state is stored as JSON (UTF-8).
        return _STATE.validate_python(clean_value(dict(state))[0])
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise AgentJunk(f"end_state() is not JSON data at '{loc}': {err['msg']}") from None


async def close(agent: Any) -> None:
    """Release an agent session: ``aclose()`` or ``close()`` when it has one."""
    for name in ("aclose", "close"):
        method = getattr(agent, name, None)
        if callable(method):
            await call_maybe_async(method)
            return
