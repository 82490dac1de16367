"""Shared plumbing for the HTML pages: safe JSON embedding, transcript payloads, assets.

Everything a page shows from a run (transcripts, tool arguments, titles, judge reasons)
travels to the browser as JSON inside ``<script type="application/json">`` and is put
into the page with ``textContent`` by our own JavaScript, so hostile text stays text.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from evalkit.core._plural import plural
from evalkit.core.results import ConversationResult, Verdict
from evalkit.core.transcript import AgentTurn, ToolCall, ToolTurn, UserTurn

__all__ = [
    "COMPRESS_ABOVE_BYTES",
    "CHUNK_SIZE",
    "script_json",
    "verdict_payload",
    "join_nonempty",
    "scrub",
    "transcript_payload",
    "transcript_store",
    "asset",
    "plotly_js",
    "environment",
    "content_security_policy",
]

# Above this many bytes of transcript JSON the transcripts are gzipped (per chunk) and
# base64-encoded; the browser inflates one chunk when a transcript in it is opened.
COMPRESS_ABOVE_BYTES = 1_000_000
CHUNK_SIZE = 200

_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def scrub(obj: Any) -> Any:
    """Replace NaN/inf (which JSON cannot carry) with None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): scrub(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [scrub(v) for v in obj]
    return obj


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(scrub(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def script_json(obj: Any) -> Markup:
    """JSON safe to place inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as ``\\u00XX`` escapes so no ``</script>`` or
    ``<!--`` can end or change the script element; U+2028/2029 are escaped for old parsers.
    """
    return Markup(_dumps(obj).translate(_SCRIPT_ESCAPES))


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def verdict_payload(v: Verdict) -> dict[str, Any]:
    """One verdict as the browser sees it (keys omitted when empty)."""
    out: dict[str, Any] = {"judge": v.judge, "kind": v.kind.value}
    if v.spec:
        out["spec"] = v.spec
    if v.passed is not None:
        out["passed"] = v.passed
    if v.score is not None:
        out["score"] = _r(v.score, 3)
    if v.label:
        out["label"] = v.label
    if v.reason:
        out["reason"] = v.reason
    if v.skipped:
        out["skipped"] = v.skipped
    if v.error:
        out["error"] = v.error
    if v.turn is not None:
        out["turn"] = v.turn
    return out


def _tool_payload(tc: ToolCall) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tc.name, "arguments": tc.arguments}
    if tc.result is not None:
        out["result"] = tc.result
    if tc.error is not None:
        out["error"] = tc.error
    return out


def transcript_payload(c: ConversationResult) -> dict[str, Any]:
    """A conversation for the transcript viewer: turns (with exchange numbers) and verdicts."""
    t = c.transcript
    turns: list[dict[str, Any]] = []
    exchange = 0
    for turn in t.turns:
        if isinstance(turn, UserTurn):
            exchange += 1
            turns.append({"role": "user", "x": exchange, "content": turn.content})
        elif isinstance(turn, AgentTurn):
            a: dict[str, Any] = {"role": "agent", "x": exchange, "content": turn.content}
            if turn.latency_ms is not None:
                a["latency_ms"] = _r(turn.latency_ms)
            if turn.ttft_ms is not None:
                a["ttft_ms"] = _r(turn.ttft_ms)
            if turn.tool_calls:
                a["tools"] = [_tool_payload(tc) for tc in turn.tool_calls]
            if turn.handoff is not None:
                a["handoff"] = turn.handoff.model_dump(exclude_none=True)
            if turn.error:
                a["error"] = turn.error
            if turn.usage is not None:
                a["tokens"] = turn.usage.total_tokens
            turns.append(a)
        elif isinstance(turn, ToolTurn):
            tt: dict[str, Any] = {"role": "tool", "x": exchange, "content": turn.content}
            if turn.name:
                tt["name"] = turn.name
            turns.append(tt)
    out: dict[str, Any] = {
        "scenario_id": t.scenario_id,
        "title": c.title,
        "variant": t.variant,
        "trial": t.trial,
        "channel": t.channel,
        "outcome": t.outcome.value,
        "stop_reason": t.stop_reason.value,
        "passed": c.passed,
        "turns": turns,
        "verdicts": [verdict_payload(v) for v in c.verdicts],
    }
    if t.error:
        out["error"] = t.error
    if t.duration_ms is not None:
        out["duration_ms"] = _r(t.duration_ms)
    if t.end_state:
        out["end_state"] = t.end_state
    metrics = {k: v for k, v in c.metrics.items() if v is not None}
    if metrics:
        out["metrics"] = scrub(metrics)
    return out


def transcript_store(
    conversations: Sequence[ConversationResult], *, compress: bool | None = None
) -> dict[str, Any]:
    """Every transcript, in chunks of ``CHUNK_SIZE``: plain JSON, or gzip+base64 when large.

    Conversation ``i`` lives at ``chunks[i // chunk_size][i % chunk_size]``. With
    ``compress=None`` the choice is automatic (compressed above ~1 MB of JSON) so small
    reports stay readable and large ones stay small.
    """
    payloads = [transcript_payload(c) for c in conversations]
    chunks = [payloads[i : i + CHUNK_SIZE] for i in range(0, len(payloads), CHUNK_SIZE)]
    encoded = [_dumps(ch) for ch in chunks]
    if compress is None:
        compress = sum(len(e) for e in encoded) > COMPRESS_ABOVE_BYTES
    if not compress:
        return {"encoding": "json", "chunk_size": CHUNK_SIZE, "chunks": chunks}
    blobs = [
        base64.b64encode(gzip.compress(e.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")
        for e in encoded
    ]
    return {"encoding": "gzip+base64", "chunk_size": CHUNK_SIZE, "chunks": blobs}


@cache
def asset(name: str) -> str:
    """The text of one of our own CSS/JS files from ``evalkit/reports/assets``."""
    return resources.files("evalkit.reports").joinpath("assets", name).read_text("utf-8")


@cache
def plotly_js() -> str:
    """plotly.js from the installed ``plotly`` package, inlined so the page opens offline."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # Inlined inside <script>: make sure nothing in it can close the element early.
    return js.replace("</script", "<\\/script").replace("<!--", "<\\!--")


@cache
def environment() -> Environment:
    """The Jinja environment for our templates; autoescaping is always on."""
    env = Environment(
        loader=PackageLoader("evalkit.reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # "1 scenario", "2 scenarios": counted nouns read right in every template.
    env.filters["plural"] = plural
    return env


def join_nonempty(parts: Iterable[str | None], sep: str = " · ") -> str:
    return sep.join(p for p in parts if p)


def content_security_policy(inline_scripts: Iterable[str]) -> str:
    """A CSP that allows exactly our inline scripts (by hash) and no network at all.

    A second line of defence behind escaping: even if markup were ever injected, a
    ``<script>`` or ``onerror=`` from the data could not run, and nothing can be fetched.
    """
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
        for s in inline_scripts
    )
    return (
        "default-src 'none'; "
        f"script-src {hashes}; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
