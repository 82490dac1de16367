"""Model failures as data, and the scrubbing that keeps secrets out of every message.

A :class:`ModelCallError` is what the client raises when a model call could not produce a
usable answer (every retry failed, the answer never validated, the endpoint refused us).
Callers turn it into data: a judge returns ``Verdict(error=...)``, an agent adapter records
``AgentTurn.error``. It is deliberately *not* an :class:`~evalkit.core.errors.EvalkitError`:
nothing the user wrote is wrong, the model or the endpoint misbehaved.
"""

from __future__ import annotations

import re

__all__ = ["ModelCallError", "scrub"]

# Things that look like credentials: bearer tokens, OpenAI-style keys, `api_key=...` pairs.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(authorization\s*[:=]\s*)(bearer\s+)?[^\s,;'\"}]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)((?:api[_-]?key|x-api-key|token|secret)[\"']?\s*[:=]\s*[\"']?)[^\s,;'\"}&]+"),
)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every known secret and anything that looks like one replaced by ``***``,
    collapsed to one line."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    for pat in _SECRET_PATTERNS:
        out = pat.sub(lambda m: (m.group(1) if m.lastindex and m.group(1) else "") + "***", out)
    return " ".join(out.split())


class ModelCallError(Exception):
    """A model call failed for good; ``reason`` is one scrubbed line.

    ``kind`` says what went wrong: ``rate_limited``, ``server_error``, ``timeout``,
    ``connection``, ``bad_request``, ``auth``, ``invalid_response``, ``invalid_output``
    (the answer never matched the requested schema), ``refused`` (the model declined, or its
    content filter withheld the answer) and ``truncated`` (the answer was cut at the token
    limit): the last two are never re-asked.
    """

    def __init__(self, reason: str, *, kind: str = "error", attempts: int = 1, status: int | None = None):
        self.reason = scrub(reason)
        self.kind = kind
        self.attempts = attempts
        self.status = status
        super().__init__(self.reason)

    def __str__(self) -> str:
        return self.reason
