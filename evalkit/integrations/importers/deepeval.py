"""``deepeval``: DeepEval conversational test cases and goldens, as JSON (deepeval is not imported).

Accepted shapes: a JSON list of items (what ``EvaluationDataset.save_as("json")`` writes
for multi-turn goldens), an object with one of ``test_cases``,
``conversational_test_cases``, ``goldens`` or ``conversational_goldens`` (a list), or a
single item. An item:

* ``turns``: ``[{"role": "user"|"assistant", "content": ..., "tools_called":
  [{"name", "input_parameters" (or "inputParameters"), "output"}], "latency_ms"}]``; the
  older form, ``[{"input", "actual_output", "tools_called", "expected_tools"}]`` (one user
  message and one reply per item), is read too. Items without turns (goldens that were
  never played) become scenarios with no recording.
* ``scenario`` -> the scenario's description and the persona's goal;
  ``user_description`` (or ``persona.characteristics``) -> the persona's instructions;
  ``expected_outcome`` -> a ``goal_completion`` expectation (an LLM judge: skipped when no
  model is configured); ``expected_tools`` of old-style turns -> ``tool_called``
  expectations; ``name`` -> the scenario id (else ``deepeval-<n>``);
  ``additional_metadata.trial`` (or ``metadata.trial``) -> the trial number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.transcript import (
    AgentTurn,
    Handoff,
    Outcome,
    StopReason,
    ToolCall,
    Transcript,
    Turn,
    UserTurn,
)
from evalkit.integrations.importers._common import (
    Imported,
    ImportFormatError,
    Recording,
    load_json,
    loads,
    safe_id,
)
from evalkit.integrations.interop.deepeval_goldens import golden_to_scenario
from evalkit.scenarios.models import JudgeSpec, Scenario, ScriptStep, UserSpec

__all__ = ["FORMAT", "read"]

FORMAT = "deepeval"

_LIST_KEYS = ("test_cases", "conversational_test_cases", "goldens", "conversational_goldens")


def _items(data: Any, name: str) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in _LIST_KEYS:
            if isinstance(data.get(key), list):
                return data[key]  # type: ignore[no-any-return]
        if "turns" in data or "scenario" in data:
            return [data]
    raise ImportFormatError(
        f"expected a list of test cases/goldens or an object with one of {', '.join(_LIST_KEYS)}",
        file=name,
        field="file",
    )


def _jsonl(path: Path) -> list[Any]:
    items = []
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                try:
                    items.append(loads(raw))
                except ValueError as exc:
                    raise ImportFormatError(
                        f"not valid JSON ({exc})", file=str(path), line=lineno, field="line"
                    ) from None
    return items


def _get(obj: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in obj:
            return obj[k]
    return None


def _tool_calls(raw: Any, err: Any) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise err("tools_called", "must be a list")
    calls = []
    for j, tc in enumerate(raw):
        if not isinstance(tc, dict) or not isinstance(tc.get("name"), str):
            raise err(f"tools_called[{j}].name", "missing or not a string")
        params = _get(tc, "input_parameters", "inputParameters") or {}
        if not isinstance(params, dict):
            raise err(f"tools_called[{j}].input_parameters", "must be an object")
        calls.append(ToolCall(name=tc["name"], arguments=params, result=tc.get("output")))
    return calls


def _turns(raw: Any, err: Any) -> tuple[list[Turn], list[JudgeSpec]]:
    if not isinstance(raw, list):
        raise err("turns", "must be a list")
    turns: list[Turn] = []
    expect: list[JudgeSpec] = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise err(f"turns[{i}]", "must be an object")

        def terr(field: str, problem: str, i: int = i) -> ImportFormatError:
            return err(f"turns[{i}].{field}", problem)

        if "role" in t:
            role, content = t.get("role"), t.get("content")
            if role not in ("user", "assistant"):
                raise terr("role", "must be 'user' or 'assistant'")
            if not isinstance(content, str):
                raise terr("content", "missing or not a string")
            if role == "user":
                turns.append(UserTurn(content=content))
            else:
                calls = _tool_calls(_get(t, "tools_called", "toolsCalled"), terr)
                latency = _get(t, "latency_ms", "latencyMs")
                turns.append(
                    AgentTurn(
                        content=content,
                        tool_calls=calls,
                        latency_ms=float(latency) if isinstance(latency, int | float) else None,
                        handoff=_handoff(calls),
                    )
                )
        elif "input" in t:
            if not isinstance(t["input"], str):
                raise terr("input", "must be a string")
            turns.append(UserTurn(content=t["input"]))
            reply = _get(t, "actual_output", "actualOutput")
            if reply is not None:
                if not isinstance(reply, str):
                    raise terr("actual_output", "must be a string")
                calls = _tool_calls(_get(t, "tools_called", "toolsCalled"), terr)
                turns.append(AgentTurn(content=reply, tool_calls=calls, handoff=_handoff(calls)))
            for tc in _tool_calls(_get(t, "expected_tools", "expectedTools"), terr):
                args: dict[str, Any] = {"name": tc.name}
                if tc.arguments:
                    args["arguments"] = dict(tc.arguments)
                expect.append(JudgeSpec(name="tool_called", args=args))
        else:
            raise terr("role", "a turn needs 'role' and 'content' (or 'input' and 'actual_output')")
    return turns, expect


def _handoff(calls: list[ToolCall]) -> Handoff | None:
    from evalkit.integrations.importers._openai import HANDOFF_TOOL

    for c in calls:
        if HANDOFF_TOOL.search(c.name):
            return Handoff(reason=c.name)
    return None


def read(path: str | Path) -> Imported:
    """Parse a DeepEval test-case / golden JSON file."""
    path = Path(path)
    name = str(path)
    if path.suffix == ".jsonl":
        items = _jsonl(path)
    else:
        items = _items(load_json(path), name)
    if not items:
        raise ImportFormatError("no test cases or goldens found", file=name, field="file")
    scenarios: dict[str, Scenario] = {}
    recordings: list[Recording] = []
    trials: dict[str, int] = {}
    for i, item in enumerate(items):

        def err(field: str, problem: str, i: int = i) -> ImportFormatError:
            return ImportFormatError(problem, file=name, field=f"[{i}].{field}")

        if not isinstance(item, dict):
            raise ImportFormatError("must be an object", file=name, field=f"[{i}]")
        turns: list[Turn] = []
        expect: list[JudgeSpec] = []
        if item.get("turns"):
            turns, expect = _turns(item["turns"], err)
        scenario_text = item.get("scenario") or ""
        outcome = _get(item, "expected_outcome", "expectedOutcome")
        persona_raw = item.get("persona")
        user_description = _get(item, "user_description", "userDescription")
        if not user_description and isinstance(persona_raw, dict):
            user_description = persona_raw.get("characteristics")
        for field, value in (
            ("scenario", scenario_text),
            ("expected_outcome", outcome),
            ("user_description", user_description),
        ):
            if value is not None and not isinstance(value, str):
                raise err(field, "must be a string")
        if outcome:
            expect.insert(
                0, JudgeSpec(name="goal_completion", args={"criteria": f"Expected outcome: {outcome}"})
            )
        if not turns and not scenario_text:
            raise err("turns", "an item needs 'turns' or a 'scenario'")
        meta = _get(item, "additional_metadata", "metadata") or {}
        base = safe_id(item.get("name"), f"deepeval-{i + 1}")
        sid = base
        existing = scenarios.get(sid)
        same_task = existing is not None and existing.description == scenario_text and turns
        if existing is not None and not same_task:
            sid = safe_id(f"{base}-{i + 1}", f"deepeval-{i + 1}")
        if sid not in scenarios:
            users = [t.content for t in turns if isinstance(t, UserTurn)]
            if turns:
                user = UserSpec(
                    script=[ScriptStep(say=u) for u in users] or [ScriptStep(say="(no user message)")]
                )
            else:
                # A golden never played: the interop reader makes the persona scenario (it also
                # restores evalkit's own facts from additional_metadata.evalkit).
                try:
                    golden = golden_to_scenario(item, index=i, source=name)
                except EvalkitError as exc:
                    raise ImportFormatError(exc.problem, file=name, field=exc.field) from None
                scenarios[sid] = golden.model_copy(update={"id": sid, "expect": [*golden.expect, *expect]})
                continue
            scenarios[sid] = Scenario(
                id=sid,
                title=str(item.get("name") or ""),
                description=scenario_text,
                tags=["deepeval"],
                user=user,
                expect=expect,
            )
        if turns:
            trial = meta.get("trial") if isinstance(meta, dict) else None
            if not isinstance(trial, int) or isinstance(trial, bool) or trial < 0:
                trial = trials.get(sid, 0)
            trials[sid] = max(trials.get(sid, 0), trial + 1)
            transcript = Transcript(
                scenario_id=sid, trial=trial, turns=turns, stop_reason=StopReason.recorded
            )
            if transcript.handoff is not None:
                transcript.outcome = Outcome.escalated
            recordings.append(
                Recording(
                    transcript=transcript,
                    metrics={"source_record": i},
                    title=scenarios[sid].title,
                    tags=["deepeval"],
                )
            )
    return Imported(
        format=FORMAT,
        source=name,
        scenarios=list(scenarios.values()),
        recordings=recordings,
        info={"items": len(items), "recorded": len(recordings)},
    )
