"""Argument matching: how an expected tool argument (or state value) is compared to the actual one.

Modes (per argument, named in a judge's ``match``):

- ``exact``: JSON equality. ``1 == 1.0`` but ``true != 1`` and ``"1" != 1``.
- ``subset``: the expected value is contained in the actual one: a mapping's keys/values
  recursively, every element of an expected list in some element of the actual list, a
  string as a substring; other scalars by equality.
- ``regex``: the expected value is a regular expression that must match the *whole*
  actual value (RE2 syntax, matched in linear time) rendered as text (strings as-is, anything else as JSON).
- ``fuzzy``: tolerant of case, whitespace, punctuation and number format:
  ``"ORD-10001" ~ "ord 10001"``, ``25 ~ "25.00" ~ "$25"``; lists compare
  order-insensitively, mappings key by key.
- ``ignore``: not checked at all (the argument may even be missing).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from evalkit.judges.regex import fullmatch

__all__ = [
    "MatchMode",
    "MATCH_MODES",
    "values_match",
    "fuzzy_equal",
    "assignment",
    "max_matching",
    "json_equal",
    "loose_equal",
    "subset_match",
    "regex_match",
    "normalize_text",
    "parse_number",
    "argument_mismatches",
    "fmt_value",
    "fmt_call",
    "count_words",
]

MatchMode = Literal["exact", "subset", "regex", "fuzzy", "ignore"]
MATCH_MODES: tuple[str, ...] = ("exact", "subset", "regex", "fuzzy", "ignore")

_MISSING = object()

# Currency symbols and codes stripped before reading a string as a number ("$25", "25 EUR").
_NUMBER_RE = re.compile(
    r"^\s*(?:[$€£¥]|usd|eur|gbp)?\s*([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+)\s*(?:[$€£¥]|usd|eur|gbp)?\s*$",
    re.IGNORECASE,
)
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_number(value: Any) -> float | None:
    """A number, or a string that reads as one (``"$1,250.00"`` -> 1250.0); else None."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        m = _NUMBER_RE.match(value)
        if m:
            return float(m.group(1).replace(",", ""))
    return None


def normalize_text(value: str) -> str:
    """Lower case with every run of whitespace and punctuation removed (``"ORD-10001"`` -> ``"ord10001"``)."""
    return _NON_ALNUM.sub("", value.casefold())


def json_equal(expected: Any, actual: Any) -> bool:
    """JSON equality: like ``==`` but a bool never equals a number."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_number(expected) and _is_number(actual):
        return math.isclose(float(expected), float(actual), rel_tol=0, abs_tol=1e-9)
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return set(expected) == set(actual) and all(json_equal(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            json_equal(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if type(expected) is not type(actual):
        return False
    return bool(expected == actual)


def loose_equal(expected: Any, actual: Any) -> bool:
    """Equality with number tolerance: ``25 == 25.0 == "25.00"``; everything else exact."""
    e_num, a_num = parse_number(expected), parse_number(actual)
    if e_num is not None and a_num is not None and (_is_number(expected) or _is_number(actual)):
        return math.isclose(e_num, a_num, rel_tol=0, abs_tol=1e-6)
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return set(expected) == set(actual) and all(loose_equal(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            loose_equal(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return json_equal(expected, actual)


def assignment(expected: list[Any], actual: list[Any], pred: Callable[[Any, Any], bool]) -> dict[int, int]:
    """A maximum matching of expected items to distinct actual items (augmenting paths; for
    small lists): ``{actual index: expected index}``."""
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j, a in enumerate(actual):
            if j in seen or not pred(expected[i], a):
                continue
            seen.add(j)
            if j not in owner or place(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(expected)):
        place(i, set())
    return owner


def max_matching(expected: list[Any], actual: list[Any], pred: Callable[[Any, Any], bool]) -> int:
    """Size of the largest matching of expected items to distinct actual items (small lists)."""
    return len(assignment(expected, actual, pred))


def fuzzy_equal(expected: Any, actual: Any) -> bool:
    """Case-, whitespace-, punctuation- and number-format-tolerant equality."""
    if expected is None or actual is None:
        return expected is None and actual is None
    e_num, a_num = parse_number(expected), parse_number(actual)
    if e_num is not None and a_num is not None:
        return math.isclose(e_num, a_num, rel_tol=0, abs_tol=1e-6)
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        e_keys = {normalize_text(str(k)): v for k, v in expected.items()}
        a_keys = {normalize_text(str(k)): v for k, v in actual.items()}
        return set(e_keys) == set(a_keys) and all(fuzzy_equal(v, a_keys[k]) for k, v in e_keys.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and max_matching(expected, actual, fuzzy_equal) == len(expected)
    if isinstance(expected, Mapping | list) or isinstance(actual, Mapping | list):
        return False
    return normalize_text(str(expected)) == normalize_text(str(actual))


def subset_match(expected: Any, actual: Any, *, loose_numbers: bool = False) -> bool:
    """The expected value is contained in the actual one (see module docstring)."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and subset_match(v, actual[k], loose_numbers=loose_numbers)
            for k, v in expected.items()
        )
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        return max_matching(
            expected, actual, lambda e, a: subset_match(e, a, loose_numbers=loose_numbers)
        ) == len(expected)
    if isinstance(expected, str) and isinstance(actual, str) and not loose_numbers:
        return expected in actual
    return loose_equal(expected, actual) if loose_numbers else json_equal(expected, actual)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def regex_match(pattern: Any, actual: Any) -> bool:
    """The pattern matches the whole actual value rendered as text (RE2: linear time)."""
    return fullmatch(str(pattern), _as_text(actual))


_MODES: dict[str, Callable[[Any, Any], bool]] = {
    "exact": json_equal,
    "subset": subset_match,
    "regex": regex_match,
    "fuzzy": fuzzy_equal,
    "ignore": lambda _e, _a: True,
}


def values_match(expected: Any, actual: Any, mode: str) -> bool:
    """Compare one expected value with the actual one under ``mode``."""
    return _MODES[mode](expected, actual)


def argument_mismatches(
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    match: Mapping[str, str],
    default_match: str = "exact",
) -> list[str]:
    """Readable differences between expected and actual arguments; empty when they match.

    Only arguments named in ``expected`` are checked: e.g. ``["order_id: 'ORD-1001' != 'ORD-10001'"]``.
    """
    problems: list[str] = []
    for key, want in expected.items():
        mode = match.get(key, default_match)
        if mode == "ignore":
            continue
        got = actual.get(key, _MISSING)
        if got is _MISSING:
            problems.append(f"{key}: missing (expected {fmt_value(want)})")
        elif not values_match(want, got, mode):
            how = {
                "exact": "!=",
                "fuzzy": "!~",
                "subset": "does not contain",
                "regex": "does not match",
            }[mode]
            problems.append(f"{key}: {fmt_value(got)} {how} {fmt_value(want)}")
    return problems


def fmt_value(value: Any, limit: int = 80) -> str:
    """A short readable rendering: strings in single quotes, everything else as JSON."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_call(name: str, arguments: Mapping[str, Any] | None = None) -> str:
    """``check_order_status(order_id='ORD-10001')``."""
    args = ", ".join(f"{k}={fmt_value(v)}" for k, v in (arguments or {}).items())
    return f"{name}({args})"


def count_words(n: int) -> str:
    """``never`` / ``once`` / ``twice`` / ``3 times``."""
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n} times")
