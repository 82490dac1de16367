"""Guardrails: PII redaction, prompt-injection detection, banned topics, output checks.

* :func:`find_pii` / :func:`redact` run on every user message BEFORE anything is logged
  or stored (analytics, memory, ticket summaries): emails, phone numbers (grouped, E.164, or
  bare digits right after a phone word), payment card numbers (only digit runs that pass the
  Luhn check) and national ids (US SSN, UK NINO).
* :func:`detect_injection` catches "ignore previous instructions", role-play jailbreaks
  ("pretend you are DAN", "developer mode"), system-prompt extraction ("print your system
  prompt") and encoded payloads (base64, hex bytes in the usual dump formats, URL-encoding or
  rot13 text that decodes to one of those, and look-alike spellings: Unicode homoglyphs,
  full-width letters, zero-width characters, leetspeak).
* :func:`detect_banned_topic` recognises requests for medical diagnosis, legal advice or
  financial recommendations; the agent answers with a safe redirect.
* :func:`check_output` is the last step before a reply leaves the agent: it removes
  any email or phone number of ANOTHER customer, any card number, and blocks replies
  that quote the system prompt.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
import unicodedata
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from reference_agent.system_prompt import SYSTEM_PROMPT, SYSTEM_PROMPT_CANARY

__all__ = [
    "PiiMatch",
    "OutputCheck",
    "REFUSAL",
    "BANNED_REPLIES",
    "CARD_WARNING",
    "luhn_valid",
    "find_pii",
    "redact",
    "detect_injection",
    "detect_banned_topic",
    "check_output",
    "scan_untrusted",
    "quotes_system_prompt",
]

REFUSAL = (
    "I'm sorry, but I can't help with that. I'm the AcmeCorp support assistant: I can help with "
    "your orders, returns, refunds, cancellations, address changes and questions about our store."
)
BANNED_REPLIES = {
    "medical": (
        "I'm not able to give medical advice. Please consult a doctor or another qualified "
        "healthcare professional. I'm happy to help with anything related to your AcmeCorp orders."
    ),
    "legal": (
        "I'm not able to give legal advice. Please consult a qualified lawyer. "
        "I'm happy to help with anything related to your AcmeCorp orders."
    ),
    "financial": (
        "I'm not able to give financial advice or investment recommendations. Please consult a qualified "
        "financial advisor. I'm happy to help with anything related to your AcmeCorp orders."
    ),
}
CARD_WARNING = (
    "For your security, please never share card numbers or ID numbers in chat: "
    "I've removed it from our records."
)


@dataclass(frozen=True)
class PiiMatch:
    kind: str  # email | phone | card | national_id
    start: int
    end: int
    value: str


_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# Not inside a longer code: DHL tracking numbers ("JD" + 16 digits) and the first 16 digits of
# a USPS number printed in groups ("9400 1489 3252 8809 5701 54") pass the Luhn check about one
# time in ten, and a shipped order's tracking number must not become "[card removed]".
_CARD = re.compile(r"(?<![\w-])(?<!\d[ -])(?:\d[ -]?){12,18}\d(?![\w-])(?![ -]\d)")
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.IGNORECASE)
# Separators inside a phone number: spaces, dots, ASCII dashes and the Unicode hyphens and
# dashes models like to write (U+2010 to U+2015, e.g. the non-breaking hyphen U+2011).
_SEP = r"[\s.\-\u2010-\u2015]"
_PHONE = re.compile(
    rf"(?<![\w\-\u2010-\u2015])(?:"
    # an optional country code (+1, 00 1, 011 44) or US trunk prefix (1-555-...), then
    # area code and number in groups: +1 (555) 431-3471, 555.431.3471, 1-555-431-3471
    rf"(?:(?:\+|00|011){_SEP}?\d{{1,3}}{_SEP}?|1{_SEP})?"
    rf"(?:\(\d{{2,4}}\){_SEP}?|\d{{2,4}}{_SEP})\d{{3,4}}{_SEP}?\d{{3,4}}"
    rf"|\+\d{{10,15}}"  # E.164, written without separators: +15554313471
    rf")(?![\w\-\u2010-\u2015])")
# A bare run of 10 or 11 digits ("5554313471") is as likely an invoice or a reference: the
# output check removes it when it spells another customer's phone, find_pii when a phone
# word comes right before it ("call me on", "my number is", "mobile:").
_BARE_PHONE = re.compile(r"(?<![\w+-])\d{10,11}(?![\w-])")
_PHONE_CUE = re.compile(
    r"(?:\b(?:phone|mobile|cell|tel|telephone|call|ring|text|sms|whatsapp|fax|reach)\b|\bmy number\b)"
    r"(?:\s+(?:me|us|him|her|them|on|at|is|was|number|no))*[\s:#.]*$", re.I)
_LABELS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "national_id": "[NATIONAL_ID]"}


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    nums = [int(d) for d in digits if d.isdigit()]
    if len(nums) < 13:
        return False
    total = 0
    for i, n in enumerate(reversed(nums)):
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def find_pii(text: str) -> list[PiiMatch]:
    """Every PII span in ``text`` (non-overlapping, first match wins by priority)."""
    found: list[PiiMatch] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, m: re.Match[str]) -> None:
        s, e = m.span()
        if any(s < te and e > ts for ts, te in taken):
            return
        taken.append((s, e))
        found.append(PiiMatch(kind, s, e, m.group(0)))

    for m in _EMAIL.finditer(text):
        add("email", m)
    for m in _CARD.finditer(text):
        if luhn_valid(m.group(0)):
            add("card", m)
    for m in _SSN.finditer(text):
        add("national_id", m)
    for m in _NINO.finditer(text):
        add("national_id", m)
    for m in _PHONE.finditer(text):
        if sum(c.isdigit() for c in m.group(0)) >= 10:
            add("phone", m)
    for m in _BARE_PHONE.finditer(text):
        if _PHONE_CUE.search(text[:m.start()]):
            add("phone", m)
    return sorted(found, key=lambda p: p.start)


def redact(text: str, matches: list[PiiMatch] | None = None) -> str:
    """``text`` with every PII span replaced by a label such as ``[EMAIL]``."""
    matches = find_pii(text) if matches is None else matches
    out, pos = [], 0
    for m in matches:
        out.append(text[pos:m.start])
        out.append(_LABELS[m.kind])
        pos = m.end
    out.append(text[pos:])
    return "".join(out)


_INJECTION = [
    ("override", re.compile(
        r"\b(ignore|disregard|forget|bypass|override|skip)\b[\w\s,']{0,30}?\b(previous|prior|above|earlier|all|"
        r"your|the|these|any|system)\b[\w\s,']{0,20}?\b(instructions?|rules|prompts?|guidelines|policies|"
        r"polic(y|ies)|directives|restrictions|programming|constraints)\b", re.I)),
    ("override", re.compile(r"\bnew (instructions|rules)\s*:", re.I)),
    ("roleplay", re.compile(
        r"\b(pretend (you are|you're|to be)|act as (if you were |an? )?(unfiltered|unrestricted|dan|evil|jailbroken)|"
        r"you are now (dan|an? unrestricted|free)|roleplay as|role-play as|from now on you are|do anything now|"
        r"\bdan\b mode|developer mode|jailbreak|jailbroken|no restrictions|without (any )?restrictions)", re.I)),
    ("extraction", re.compile(
        r"\b(show|reveal|print|repeat|display|output|tell me|give me|what (is|are|was|were)|what's|share|leak|dump|"
        r"recite|copy)\b[\w\s,']{0,25}?\b(system prompt|system message|initial prompt|hidden prompt|"
        r"original prompt|your (instructions|prompt|rules|guidelines|configuration)|the instructions you were given|"
        r"everything above|text above|words above)", re.I)),
    ("extraction", re.compile(r"\b(system prompt|system message)\b", re.I)),
    ("admin", re.compile(r"\b(i am|i'm) (the|an?|your) (admin|administrator|developer|system|ceo of acme)\b", re.I)),
    ("sys_tag", re.compile(r"(^|\s)(system|assistant)\s*:\s*|<\|?(system|im_start)\|?>|\[system\]", re.I)),
]
_B64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
# Twelve or more hex bytes, written together (69676e6f72...) or the ways byte dumps are
# pasted: spaced or colon-separated (69 67 6e), with 0x or \x prefixes, or URL-encoded (%69%67).
_HEX_BYTE = r"(?:0x|\\x|%)?([0-9a-fA-F]{2})"
_HEX = re.compile(rf"(?<![\w\\%])(?:{_HEX_BYTE}[\s:,-]?){{11,}}{_HEX_BYTE}(?!\w)")
_ROT13_HINT = re.compile(r"\b(rot13|rot-13|caesar|base64|decode (this|the following)|encoded)\b", re.I)


def _plain_injection(text: str) -> str | None:
    for kind, rx in _INJECTION:
        if rx.search(text):
            return kind
    return None


# Look-alike spellings that slip past the patterns above (found by the red-team suite):
# Cyrillic/Greek homoglyphs, invisible characters, and leetspeak digits. NFKC already folds
# full-width letters and other compatibility forms.
_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H",
    "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "α": "a", "ο": "o",
    "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "Α": "A", "Β": "B", "Ε": "E", "Ι": "I", "Κ": "K",
    "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X", "Υ": "Y", "Ζ": "Z",
})
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
# Only words that mix letters and digits are read as leetspeak, so ids and amounts stay intact.
_LEET_WORD = re.compile(r"\b(?=\w*[A-Za-z])(?=\w*\d)\w+\b")


def _unmasked(text: str) -> str:
    """``text`` with look-alike spellings folded to plain ASCII letters."""
    folded = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(_CONFUSABLES)
    return _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), folded)


def detect_injection(text: str) -> str | None:
    """The kind of injection found (override, roleplay, extraction, admin, sys_tag,
    encoded) or None. Encoded payloads are decoded (base64, hex, rot13) and re-checked;
    look-alike spellings (homoglyphs, full-width letters, zero-width characters,
    leetspeak) are folded and re-checked."""
    kind = _plain_injection(text)
    if kind:
        return kind
    unmasked = _unmasked(text)
    if unmasked != text and _plain_injection(unmasked):
        return "encoded"
    for token in _B64.findall(text):
        try:
            # Re-padded from scratch: a payload pasted with too many "=" must decode too.
            data = token.rstrip("=")
            decoded = base64.b64decode(data + "=" * (-len(data) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if decoded.isprintable() and _plain_injection(decoded):
            return "encoded"
    for m in _HEX.finditer(text):
        try:
            decoded = bytes.fromhex("".join(re.findall(_HEX_BYTE, m.group(0)))).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if decoded.isprintable() and _plain_injection(decoded):
            return "encoded"
    rotated = codecs.decode(text, "rot13")
    if _plain_injection(rotated):
        return "encoded"
    if _ROT13_HINT.search(text) and re.search(r"\b(follow|execute|obey|do what it says|run)\b", text, re.I):
        return "encoded"
    return None


_BANNED = {
    "medical": re.compile(
        r"\b(diagnos\w*|symptoms?|medication|medicine|dosage|dose|prescri\w+|rash|disease|illness|"
        r"infection|pain in my|headache|migraine|fever|is it cancer|side effects?|should i take|"
        r"pills?|ibuprofen|antibiotics?|doctor says|medical advice|am i sick|treat(ment)? for)\b", re.I),
    "legal": re.compile(
        r"\b(legal advice|lawyer|attorney|sue\b|suing|lawsuit|take (you|acme|them) to court|"
        r"is it legal|legally|my rights under|contract law|liable|liability|court case|small claims|"
        r"custody|divorce|immigration)\b", re.I),
    "financial": re.compile(
        r"\b(invest(ing|ment)?s?|stocks?|shares in|crypto\w*|bitcoin|ethereum|retirement|401k|"
        r"financial advice|portfolio|should i buy (stock|shares|bitcoin)|trading|forex|mortgage|"
        r"which fund|index fund|savings account|tax advice)\b", re.I),
}


def detect_banned_topic(text: str) -> str | None:
    """``medical``, ``legal``, ``financial`` or None."""
    for topic, rx in _BANNED.items():
        if rx.search(text):
            return topic
    return None


def scan_untrusted(text: str) -> bool:
    """True when data read from the store (an order note) carries instructions."""
    return bool(detect_injection(text)) or bool(
        re.search(r"\b(refund|cancel|ignore)\b.*\b(immediately|now|your rules)\b", text, re.I))


_SHINGLE = 6
_LEAK_SHINGLES = 3  # this many distinct 6-word runs of the prompt in a reply = a leak
# Sentences the agent says on purpose that also appear in the prompt.
_PUBLIC = (
    "Is there anything else I can help you with? Shall I go ahead and ...? (yes/no) "
    "Returns are accepted only within 30 days of delivery. Refunds over $500 "
    "Only pending orders can be cancelled or re-addressed. Customers may act only on their own orders. "
    "Order ids look like ORD-12345."
)


def _shingles(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {" ".join(words[i:i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


_PROMPT_SHINGLES = _shingles(SYSTEM_PROMPT) - _shingles(_PUBLIC)


def quotes_system_prompt(text: str) -> bool:
    """True when ``text`` contains the prompt's canary or several verbatim runs of it."""
    if SYSTEM_PROMPT_CANARY.lower() in text.lower():
        return True
    return len(_shingles(text) & _PROMPT_SHINGLES) >= _LEAK_SHINGLES


