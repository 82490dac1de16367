"""Prompt plumbing shared by LLM judges and simulated users: transcripts as text, and
versioned Jinja2 templates.

Every template sets ``{% set version = "name/N" %}`` at its top; the version is recorded
on each verdict (``details.prompt_version``) so a prompt change is visible in reports and
comparisons. Bump it whenever the wording changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from evalkit.core.transcript import AgentTurn, ToolTurn, Transcript, UserTurn

__all__ = ["Prompt", "TOOL_RESULT_CHARS", "cut", "render_prompt", "render_transcript"]


@dataclass(frozen=True)
class Prompt:
    """A rendered template and its version string."""

    text: str
    version: str


@lru_cache(maxsize=8)
def _env(package: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "prompts"),
        auto_reload=False,  # package files: no stat() of the template on every render
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly, never silently
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render_prompt(package: str, template: str, /, **variables: Any) -> Prompt:
    """Render ``<package>/prompts/<template>`` with ``variables``."""
    module = _env(package).get_template(template).make_module(variables)
    version = getattr(module, "version", None)
    if not version:
        raise RuntimeError(f"prompt template {package}/prompts/{template} sets no version")
    return Prompt(text=str(module).strip(), version=str(version))


# How much of each tool result a judge sees by default: enough for any ordinary lookup or
# write confirmation (a judge that sees a cut result says "not confirmed" about what the tool
# did confirm), bounded so one huge result cannot crowd the conversation out of the prompt.
TOOL_RESULT_CHARS = 4000


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut(text: str, limit: int | None) -> str:
    """``text`` on one line, cut at ``limit`` characters with a marker that says how much is left
    out (``None``: never cut)."""
    text = " ".join(str(text).split())
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f" …[cut: {len(text) - limit} more characters not shown]"


def render_transcript(
    transcript: Transcript,
    *,
    window: tuple[int, int] | None = None,
    tools: bool = True,
    user_label: str = "Customer",
    agent_label: str = "Agent",
    tool_result_chars: int | None = TOOL_RESULT_CHARS,
) -> str:
    """The conversation as numbered plain text, tool calls and handoffs included.

    Each tool result (or error) is shown whole up to ``tool_result_chars`` characters
    (``None``: always whole); a longer one ends with a marker saying how much was cut.

    With ``window`` the exchanges after ``window[1]`` are left out (the judge must not see
    the future of the turn it judges) and the judged ones are marked.
    """
    lines: list[str] = []
    n = 0
    for turn in transcript.turns:
        if isinstance(turn, UserTurn):
            n += 1
            if window is not None and n > window[1]:
                break
            mark = " [judged]" if window is not None and window[0] <= n <= window[1] else ""
            lines.append(f"[{n}] {user_label}{mark}: {turn.content}")
        elif isinstance(turn, AgentTurn):
            if window is not None and n > window[1]:
                break
            if tools:
                for call in turn.tool_calls:
                    args = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
                    outcome = (
                        f"error: {cut(call.error, tool_result_chars)}"
                        if call.error
                        else cut(json.dumps(call.result, ensure_ascii=False, default=str), tool_result_chars)
                    )
                    lines.append(f"    ({agent_label} called tool {call.name}({args}) -> {outcome})")
            if turn.error:
                lines.append(f"[{n}] {agent_label}: <failed to answer: {_clip(turn.error, 200)}>")
            elif turn.content:
                lines.append(f"[{n}] {agent_label}: {turn.content}")
            if turn.handoff is not None:
                why = f" (reason: {turn.handoff.reason})" if turn.handoff.reason else ""
                lines.append(f"    ({agent_label} handed the conversation to a human{why})")
        elif isinstance(turn, ToolTurn) and tools:
            lines.append(f"    (tool {turn.name or ''} returned: {cut(turn.content, tool_result_chars)})")
    return "\n".join(lines) if lines else "(empty conversation)"
