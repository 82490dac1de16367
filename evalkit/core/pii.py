"""PII detection and redaction of text: the layer below the ``no_pii_leak`` judge
(:mod:`evalkit.judges.pii`), the redaction of saved conversations (:mod:`evalkit.core.redact`)
and the model response cache (:mod:`evalkit.llm.cache`), which all import it.

Detectors (``PII_KINDS``): ``email``; ``phone`` (as people write them: 8-15 digits after
a ``+`` country code; a 10-digit North American number with a valid area code written
with separators or parentheses, ``(415) 555-0123``, ``1-800-555-0199``; a national number
with a leading trunk ``0`` and separators, ``020 7946 0958``; a bare run of digits, a
tracking number or a number right after "tracking", "order", "invoice"... is not a
phone); ``card`` (13-19 digits passing the Luhn
check); ``ssn`` (US social security number ``123-45-6789`` with valid area/group/serial);
``national_id`` (UK National Insurance number, e.g. ``QQ 12 34 56 C``); ``iban`` (country
code, check digits passing the mod-97 check). Detectors favour precision: an order id
like ``ORD-10001`` or a price is never reported.

Redaction (:func:`redact_text`, :func:`redact_value`) replaces each match by its masked
form (``a***@example.com``, ``************1111``): enough to read a transcript, never the
value. The identifiers evalkit itself uses to find a conversation (scenario id, variant,
judge names, enums, timestamps) are left as they are.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "PII_KINDS",
    "PiiKind",
    "PiiMatch",
    "canonical",
    "detect_pii",
    "luhn_valid",
    "iban_valid",
    "mask",
    "redact_text",
    "redact_value",
]

PiiKind = Literal["email", "phone", "card", "ssn", "national_id", "iban"]
PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "ssn", "national_id", "iban")


@dataclass(frozen=True)
class PiiMatch:
    """One piece of PII found in a text."""

    kind: str
    value: str
    start: int
    end: int

    @property
    def key(self) -> str:
        """Comparable form: lower-case email, or the digits/letters alone."""
        return canonical(self.kind, self.value)


def canonical(kind: str, value: str) -> str:
    if kind == "email":
        return value.strip().lower()
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum used by payment card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check."""
    s = re.sub(r"\s", "", iban).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# Digit runs with separators, not glued to letters (so ORD-10001 or SKU12345678 never match).
_DIGITS = re.compile(r"(?<![\w+\-/.:])(\+?\(?\d[\d ().\-]{5,70}\d)(?![\w\-/:]|\.\d)")
_SSN = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
# A 10-digit North American number (optional leading 1) as written: 3-3-4 with separators
# or a parenthesised area code; the area code starts with 2-9 and is not an N11 code.
_NANP = re.compile(r"(?:1[ .\-]?)?(?:\((?!\d11)[2-9]\d{2}\) ?|(?!\d11)[2-9]\d{2}[ .\-]?)\d{3}[ .\-]\d{4}")
# A national number with its trunk prefix 0 (UK, FR, DE...): 020 7946 0958, 06 12 34 56 78.
_TRUNK = re.compile(r"(?:\(0\d{1,4}\)|0\d{1,4})(?:[ .\-]?\d{2,8}){1,4}")
# A number introduced by one of these words is an identifier (a FedEx tracking number, an
# order or invoice number), unless a phone word comes between: "order? call 415-555-0123".
_REF_CONTEXT = re.compile(
    r"\b(?:tracking|track|order|shipment|parcel|package|consignment|waybill|invoice|"
    r"reference|ref|confirmation|case|ticket|account|transaction|receipt|serial|sku|awb)\b"
    r"[^.!?\n]{0,40}$",
    re.IGNORECASE,
)
_PHONE_WORD = re.compile(r"\b(?:call|phone|tel|telephone|mobile|cell|reach|text|sms|whatsapp|fax|dial|contact)\b", re.I)
# A phone word just before an unformatted run ("call me at 4155550123", "my number is ..."):
# then a bare run of digits is read as a phone number too, if it has a phone's shape.
_PHONE_LEAD = re.compile(
    r"(?:\b(?:call|phone|tel|telephone|mobile|cell|reach|text|sms|whatsapp|fax|dial|contact)\b|\bmy number\b)"
    r"[^.!?\n\d]{0,24}$",
    re.I,
)
_BARE_NANP = re.compile(r"1?(?!\d11)[2-9]\d{9}")
_DATE_START = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}\b|\d{1,2}[-./]\d{1,2}[-./]\d{4}\b")
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


