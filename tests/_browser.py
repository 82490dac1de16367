"""Headless Chromium for the browser tests, driven by Playwright (tests only, not shipped).

Playwright drives Debian's Chromium (``/usr/bin/chromium``, or ``$EVALKIT_CHROMIUM`` on a
machine that keeps it elsewhere) through ``executable_path``: Playwright's own browser
download is never used (``playwright install`` is not needed, and the test machines have no
network), and the launch flags keep Chromium offline and quiet.

One browser serves the whole session (``conftest.py``: fixtures ``browser``, ``page`` and
``console``). Playwright's sync API marks its event loop as running in the thread that started
it for as long as it lives, so ``asyncio.run`` cannot run in that thread meanwhile. Hence
``conftest.py`` runs the tests marked ``browser`` after all the others, and a browser test
that needs asyncio code (a real run, say) runs it with :func:`off_loop`.

Give ``page.wait_for_function`` a function (``"() => ..."``), never a bare expression: Playwright
polls an expression with ``eval`` inside the page, which the CSP of evalkit's pages forbids.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["CHROMIUM", "LAUNCH_ARGS", "ConsoleLog", "chromium_path", "missing_reason", "off_loop", "rect_gap"]

CHROMIUM = "/usr/bin/chromium"

# Headless, no sandbox (containers), and nothing that reaches the network on its own.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

T = TypeVar("T")


def chromium_path() -> str | None:
    """The Chromium executable to drive: ``$EVALKIT_CHROMIUM``, ``/usr/bin/chromium``, or None."""
    env = os.environ.get("EVALKIT_CHROMIUM")
    if env and Path(env).exists():
        return env
    return CHROMIUM if Path(CHROMIUM).exists() else None


def missing_reason() -> str | None:
    """Why the browser tests cannot run here (the skip reason), or None when they can."""
    if chromium_path() is None:
        return f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium) or $EVALKIT_CHROMIUM"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs Playwright for Python (pip install -e '.[dev]')"
    return None


def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in a thread of its own and return its result: for asyncio code (``asyncio.run``)
    inside a browser test, where Playwright's loop already counts as running in this thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


@dataclass
class ConsoleLog:
    """What a page said on its console: ``errors`` (console.error, uncaught exceptions, CSP
    violations, failed loads) and every message as ``"type: text"``."""

    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @classmethod
    def watch(cls, page: Any) -> ConsoleLog:
        """Start collecting the console of a Playwright ``Page``."""
        log = cls()
        page.on("console", log._on_console)
        page.on("pageerror", lambda exc: log.errors.append(f"uncaught: {exc}"))
        return log

    def _on_console(self, msg: Any) -> None:
        self.messages.append(f"{msg.type}: {msg.text}")
        if msg.type in ("error", "assert"):
            self.errors.append(msg.text)

    def settle(self, page: Any, ms: int = 50) -> ConsoleLog:
        """Let timers that are due fire and their messages arrive; returns self (to assert on)."""
        page.evaluate(f"new Promise(r => setTimeout(r, {int(ms)}))")
        return self


def rect_gap(a: dict[str, float], b: dict[str, float]) -> float:
    """The distance in CSS pixels between two boxes ``{x, y, width, height}`` (negative when
    they overlap: minus the smaller overlap across both axes)."""
    dx = max(b["x"] - (a["x"] + a["width"]), a["x"] - (b["x"] + b["width"]))
    dy = max(b["y"] - (a["y"] + a["height"]), a["y"] - (b["y"] + b["height"]))
    if dx < 0 and dy < 0:
        return max(dx, dy)
    return math.hypot(max(dx, 0.0), max(dy, 0.0))
