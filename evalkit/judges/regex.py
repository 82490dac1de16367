"""Regular expressions written in scenario files, matched in linear time (RE2).

A pattern in a suite (``said: {regex: ...}``, ``handoff: {reason: "re:..."}``, a tool
argument with ``match: regex``) is matched against what the agent said, and the agent is
the thing under test: with Python's backtracking ``re``, ``(a+)+$`` against a long run of
``a`` takes exponential time, holds the event loop, and no timeout or SIGTERM can stop
it. RE2 (``google-re2``, Google's engine behind Go's ``regexp``) matches in time linear in
the text for every pattern, so no pattern can hang a run.

Decision: RE2 only, no fallback to ``re``. A fallback "with a time limit" would have to
run ``re`` in a worker process (a thread cannot be stopped mid-match, and the GIL is held
while it backtracks), costing a process round trip per match and still letting one bad
pattern spend the whole limit on every turn. The price of RE2: lookarounds (``(?=``,
``(?<=``) and backreferences (``\\1``) do not exist in it, and ``\\w``, ``\\d``, ``\\b`` are
ASCII-only (write ``\\pL`` / ``\\p{N}`` for any letter / digit). A pattern RE2 cannot compile
is a one-line validation error naming the file, line and field; since no path matches
user patterns with ``re``, ``validate`` has no backtracking patterns to warn about.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

from evalkit.core.untrusted import clean_text

__all__ = ["PatternError", "compile_pattern", "check_pattern", "search", "fullmatch"]


class PatternError(ValueError):
    """The pattern is not one RE2 can compile (the message says why, in one line)."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str, ignore_case: bool = False) -> Any:
    """The compiled pattern (cached), or :class:`PatternError`."""
    options = re2.Options()
    options.log_errors = False  # RE2 would also print every bad pattern on stderr
    options.case_sensitive = not ignore_case
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        hint = ""
        if any(op in pattern for op in ("(?=", "(?!", "(?<=", "(?<!", "(?P=")) or "invalid escape sequence: \\" in detail:
            hint = " (lookarounds and backreferences are not supported: patterns run on RE2, in linear time)"
        raise PatternError(f"invalid regex {pattern!r}: {detail}{hint}") from None
    except (TypeError, UnicodeError) as exc:
        raise PatternError(f"invalid regex {pattern!r}: {exc}") from None


def check_pattern(pattern: str) -> str:
    """``pattern`` when RE2 compiles it; raises :class:`PatternError` (a ``ValueError``,
    so pydantic validators report it as a field error)."""
    compile_pattern(pattern)
    return pattern


def search(pattern: str, text: str, ignore_case: bool = False) -> tuple[int, int] | None:
    """The span of the first match of ``pattern`` in ``text``, or None."""
    m = compile_pattern(pattern, ignore_case).search(clean_text(text)[0])
    return None if m is None else m.span()


def fullmatch(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """Whether ``pattern`` matches the whole of ``text``."""
    return compile_pattern(pattern, ignore_case).fullmatch(clean_text(text)[0]) is not None
