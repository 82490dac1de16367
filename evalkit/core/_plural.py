"""Counted nouns for messages people read: ``plural(1, "check")`` -> ``"1 check"``.

English only, and only the regular forms evalkit's messages need; irregular plurals are
passed explicitly (``plural(n, "fix", "fixes")``). Small enough that a library (inflect)
would cost more than it saves.
"""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int | float, noun: str, plural_form: str | None = None, *, thousands: bool = False) -> str:
    """``n`` and the noun in the right number: ``"1 check"``, ``"0 checks"``, ``"2 fixes"``.

    ``thousands`` writes the count with separators (``"1,240 conversations"``).
    """
    many = plural_form if plural_form is not None else noun + "s"
    count = f"{n:,}" if thousands else f"{n}"
    return f"{count} {noun if n == 1 else many}"
