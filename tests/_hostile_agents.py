"""Hostile Python agents for tests/test_robust_hostile.py (loaded by spec, like a user's)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from evalkit.agents.base import SessionInfo, TurnContext


class _Boom(BaseException):
    """Not an Exception: the kind of thing only careless or hostile code raises."""


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def _raise(what: str) -> Any:
    if what == "system_exit":
        raise SystemExit(0)
    if what == "base_exception":
        raise _Boom("boom")
    if what == "generator_exit":
        raise GeneratorExit
    if what == "keyboard_interrupt":
        raise KeyboardInterrupt
    if what == "bad_str":
        raise _BadStr()
    if what == "cancelled":
        raise asyncio.CancelledError
    return None


class SyncRaiser:
    """Raises ``what`` from a plain ``def respond`` (run in a worker thread)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def respond(self, ctx: TurnContext) -> str:
        _raise(self.what)
        return "fine"


class AsyncRaiser:
    """Raises ``what`` from an ``async def respond`` (run on the event loop)."""

    def __init__(self, what: str) -> None:
        self.what = what

    async def respond(self, ctx: TurnContext) -> str:
        await asyncio.sleep(0)
        _raise(self.what)
        return "fine"


def raiser(session: SessionInfo, mode: str = "sync") -> Any:
    """The scenario id says what to raise (``system_exit-1`` -> SystemExit); ``ok-*`` is polite."""
    what = session.scenario_id.split("-")[0]
    return SyncRaiser(what) if mode == "sync" else AsyncRaiser(what)


class Surrogate:
    """Replies with a lone surrogate (and a valid pair written as two code points)."""

    def respond(self, ctx: TurnContext) -> dict[str, Any]:
        return {
            "content": "bad \ud800 here, fine \ud83d\ude00 there",
            "metadata": {"k\udfff": ["v\ud801"]},
        }

    def end_state(self) -> dict[str, Any]:
        return {"note": "state \udc00"}


class Blocker:
    """An async agent that blocks the event loop with time.sleep (scenario ``block-*``), or
    politely awaits (any other scenario)."""

    def __init__(self, session: SessionInfo, block_s: float = 1.2) -> None:
        self.block = session.scenario_id.startswith("block")
        self.block_s = block_s

    async def respond(self, ctx: TurnContext) -> str:
        if self.block:
            time.sleep(self.block_s)  # the bug under test: blocking code in a coroutine
        else:
            await asyncio.sleep(0.01)
        return f"answer {ctx.turn}"


class Huge:
    """Replies with ``size`` characters of text."""

    def __init__(self, size: int = 6_000_000) -> None:
        self.size = size

    def respond(self, ctx: TurnContext) -> str:
        return "x" * self.size


class Echo:
    """Says back what it was told (a regex judge then runs on the user's text)."""

    def respond(self, ctx: TurnContext) -> str:
        return ctx.message


class ExitingJudge:
    """A judge plugin that calls sys.exit(0) (or raises what ``what`` names)."""

    name = "exiting"

    def __init__(self, what: str = "system_exit") -> None:
        self.what = what

    def evaluate(self, ctx: Any) -> Any:
        _raise(self.what)
        raise AssertionError("unreachable")
