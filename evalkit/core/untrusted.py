"""Text and values from outside evalkit (agents, models, plugins), made safe to keep.

A Python ``str`` may hold lone surrogates (``"\\ud800"``): JSON's ``\\ud800`` escape and any
Python agent can produce one, and UTF-8 cannot encode it, so a single such character made
the journal write (and every later ``--resume``) fail. Text is cleaned where it enters the
run: a valid surrogate pair becomes the character it encodes, a lone surrogate becomes
U+FFFD (the replacement character), and the caller records that it happened.

Also here: :func:`exc_line`, a one-line description of an exception that never raises
(an agent's exception may have a ``__str__`` or ``__repr__`` that itself raises).

Written here rather than taken from a library: the standard codecs do the work
(``surrogatepass`` / ``replace``); what is evalkit's own is only where they are applied.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["REPLACEMENT", "clean_text", "clean_value", "exc_line", "one_line", "safe_str", "stops_the_run"]

REPLACEMENT = "\ufffd"


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean_text(text: str) -> tuple[str, int]:
    """``text`` encodable as UTF-8, and how many lone surrogates were replaced by U+FFFD."""
    if not _has_surrogate(text):
        return text, 0
    # UTF-16 round trip: pairs written as two code points join into one character; only
    # the lone halves are left for the decoder to replace.
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined, joined.count(REPLACEMENT) - text.count(REPLACEMENT)


def clean_value(value: Any) -> tuple[Any, int]:
    """A copy of JSON-like ``value`` (str, list, dict, scalars) whose strings, keys
    included, are clean; the same object when nothing needed cleaning."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        fixed: dict[Any, Any] = {}
        total = 0
        for key, item in value.items():
            new_key, n_key = clean_value(key)
            new_item, n_item = clean_value(item)
            fixed[new_key] = new_item
            total += n_key + n_item
        return (fixed, total) if total else (value, 0)
    if isinstance(value, list | tuple):
        items = []
        total = 0
        for item in value:
            new_item, n = clean_value(item)
            items.append(new_item)
            total += n
        return (type(value)(items) if isinstance(value, tuple) else items, total) if total else (value, 0)
    return value, 0


def safe_str(obj: object) -> str:
    """``str(obj)``, clean, or a note that it could not be turned into text."""
    try:
        text = str(obj)
    except BaseException as exc:  # noqa: BLE001 - a hostile __str__ may raise anything
        try:
            name = type(exc).__name__
        except BaseException:  # noqa: BLE001
            name = "an exception"
        return f"<str() raised {name}>"
    if not isinstance(text, str):  # a str subclass whose methods misbehave is still text
        return "<str() returned no text>"
    return clean_text(text)[0]


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def exc_line(exc: BaseException, limit: int = 300) -> str:
    """``TypeName: message`` on one line; never raises, whatever the exception does."""
    name = type(exc).__name__
    message = safe_str(exc)
    return one_line(f"{name}: {message}" if message else name, limit)


def _could_be_ctrl_c() -> bool:
    """Whether a ``KeyboardInterrupt`` seen here may be the user's Ctrl-C.

    Python raises it for SIGINT only in the main thread, and only while the default SIGINT
    handler is installed. During a run the runner (or asyncio) has its own handler, which
    stops the run by cancelling its tasks instead; a ``KeyboardInterrupt`` then can only
    come from code that raised it. Without that certainty it is treated as the user's.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        return signal.getsignal(signal.SIGINT) is signal.default_int_handler
    except (ValueError, OSError):  # pragma: no cover - no signal support on this platform
        return True


def stops_the_run(exc: BaseException, *, in_thread: bool = False) -> bool:
    """Whether ``exc``, raised while calling code under test (an agent, a judge, a
    simulator), is really a stop of the run that must propagate: a cancel of the running
    task (the run's own timeout or interrupt) or a possible Ctrl-C. Anything else it
    raised, ``SystemExit`` and ``GeneratorExit`` included, is that code's failure.
    ``in_thread``: it was raised in a worker thread, where no signal ever arrives."""
    if isinstance(exc, Exception) or in_thread:
        return False
    if isinstance(exc, asyncio.CancelledError):
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            return True
        return task is None or task.cancelling() > 0
    if isinstance(exc, KeyboardInterrupt):
        return _could_be_ctrl_c()
    return False
