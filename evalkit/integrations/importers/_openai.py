"""OpenAI chat messages -> transcript turns (shared by the openai-messages and tau-bench importers).

Rules:

* ``system`` (and ``developer``) messages are not turns; the first one is returned
  separately so importers can keep it.
* ``user`` -> :class:`UserTurn`; content may be a string or a list of parts
  (``{"type": "text", "text": ...}``); non-text parts are dropped.
* ``assistant`` -> :class:`AgentTurn` with its ``tool_calls`` (or the legacy
  ``function_call``). Arguments that are not valid JSON are a failure of the recorded agent,
  kept as data: the call gets ``arguments={}`` and ``error="invalid JSON arguments: ..."``.
* ``tool`` (or legacy ``function``) -> the result of the call it answers (``tool_call_id``,
  else the oldest call still waiting for a result of that name); a result nobody asked
  for is kept as a :class:`ToolTurn`. A result starting with ``error_prefix`` (if given)
  also sets the call's ``error``.
* A call to a hand-off tool (see :data:`HANDOFF_TOOL`) marks the turn's ``handoff``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from pydantic import JsonValue

from evalkit.core.transcript import AgentTurn, Handoff, ToolCall, ToolTurn, Turn, UserTurn
from evalkit.integrations.importers._common import ImportFormatError, loads

__all__ = ["HANDOFF_TOOL", "convert_messages", "text_of"]

# Tool names that hand the conversation to a human (transfer_to_human_agents, handoff, escalate_to_human...).
HANDOFF_TOOL = re.compile(r"transfer_to_human|hand_?off|escalat\w*_to_(human|agent)|^escalate$", re.I)


def text_of(content: Any, *, where: Callable[[str], ImportFormatError]) -> str:
    """A message's text: a string, None, or a list of parts whose text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    raise where("content must be a string, null or a list of parts")


def _parse_result(content: str) -> JsonValue:
    try:
        return loads(content)  # type: ignore[no-any-return]
    except (ValueError, TypeError):
        return content


def convert_messages(
    messages: Any,
    *,
    file: str,
    line: int | None,
    field: str = "messages",
    error_prefix: str | None = None,
    strip: Callable[[str], str] | None = None,
) -> tuple[list[Turn], str | None]:
    """Turn an OpenAI ``messages`` list into transcript turns; also return the system prompt.

    Malformed structure raises :class:`ImportFormatError` naming ``file``, ``line`` and the
    message field (``messages[3].tool_calls[0].function.name``).
    """

    def err(where: str, problem: str) -> ImportFormatError:
        return ImportFormatError(problem, file=file, line=line, field=f"{field}{where}")

    if not isinstance(messages, list):
        raise err("", "must be a list of chat messages")
    turns: list[Turn] = []
    system: str | None = None
    waiting: list[ToolCall] = []  # calls without a result yet, oldest first
    by_id: dict[str, ToolCall] = {}
    for i, msg in enumerate(messages):
        at = f"[{i}]"
        if not isinstance(msg, dict):
            raise err(at, "must be an object with 'role' and 'content'")
        role = msg.get("role")
        if not isinstance(role, str):
            raise err(f"{at}.role", "missing or not a string")
        content = text_of(msg.get("content"), where=partial(_at, err, f"{at}.content"))
        if strip is not None:
            content = strip(content)
        if role in ("system", "developer"):
            if system is None:
                system = content
        elif role == "user":
            if content.strip():
                turns.append(UserTurn(content=content))
        elif role == "assistant":
            turn = AgentTurn(content=content)
            raw_calls = msg.get("tool_calls") or []
            if msg.get("function_call"):
                raw_calls = [*raw_calls, {"type": "function", "function": msg["function_call"]}]
            if not isinstance(raw_calls, list):
                raise err(f"{at}.tool_calls", "must be a list")
            for j, raw in enumerate(raw_calls):
                call = _tool_call(raw, err=partial(_under, err, f"{at}.tool_calls[{j}]"))
                turn.tool_calls.append(call)
                waiting.append(call)
                if call.id:
                    by_id[call.id] = call
                if turn.handoff is None and HANDOFF_TOOL.search(call.name):
                    reason = call.arguments.get("summary") or call.arguments.get("reason")
                    turn.handoff = Handoff(reason=str(reason) if reason is not None else call.name)
            turns.append(turn)
        elif role in ("tool", "function"):
            call_id = msg.get("tool_call_id")
            name = msg.get("name")
            target = by_id.get(call_id) if isinstance(call_id, str) else None
            if target is None or target not in waiting:
                target = next((c for c in waiting if name is None or c.name == name), None)
            if target is None:
                turns.append(
                    ToolTurn(
                        name=name if isinstance(name, str) else None,
                        tool_call_id=call_id if isinstance(call_id, str) else None,
                        content=content,
                    )
                )
                continue
            waiting.remove(target)
            target.result = _parse_result(content)
            if error_prefix is not None and content.lstrip().startswith(error_prefix):
                target.error = content.strip()
        else:
            raise err(f"{at}.role", f"unknown role '{role}' (system, user, assistant, tool)")
    return turns, system


def _at(err: Callable[[str, str], ImportFormatError], where: str, problem: str) -> ImportFormatError:
    return err(where, problem)


def _under(err: Callable[[str, str], ImportFormatError], prefix: str, where: str, problem: str) -> ImportFormatError:
    return err(prefix + where, problem)


def _tool_call(raw: Any, *, err: Callable[[str, str], ImportFormatError]) -> ToolCall:
    if not isinstance(raw, dict):
        raise err("", "must be an object")
    fn = raw.get("function", raw)
    if not isinstance(fn, dict):
        raise err(".function", "must be an object with 'name' and 'arguments'")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise err(".function.name", "missing or not a string")
    args_raw = fn.get("arguments", {})
    call_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    if isinstance(args_raw, dict):
        return ToolCall(name=name, arguments=args_raw, id=call_id)
    if args_raw is None or args_raw == "":
        return ToolCall(name=name, id=call_id)
    if not isinstance(args_raw, str):
        raise err(".function.arguments", "must be a JSON string or an object")
    # Arguments the recorded model wrote badly are its failure: kept as data, not raised.
    try:
        parsed = loads(args_raw)
    except ValueError as exc:
        return ToolCall(name=name, id=call_id, error=f"invalid JSON arguments: {exc}")
    if not isinstance(parsed, dict):
        return ToolCall(name=name, id=call_id, error="arguments are JSON but not an object")
    return ToolCall(name=name, arguments=parsed, id=call_id)
