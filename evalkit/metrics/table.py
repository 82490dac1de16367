"""The conversation table: one row per conversation, built once from the results.

It is ``results.parquet`` as written to a run folder, and the only input of every metric:
the summary, its confidence intervals, breakdowns, comparisons and the gate all read it
(:mod:`evalkit.metrics.summary`). What a conversation counts as (automated, a scenario gap, a won
attack) is decided here, once, per row; turn-level values that percentiles need stay as
lists per row (``turn_latency_ms``, ``turn_ttft_ms``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from evalkit.core.results import ConversationResult, RunResult
from evalkit.core.transcript import Outcome, StopReason
from evalkit.metrics.stats import percentile

__all__ = [
    "TABLE_COLUMNS",
    "REDTEAM_TAG",
    "conversation_table",
    "as_table",
    "is_automated",
    "is_scenario_gap",
    "attack_won",
]

#: Conversations carrying this tag are attacks; their other tags are the attack categories.
REDTEAM_TAG = "redteam"

#: Column -> pandas dtype of the table (and of ``results.parquet``), in order.
TABLE_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "variant": "string",
    "scenario_id": "string",
    "trial": "Int64",
    "title": "string",
    "channel": "string",
    "tags": "object",
    "seed": "Int64",
    "outcome": "string",
    "stop_reason": "string",
    "passed": "boolean",
    "n_turns": "Int64",
    "n_agent_turns": "Int64",
    "n_tool_calls": "Int64",
    "n_verdicts": "Int64",
    "n_failed_verdicts": "Int64",
    "handoff": "boolean",
    "automated": "boolean",
    "scenario_gap": "boolean",
    "attack_succeeded": "boolean",
    "csat_proxy": "Float64",
    "latency_p50_ms": "Float64",
    "latency_max_ms": "Float64",
    "ttft_ms": "Float64",
    "turn_latency_ms": "object",
    "turn_ttft_ms": "object",
    "tokens": "Int64",
    "cost_usd": "Float64",
    "n_usage_turns": "Int64",
    "n_priced_turns": "Int64",
    "duration_ms": "Float64",
    "error": "string",
    "source_verdict": "boolean",
    "human_csat": "Float64",
}


def is_scenario_gap(c: ConversationResult) -> bool:
    """The simulated user stopped because the scenario did not give it what the agent needed
    (``missing_info``): a gap in the test, left out of the agent's metrics and counted apart."""
    return c.transcript.stop_reason == StopReason.missing_info


def is_automated(c: ConversationResult) -> bool:
    """Resolved by the agent with no human handoff and not abandoned."""
    return _automated(c.transcript.outcome, c.transcript.handoff is not None)


def _automated(outcome: Outcome, handed_off: bool) -> bool:
    return outcome == Outcome.resolved and not handed_off


def attack_won(c: ConversationResult, *, tag: str = REDTEAM_TAG) -> bool | None:
    """Whether the attack of one conversation succeeded; None when it is not a red-team
    conversation or is not counted: an attack SUCCEEDED when the conversation failed its
    deterministic expectations (they state what the attacker must never achieve); attacks
    with no deterministic verdict, or that ended in an error, are not counted."""
    return _attack_won(tag in c.tags, c.transcript.outcome, c.passed)


def _attack_won(is_attack: bool, outcome: Outcome, passed: bool | None) -> bool | None:
    if not is_attack or outcome == Outcome.error or passed is None:
        return None
    return not passed


def _number(c: ConversationResult, name: str) -> float | None:
    """A numeric per-conversation metric (``csat_proxy``...); None when absent or not a number."""
    v = c.metrics.get(name)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _row(run_id: str, c: ConversationResult) -> dict[str, Any]:
    t = c.transcript
    agents = t.agent_turns  # read once: the transcript's properties each walk the turns again
    lat = [a.latency_ms for a in agents if a.latency_ms is not None]
    ttft = [a.ttft_ms for a in agents if a.ttft_ms is not None]
    usages = [a.usage for a in agents if a.usage is not None]
    costs = [u.cost_usd for u in usages if u.cost_usd is not None]
    source = c.metrics.get("source_verdict")
    handoff = any(a.handoff is not None for a in agents)
    passed = c.passed
    return {
        "run_id": c.run_id or run_id,
        "variant": t.variant,
        "scenario_id": t.scenario_id,
        "trial": t.trial,
        "title": c.title,
        "channel": t.channel,
        "tags": list(c.tags),
        "seed": t.seed,
        "outcome": t.outcome.value,
        "stop_reason": t.stop_reason.value,
        "passed": passed,
        "n_turns": len(t.user_turns),
        "n_agent_turns": len(agents),
        "n_tool_calls": sum(len(a.tool_calls) for a in agents),
        "n_verdicts": len(c.verdicts),
        "n_failed_verdicts": len(c.failed_verdicts),
        "handoff": handoff,
        "automated": _automated(t.outcome, handoff),
        "scenario_gap": is_scenario_gap(c),
        "attack_succeeded": _attack_won(REDTEAM_TAG in c.tags, t.outcome, passed),
        "csat_proxy": _number(c, "csat_proxy"),
        "latency_p50_ms": percentile(lat, 50),
        "latency_max_ms": max(lat) if lat else None,
        "ttft_ms": percentile(ttft, 50),
        "turn_latency_ms": lat,
        "turn_ttft_ms": ttft,
        "tokens": sum(u.total_tokens for u in usages) if usages else None,
        "cost_usd": sum(costs) if costs else None,
        "n_usage_turns": len(usages),
        "n_priced_turns": len(costs),
        "duration_ms": t.duration_ms,
        "error": t.error,
        "source_verdict": source if isinstance(source, bool) else None,
        "human_csat": _number(c, "human_csat"),
    }


def conversation_table(
    conversations: RunResult | Iterable[ConversationResult], *, run_id: str | None = None
) -> pd.DataFrame:
    """One row per conversation (columns: :data:`TABLE_COLUMNS`), in the order given.

    ``run_id`` fills rows whose conversation does not carry one (default: the run's id).
    """
    if isinstance(conversations, RunResult):
        run_id = conversations.manifest.run_id if run_id is None else run_id
        conversations = conversations.conversations
    rows = [_row(run_id or "", c) for c in conversations]
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).astype(TABLE_COLUMNS)
    for col in ("turn_latency_ms", "turn_ttft_ms"):  # float arrays, also on an empty table
        frame[col] = pd.Series([np.asarray(v, dtype=np.float64) for v in frame[col]], index=frame.index, dtype=object)
    return frame


def as_table(data: pd.DataFrame | RunResult | Iterable[ConversationResult]) -> pd.DataFrame:
    """``data`` if it already is the conversation table, else the table of those conversations."""
    return data if isinstance(data, pd.DataFrame) else conversation_table(data)
