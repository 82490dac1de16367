"""``openai-messages``: JSONL, one conversation per line in OpenAI's chat format.

Each line is an object (the shape of OpenAI's fine-tuning files, plus optional fields)::

    {"id": "refund-1", "messages": [{"role": "system", "content": "..."},
                                   {"role": "user", "content": "Where is order 10001?"},
                                   {"role": "assistant", "content": null, "tool_calls": [
                                       {"id": "c1", "type": "function", "function": {
                                           "name": "check_order_status",
                                           "arguments": "{\\"order_id\\": \\"10001\\"}"}}]},
                                   {"role": "tool", "tool_call_id": "c1", "content": "{\\"status\\": \\"shipped\\"}"},
                                   {"role": "assistant", "content": "It has shipped."}],
     "expected": [{"tool_called": {"name": "check_order_status", "args": {"order_id": "10001"}}}]}

Fields: ``messages`` (required); ``id`` (scenario id; default ``conversation-<line>``);
``trial`` (default: 0, or the next number when the id repeats, so trials of one task give
pass^k); ``expected`` (expectations in scenario-file syntax, checked by ``evalkit score``;
identical on every line of one id); ``title``; ``tags``; ``channel``; ``outcome``
(resolved, escalated, abandoned, max_turns, error; default escalated when a hand-off tool
was called, else resolved); ``human_csat`` (a 1-5 rating); ``source_verdict`` (the
source's own pass/fail: true/false or 1/0); ``labels`` (human labels per judge, e.g.
``{"goal_completion": "pass", "tone": 4}``: pass/fail or a number, read by ``evalkit
calibrate``). ``tools``, ``parallel_tool_calls`` and
``metadata`` are accepted and ignored; other fields are an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evalkit.core.errors import JudgeSpecError
from evalkit.core.transcript import Outcome, StopReason, Transcript, UserTurn
from evalkit.integrations.importers._common import (
    Imported,
    ImportFormatError,
    Recording,
    loads,
    replay_scenario,
    safe_id,
)
from evalkit.integrations.importers._openai import convert_messages
from evalkit.judges.registry import build_judge
from evalkit.scenarios.models import Channel, JudgeSpec

__all__ = ["FORMAT", "read", "source_verdict_value", "human_csat_value", "human_labels_value"]

FORMAT = "openai-messages"

_KNOWN = {
    "messages", "id", "trial", "expected", "title", "tags", "channel", "outcome",
    "human_csat", "source_verdict", "labels", "tools", "parallel_tool_calls", "metadata", "functions",
}  # fmt: skip


def source_verdict_value(raw: Any, *, file: str, line: int | None, field: str) -> bool | None:
    """A source's pass/fail as a bool: true/false, or a number (1 passes, 0 fails)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        return float(raw) >= 1.0 - 1e-6
    raise ImportFormatError("must be true/false or a number (1 = pass)", file=file, line=line, field=field)


def human_csat_value(raw: Any, *, file: str, line: int | None, field: str) -> float | None:
    """A human 1-5 rating (a number, or a list of annotators' numbers -> their mean)."""
    if raw is None:
        return None
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ImportFormatError("must be a number 1-5 or a list of them", file=file, line=line, field=field)
    if not all(1 <= v <= 5 for v in values):
        raise ImportFormatError("ratings must be between 1 and 5", file=file, line=line, field=field)
    return float(sum(values) / len(values))


def human_labels_value(raw: Any, *, file: str, line: int | None) -> dict[str, bool | float]:
    """``labels``: judge name -> pass/fail or a number (one person's judgement per judge)."""
    from evalkit.quality.calibration import parse_label

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ImportFormatError("must be an object: judge name -> pass/fail or a number",
                                file=file, line=line, field="labels")
    out: dict[str, bool | float] = {}
    for judge, value in raw.items():
        try:
            out[str(judge)] = parse_label(value)
        except ValueError as exc:
            raise ImportFormatError(str(exc), file=file, line=line, field=f"labels.{judge}") from None
    return out


