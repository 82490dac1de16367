"""What every importer returns, and the error it raises on malformed input."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from evalkit.core.errors import EvalkitError
from evalkit.core.transcript import Transcript
from evalkit.core.untrusted import clean_value
from evalkit.scenarios.models import JudgeSpec, Scenario, ScriptStep, UserSpec

__all__ = ["ImportFormatError", "Recording", "Imported", "load_json", "loads", "safe_id", "replay_scenario"]


class ImportFormatError(EvalkitError):
    """A recorded-conversation file is malformed (names file, line or record, field)."""


@dataclass
class Recording:
    """One recorded conversation: its transcript and the source's own judgement, if any.

    ``metrics`` carries flat per-conversation values the source provides, e.g.
    ``human_csat`` (a human 1-5 rating) or ``source_verdict`` (the source's pass/fail).
    ``labels`` are people's judgements per judge (pass/fail or a number), written to the run
    folder's ``labels.csv`` for ``evalkit calibrate``.
    """

    transcript: Transcript
    metrics: dict[str, float | bool | str | None] = field(default_factory=dict)
    labels: dict[str, bool | float] = field(default_factory=dict)
    title: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass
class Imported:
    """An imported file: the scenarios (with expectations) and their recordings."""

    format: str
    source: str
    scenarios: list[Scenario]
    recordings: list[Recording]
    # Free-form facts about the import, saved in the run manifest's ``extra``.
    info: dict[str, JsonValue] = field(default_factory=dict)


def loads(text: str | bytes) -> Any:
    """``json.loads``, with lone surrogates (``\\ud800`` escapes: valid JSON, not valid
    Unicode) replaced by U+FFFD, so an imported run can always be written and read back."""
    return clean_value(json.loads(text))[0]


def load_json(path: Path) -> Any:
    """The JSON document in ``path``; a one-line :class:`ImportFormatError` naming the line if invalid."""
    try:
        return loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        problem = getattr(exc, "msg", str(exc))
        raise ImportFormatError(f"not valid JSON ({problem})", file=str(path), line=line, field="file") from None


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def safe_id(raw: object, fallback: str) -> str:
    """A scenario id matching the scenario-file pattern, derived from ``raw``."""
    text = _UNSAFE.sub("-", str(raw)).strip("-._") if raw is not None else ""
    return (text or fallback)[:128]


def replay_scenario(
    scenario_id: str,
    user_messages: list[str],
    expect: list[JudgeSpec] | None = None,
    *,
    title: str = "",
    description: str = "",
    tags: list[str] | None = None,
    customer: dict[str, JsonValue] | None = None,
) -> Scenario:
    """A scenario for a recording: the recorded user messages as its script.

    The script makes the scenario replayable against a live agent (``evalkit run``); for
    ``evalkit score`` only its expectations matter.
    """
    steps = [ScriptStep(say=m) for m in user_messages if m.strip()] or [ScriptStep(say="(no user message)")]
    return Scenario(
        id=scenario_id,
        title=title,
        description=description,
        tags=list(tags or []),
        customer=customer,
        user=UserSpec(script=steps),
        expect=list(expect or []),
    )
