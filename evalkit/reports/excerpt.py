"""Plain-text transcript excerpts around a failure (JUnit, Markdown, the pytest plugin)."""

from __future__ import annotations

import json

from evalkit.core.results import ConversationResult, Verdict
from evalkit.core.transcript import Transcript

__all__ = ["failing_turn", "transcript_excerpt", "failure_text"]


def _short(text: str, limit: int) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def failing_turn(c: ConversationResult) -> int | None:
    """The exchange number of the first failed verdict that points at one."""
    for v in c.failed_verdicts:
        if v.turn is not None:
            return v.turn
    return None


def transcript_excerpt(
    t: Transcript, turn: int | None = None, *, context: int = 1, width: int = 300, max_exchanges: int = 12
) -> str:
    """The exchanges around ``turn`` (all of them, up to ``max_exchanges``, when ``None``).

    One line per message, ``>>`` marking the exchange that failed; tool calls and handoffs
    are shown under the agent reply that made them.
    """
    exchanges = t.exchanges()
    if turn is not None:
        shown = [e for e in exchanges if turn - context <= e[0] <= turn + context]
    else:
        shown = exchanges[:max_exchanges]
    lines: list[str] = []
    if shown and exchanges and shown[0][0] > exchanges[0][0]:
        lines.append("   …")
    for n, user, agents in shown:
        mark = ">>" if turn is not None and n == turn else "  "
        if user is not None:
            lines.append(f"{mark} [{n}] user: {_short(user.content, width)}")
        for a in agents:
            text = _short(a.content, width) if a.content else "(no text)"
            lat = f" ({a.latency_ms:,.0f} ms)" if a.latency_ms is not None else ""
            lines.append(f"{mark} [{n}] agent{lat}: {text}")
            for call in a.tool_calls:
                args = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
                res = f"error: {call.error}" if call.error else json.dumps(call.result, ensure_ascii=False, default=str)
                lines.append(f"{mark}        tool {call.name}({_short(args, 120)}) -> {_short(res, 120)}")
            if a.handoff is not None:
                lines.append(
                    f"{mark}        handoff to a human (ticket {a.handoff.ticket_id or '-'}, {a.handoff.reason or 'no reason'})"
                )
            if a.error:
                lines.append(f"{mark}        error: {_short(a.error, width)}")
    if shown and exchanges and shown[-1][0] < exchanges[-1][0]:
        lines.append("   …")
    if t.error:
        lines.append(f"   conversation error: {_short(t.error, width)}")
    lines.append(f"   ended: {t.outcome} ({t.stop_reason})")
    return "\n".join(lines)


def _verdict_line(v: Verdict) -> str:
    where = f" at turn {v.turn}" if v.turn is not None else ""
    label = v.spec or v.judge
    if v.error:
        return f"{label}{where}: judge error: {v.error}"
    return f"{label}{where}: {v.reason or 'failed'}"


def failure_text(c: ConversationResult, *, context: int = 1) -> str:
    """Failed verdicts (one per line) and the transcript excerpt around the first failure."""
    lines = [f"FAILED {_verdict_line(v)}" for v in c.failed_verdicts]
    if c.transcript.error:
        lines.insert(0, f"AGENT ERROR: {c.transcript.error}")
    lines.append("")
    lines.append("transcript:")
    lines.append(transcript_excerpt(c.transcript, failing_turn(c), context=context))
    return "\n".join(lines)