def _expectations(raw: Any, *, file: str, line: int) -> list[JudgeSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ImportFormatError("must be a list of expectations", file=file, line=line, field="expected")
    out = []
    for i, item in enumerate(raw):
        try:
            spec = JudgeSpec.model_validate(item)
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"]
            raise ImportFormatError(msg, file=file, line=line, field=f"expected[{i}]") from None
        # Build it now so a wrong judge name or argument is reported here, with its line.
        try:
            build_judge(spec)
        except JudgeSpecError as exc:
            where = f"expected[{i}]" + (f".{exc.field}" if exc.field else "")
            raise ImportFormatError(exc.problem, file=file, line=line, field=where) from None
        out.append(spec)
    return out


def read(path: str | Path) -> Imported:
    """Parse an OpenAI-messages JSONL file."""
    path = Path(path)
    name = str(path)
    recordings: list[Recording] = []
    expectations: dict[str, tuple[int, list[JudgeSpec], str, list[str], list[str]]] = {}
    next_trial: dict[str, int] = {}
    seen: dict[tuple[str, int], int] = {}
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = loads(raw)
            except ValueError as exc:
                raise ImportFormatError(
                    f"not valid JSON ({getattr(exc, 'msg', exc)})", file=name, line=lineno, field="line"
                ) from None
            if not isinstance(obj, dict):
                raise ImportFormatError(
                    "each line must be a JSON object", file=name, line=lineno, field="line"
                )
            unknown = sorted(set(obj) - _KNOWN)
            if unknown:
                raise ImportFormatError(
                    f"unknown field (known: {', '.join(sorted(_KNOWN))})",
                    file=name,
                    line=lineno,
                    field=unknown[0],
                )
            if "messages" not in obj:
                raise ImportFormatError("missing", file=name, line=lineno, field="messages")
            turns, system = convert_messages(obj["messages"], file=name, line=lineno)
            sid = safe_id(obj.get("id"), f"conversation-{lineno}")
            trial = obj.get("trial")
            if trial is None:
                trial = next_trial.get(sid, 0)
            elif not isinstance(trial, int) or isinstance(trial, bool) or trial < 0:
                raise ImportFormatError("must be a whole number >= 0", file=name, line=lineno, field="trial")
            if (sid, trial) in seen:
                raise ImportFormatError(
                    f"id '{sid}' trial {trial} already on line {seen[(sid, trial)]}",
                    file=name,
                    line=lineno,
                    field="trial",
                )
            seen[(sid, trial)] = lineno
            next_trial[sid] = max(next_trial.get(sid, 0), trial + 1)
            expect = _expectations(obj.get("expected"), file=name, line=lineno)
            title = str(obj.get("title") or "")
            tags = obj.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ImportFormatError("must be a list of strings", file=name, line=lineno, field="tags")
            users = [t.content for t in turns if isinstance(t, UserTurn)]
            if sid in expectations:
                first_line, first_expect, _, _, _ = expectations[sid]
                if [e.model_dump() for e in first_expect] != [e.model_dump() for e in expect]:
                    raise ImportFormatError(
                        f"'expected' differs from line {first_line} for the same id '{sid}'",
                        file=name,
                        line=lineno,
                        field="expected",
                    )
            else:
                expectations[sid] = (lineno, expect, title, list(tags), users)
            channel = obj.get("channel") or "web"
            if channel not in {c.value for c in Channel}:
                raise ImportFormatError(
                    f"unknown channel '{channel}'", file=name, line=lineno, field="channel"
                )
            transcript = Transcript(
                scenario_id=sid, trial=trial, turns=turns, channel=channel, stop_reason=StopReason.recorded
            )
            outcome = obj.get("outcome")
            if outcome is not None:
                if outcome not in {o.value for o in Outcome}:
                    raise ImportFormatError(
                        f"unknown outcome '{outcome}'", file=name, line=lineno, field="outcome"
                    )
                transcript.outcome = Outcome(outcome)
            elif transcript.handoff is not None:
                transcript.outcome = Outcome.escalated
            metrics: dict[str, float | bool | str | None] = {"source_line": lineno}
            verdict = source_verdict_value(
                obj.get("source_verdict"), file=name, line=lineno, field="source_verdict"
            )
            if verdict is not None:
                metrics["source_verdict"] = verdict
            human = human_csat_value(obj.get("human_csat"), file=name, line=lineno, field="human_csat")
            if human is not None:
                metrics["human_csat"] = human
            if system:
                metrics["system_prompt_chars"] = len(system)
            labels = human_labels_value(obj.get("labels"), file=name, line=lineno)
            recordings.append(Recording(transcript=transcript, metrics=metrics, title=title, tags=list(tags),
                                        labels=labels))
    if not recordings:
        raise ImportFormatError("no conversations found", file=name, field="file")
    scenarios = [
        replay_scenario(sid, users, expect, title=title, tags=tags)
        for sid, (_, expect, title, tags, users) in expectations.items()
    ]
    return Imported(
        format=FORMAT,
        source=name,
        scenarios=scenarios,
        recordings=recordings,
        info={"conversations": len(recordings)},
    )
