"""Analytics: one structured JSON log line per turn, with PII already redacted.

Off by default. Turn it on by passing ``analytics=TurnLogger(...)`` to
:class:`~reference_agent.agent.SupportAgent`, or for every agent of a process with the
``REFERENCE_AGENT_ANALYTICS`` environment variable (a file path to append to, or ``-``
for the ``reference_agent.analytics`` logger at INFO).

A line looks like::

    {"ts": "2026-11-25T09:00:00Z", "session": "s1", "turn": 2, "channel": "web",
     "intent": "refund", "tools": [{"name": "request_refund", "error": null}],
     "latency_ms": 1.9, "outcome": "completed", "handoff": null,
     "pii": ["email"], "message": "my email is [EMAIL]", "reply": "Done! ..."}
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["TurnRecord", "TurnLogger", "logger_from_env"]

_log = logging.getLogger("reference_agent.analytics")


@dataclass
class TurnRecord:
    session: str
    turn: int
    channel: str
    intent: str
    tools: list[dict[str, Any]]
    latency_ms: float
    outcome: str  # completed | asked | confirm | refused | redirected | handoff | closed | failed | answered
    handoff: str | None = None  # ticket id
    pii: list[str] = field(default_factory=list)  # kinds found in the user message
    message: str = ""  # the user message, redacted
    reply: str = ""  # the reply, redacted
    engine: str = "rules"
    faults: list[str] = field(default_factory=list)
    ts: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


class TurnLogger:
    """Writes :class:`TurnRecord` lines to a file, a stream, or a ``logging.Logger``."""

    def __init__(
        self,
        target: str | os.PathLike[str] | TextIO | logging.Logger | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._stream: TextIO | None = None
        self._path: Path | None = None
        self._logger: logging.Logger | None = None
        if isinstance(target, logging.Logger):
            self._logger = target
        elif target is None:
            self._logger = _log
        elif isinstance(target, str | os.PathLike):
            self._path = Path(target)
        else:
            self._stream = target

    def emit(self, record: TurnRecord) -> str:
        line = json.dumps(asdict(record), ensure_ascii=False, sort_keys=True)
        with self._lock:
            if self._logger is not None:
                self._logger.info(line)
            elif self._path is not None:
                with self._path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            elif self._stream is not None:
                self._stream.write(line + "\n")
                self._stream.flush()
        return line


def logger_from_env() -> TurnLogger | None:
    value = os.environ.get("REFERENCE_AGENT_ANALYTICS")
    if not value:
        return None
    return TurnLogger(None if value == "-" else value)
