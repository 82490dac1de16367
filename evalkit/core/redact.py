"""PII redaction of saved conversations (``evalkit run --redact-pii``, ``evalkit report --redact-pii``).

Every string of a conversation (turn texts, tool arguments and results, the end state,
errors, judge reasons and details, mapping keys included) is passed through
:func:`evalkit.core.pii.redact_value` (emails, phone numbers, payment cards, US SSNs, UK National
Insurance numbers, IBANs), each match replaced by its masked form.

Redaction happens when a conversation is *written*, after it was scored: judges always
see the raw transcript (a ``no_pii_leak`` check must see the PII it looks for), and what
reaches the disk, the reports and the comparison is masked.
"""

from __future__ import annotations

from evalkit.core.pii import redact_value
from evalkit.core.results import ConversationResult, RunResult

__all__ = ["redact_conversation", "redact_run"]


def redact_conversation(result: ConversationResult) -> ConversationResult:
    """A copy of ``result`` safe to write: PII masked, verdicts and metrics unchanged."""
    data = result.model_dump(mode="json")
    return ConversationResult.model_validate(redact_value(data))


def redact_run(run: RunResult) -> RunResult:
    """Every conversation of ``run`` redacted (the manifest holds no conversation text)."""
    return run.model_copy(update={"conversations": [redact_conversation(c) for c in run.conversations]})
