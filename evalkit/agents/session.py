"""Calling an agent object safely: sync or async methods, replies normalised, junk detected.

Every adapter (python, http, openai-chat) hands the runner an object with ``respond``;
these helpers are the one place that knows how to call it. A sync method runs in a
daemon thread so a hung agent can be abandoned on timeout without blocking the event
loop or the interpreter's exit.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from evalkit.agents.base import AgentReply, TurnContext

__all__ = ["AgentJunk", "normalize_reply", "call_maybe_async", "respond", "end_state", "close"]


_STATE: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])


class AgentJunk(Exception):
    """The agent answered something that is not a reply (recorded as an agent error)."""


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
    shown = repr(raw)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise AgentJunk(f"respond() returned {type(raw).__name__} {shown}, not a str, mapping or AgentReply")


class _DaemonPool:
    """Daemon worker threads, reused between calls and grown on demand.

    Unlike ``ThreadPoolExecutor`` (joined at interpreter exit, fixed size), a call that
    never returns only costs one parked daemon thread: it cannot block other
    conversations waiting for a free worker, nor the process from exiting.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_threads)

    def _forget_threads(self) -> None:
        """A forked child has none of the parent's threads (nor a usable lock): without this
        its jobs would wait for idle workers that only exist in the parent."""
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # reserve an idle worker for this job
        self._queue.put(job)
        if spawn:
            threading.Thread(target=self._work, name="evalkit-agent", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._queue.get()()
            with self._lock:
                self._idle += 1


_POOL = _DaemonPool()


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
            ok, value = False, exc
        else:
            ok, value = True, result
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    _POOL.submit(work)
    return await fut


async def call_maybe_async(fn: Callable[..., Any], *args: Any, thread: bool = True) -> Any:
    """Call a sync-or-async callable; sync ones run in a worker thread when ``thread``."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await _in_thread(fn, *args) if thread else fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def respond(agent: Any, ctx: TurnContext) -> AgentReply:
    """Ask ``agent`` for its reply to ``ctx`` and normalise it (raises on agent failure)."""
    method = getattr(agent, "respond", None)
    if not callable(method):
        raise AgentJunk(f"agent object {type(agent).__name__} has no respond(ctx) method")
    return normalize_reply(await call_maybe_async(method, ctx))


async def end_state(agent: Any) -> dict[str, JsonValue] | None:
    """The agent's end state, when it offers one (raises on agent failure)."""
    method = getattr(agent, "end_state", None)
    if not callable(method):
        return None
    state = await call_maybe_async(method)
    if state is None:
        return None
    if hasattr(state, "model_dump"):
        state = state.model_dump(mode="json")
    if not isinstance(state, Mapping):
        raise AgentJunk(f"end_state() returned {type(state).__name__}, not a mapping")
    try:
        return _STATE.validate_python(dict(state))
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
