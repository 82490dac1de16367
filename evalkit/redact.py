"""PII redaction of saved conversations (``evalkit run --redact-pii``, ``evalkit report --redact-pii``).

Every string of a conversation (turn texts, tool arguments and results, the end state,
errors, judge reasons and details, mapping keys included) is passed through the detectors
of :mod:`evalkit.judges.pii` (emails, phone numbers, payment cards, US SSNs, UK National
Insurance numbers, IBANs) and each match is replaced by its masked form
(``a***@example.com``, ``************1111``): enough to read a transcript, never the value.

Redaction happens when a conversation is *written*, after it was scored: judges always
see the raw transcript (a ``no_pii_leak`` check must see the PII it looks for), and what
reaches the disk, the reports and the comparison is masked. The identifiers evalkit itself
uses to find a conversation (scenario id, variant, judge names, enums, timestamps) are
left as they are.
"""

from __future__ import annotations

import re
from typing import Any

from evalkit.judges.pii import detect_pii, mask
from evalkit.results import ConversationResult, RunResult

__all__ = ["redact_text", "redact_value", "redact_conversation", "redact_run"]

# Fields that are evalkit's own identifiers or enums, never free text from the conversation.
_KEEP = frozenset({
    "schema_version", "run_id", "scenario_id", "variant", "channel", "role", "act", "outcome",
    "stop_reason", "started_at", "judge", "kind",
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


def redact_conversation(result: ConversationResult) -> ConversationResult:
    """A copy of ``result`` safe to write: PII masked, verdicts and metrics unchanged."""
    data = result.model_dump(mode="json")
    return ConversationResult.model_validate(redact_value(data))


def redact_run(run: RunResult) -> RunResult:
    """Every conversation of ``run`` redacted (the manifest holds no conversation text)."""
    return run.model_copy(update={"conversations": [redact_conversation(c) for c in run.conversations]})