def _ssn_valid(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _is_phone(raw: str, digits: str, before: str) -> bool:
    """Whether a digit run reads as a phone number (see the module docstring)."""
    # The shape first (cheap, and false for most runs), the context only for candidates.
    if raw.startswith("+"):
        shaped = 8 <= len(digits) <= 15
    elif raw.isdigit():  # no formatting at all: an id, an amount or a tracking number...
        # ...unless a phone word introduces it and it has a phone's shape.
        shaped = (
            _BARE_NANP.fullmatch(raw) is not None or (raw.startswith("0") and 10 <= len(raw) <= 11)
        ) and _PHONE_LEAD.search(before) is not None
    else:
        shaped = _NANP.fullmatch(raw) is not None or (
            10 <= len(digits) <= 11 and _TRUNK.fullmatch(raw) is not None
        )
    if not shaped:
        return False
    ref = _REF_CONTEXT.search(before)
    return not (ref and not _PHONE_WORD.search(ref.group(0)))


def detect_pii(text: str, kinds: Iterable[str] | None = None) -> list[PiiMatch]:
    """Every piece of PII of the given kinds (default all) in ``text``, in order of position."""
    want = set(PII_KINDS if kinds is None else kinds)
    found: list[PiiMatch] = []
    # Claimed spans, kept sorted and non-overlapping: an overlap test looks at the two
    # neighbours only (a scan of every span made 30,000 matches cost a minute).
    starts: list[int] = []
    ends: list[int] = []

    def add(kind: str, m: re.Match[str], group: int = 0, *, report: bool = True) -> None:
        add_span(kind, *m.span(group), report=report)

    def add_span(kind: str, s: int, e: int, *, report: bool = True) -> None:
        i = bisect.bisect_right(starts, s)
        if (i > 0 and ends[i - 1] > s) or (i < len(starts) and starts[i] < e):
            return
        starts.insert(i, s)
        ends.insert(i, e)
        if report and kind in want:
            found.append(PiiMatch(kind, text[s:e], s, e))

    # Most specific first; a span claimed by one kind is not reported again as another.
    for m in _EMAIL.finditer(text):
        add("email", m)
    for m in _IBAN.finditer(text):
        # An IBAN-shaped string with a bad checksum is claimed but not reported, so its
        # digits are not misread as a phone number.
        add("iban", m, report=iban_valid(m.group(0)))
    for m in _SSN.finditer(text):
        if _ssn_valid(*m.groups()):
            add("ssn", m)
    for m in _NINO.finditer(text):
        add("national_id", m)
    for m in _DIGITS.finditer(text):
        start, end = m.span(1)
        kind = _number_kind(text, start, end)
        if kind is not None:
            add(kind, m, 1)
            continue
        # Numbers written one after the other ("+44 20 7946 0958 4111 1111 1111 1111") make
        # one run that is neither: try its space-separated pieces, longest first from the left.
        pieces = [(p.start() + start, p.end() + start) for p in re.finditer(r"\S+", text[start:end])]
        i = 0
        while i < len(pieces):
            # Only spans of pieces holding at most _MAX_DIGITS digits can be a number of
            # either kind: without this bound "1 1 1 1 ..." cost ~20 ms per character.
            last, n_digits = i, 0
            spans = []  # (j, digits in pieces i..j-1)
            while last < len(pieces):
                n_digits += sum(c.isdigit() for c in text[pieces[last][0] : pieces[last][1]])
                if n_digits > _MAX_DIGITS:
                    break
                last += 1
                spans.append((last, n_digits))
            for j, n in reversed(spans):
                s, e = pieces[i][0], pieces[j - 1][1]
                ok = n >= _MIN_DIGITS and text[e - 1].isdigit()
                kind = _number_kind(text, s, e) if ok else None
                if kind is not None:
                    add_span(kind, s, e)
                    i = j
                    break
            else:
                i += 1
    return sorted(found, key=lambda p: p.start)


# Digits in the shortest phone number (+ and 8) and the longest card number.
_MIN_DIGITS, _MAX_DIGITS = 8, 19


def _number_kind(text: str, start: int, end: int) -> str | None:
    """``card``, ``phone`` or None for the run of digits ``text[start:end]``."""
    raw = text[start:end]
    digits = re.sub(r"\D", "", raw)
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return None  # no phone number (8-15 digits) or card number (13-19) is this long or short
    if _DATE_LIKE.match(raw.strip()) or _DATE_START.match(raw) or raw.count(".") > 3:
        return None
    # A card number is written with spaces or dashes; "4532015112830366.00" is an amount.
    if 13 <= len(digits) <= 19 and luhn_valid(digits) and not raw.startswith("+") and not re.search(r"[.()]", raw):
        return "card"
    if _is_phone(raw, digits, text[max(0, start - 80) : start]):
        return "phone"
    return None


def mask(kind: str, value: str) -> str:
    """A value safe to print in a report: ``j***@example.com``, ``**** 1111``."""
    if kind == "email":
        user, _, domain = value.partition("@")
        return f"{user[:1]}***@{domain}"
    keep = re.sub(r"[^0-9A-Za-z]", "", value)
    return "*" * max(0, len(keep) - 4) + keep[-4:]


# Fields that are evalkit's own identifiers or enums, never free text from the conversation.
_KEEP = frozenset({
    "schema_version", "run_id", "scenario_id", "variant", "channel", "role", "act", "outcome",
    "stop_reason", "error_kind", "started_at", "judge", "kind",
})


# Looser than the judge's detector (which must not cry wolf): an address glued to other
# text (``ana@example.com0``, ``mail:ana@example.com.``) is still an address to hide.
_LOOSE_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _mask_once(text: str) -> str:
    text = _LOOSE_EMAIL.sub(lambda m: mask("email", m.group(0)), text)
    found = detect_pii(text)
    if not found:
        return text
    out: list[str] = []
    pos = 0
    for p in found:  # in order of position, never overlapping
        out.append(text[pos : p.start])
        out.append(mask(p.kind, p.value))
        pos = p.end
    out.append(text[pos:])
    return "".join(out)


def redact_text(text: str) -> str:
    """``text`` with every piece of PII replaced by its mask.

    Repeated until nothing is found: the last four digits a mask keeps can join the digits
    next to them into something that looks like a number again (``**0958 2024-05-01``);
    erring towards masking a little more is the safe side.
    """
    for _ in range(5):
        masked = _mask_once(text)
        if masked == text:
            break
        text = masked
    return text


def redact_value(value: Any, key: str | None = None) -> Any:
    """A JSON value with every string (and mapping key) redacted, except evalkit's own ids."""
    if isinstance(value, str):
        return value if key in _KEEP else redact_text(value)
    if isinstance(value, dict):
        return {
            (k if k in _KEEP or not isinstance(k, str) else redact_text(k)): redact_value(v, k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_value(v, key) for v in value]
    return value