# How a model spells out an address it was told not to write: "ben dot carter at example dot
# com", "ben.carter [at] example [dot] com".
_AT = r"\s*(?:@|\(at\)|\[at\]|\sat\s)\s*"
_DOT = r"\s*(?:\.|\(dot\)|\[dot\]|\sdot\s)\s*"


def _spelled_out(emails: AbstractSet[str]) -> re.Pattern[str] | None:
    """One pattern for these addresses written with words for "@" and "." (None: no address)."""
    if not emails:
        return None

    def spelled(address: str) -> str:
        local, _, domain = address.partition("@")
        return _AT.join(_DOT.join(re.escape(p) for p in part.split(".")) for part in (local, domain))

    return re.compile(rf"(?<![\w.])(?:{'|'.join(spelled(e) for e in sorted(emails))})(?!\w)", re.I)


@functools.lru_cache(maxsize=4096)
def _phone_key(phone: str) -> str:
    """The last 10 digits: how two spellings of one phone number compare equal."""
    return re.sub(r"\D", "", phone)[-10:]


@dataclass
class OutputCheck:
    """What the output check changed (empty when the reply was clean)."""

    text: str
    removed: list[str] = field(default_factory=list)  # kinds removed: email, phone, card, system_prompt


def check_output(
    text: str,
    *,
    own_email: str | None,
    other_emails: AbstractSet[str],
    other_phones: AbstractSet[str],
    allow_system_prompt: bool = False,
) -> OutputCheck:
    """Strip other customers' emails and phones, any card number or national id; block
    system-prompt quotes."""
    result = OutputCheck(text)
    if not allow_system_prompt and quotes_system_prompt(text):
        result.text = REFUSAL
        result.removed.append("system_prompt")
        return result
    own = (own_email or "").lower()

    def email_sub(m: re.Match[str]) -> str:
        value = m.group(0).lower()
        if value == own:
            return m.group(0)
        if value in other_emails or not value.endswith("@acme.example.com"):
            result.removed.append("email")
            return "[email removed]"
        return m.group(0)

    out = _EMAIL.sub(email_sub, text)
    spelled = _spelled_out(other_emails)  # only known addresses: "at" and "dot" are ordinary words

    def spelled_sub(m: re.Match[str]) -> str:
        result.removed.append("email")
        return "[email removed]"

    out = spelled.sub(spelled_sub, out) if spelled else out
    # Phones are compared by their digits, so "+1 (555) 431-3471" matches "+1-555-431-3471".
    other_digits = {_phone_key(p) for p in other_phones}

    def phone_sub(m: re.Match[str]) -> str:
        if _phone_key(m.group(0)) in other_digits:
            result.removed.append("phone")
            return "[phone removed]"
        return m.group(0)

    out = _BARE_PHONE.sub(phone_sub, _PHONE.sub(phone_sub, out))

    def national_id_sub(m: re.Match[str]) -> str:
        result.removed.append("national_id")
        return "[id removed]"

    out = _NINO.sub(national_id_sub, _SSN.sub(national_id_sub, out))

    def card_sub(m: re.Match[str]) -> str:
        if luhn_valid(m.group(0)):
            result.removed.append("card")
            return "[card removed]"
        return m.group(0)

    out = _CARD.sub(card_sub, out)
    result.text = out
    return result
