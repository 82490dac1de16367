"""evalkit's own HTTP adapter (SSE streaming) against the service: the bundled suite passes over HTTP."""

from __future__ import annotations

from pathlib import Path

from _service_client import FRONT_END_KEY
from _service_server import serve

from evalkit.run.runner import RunConfig, Runner

SUITE = Path(__file__).resolve().parents[1] / "datasets" / "support"


def test_support_suite_subset_passes_over_http(tmp_path):
    # evalkit plays the shop's front end: the identity key in the URL (sent as Basic
    # credentials) vouches for each scenario's customer; every session's token is carried.
    with serve(identity_key=FRONT_END_KEY) as (app, base):
        result = Runner(
            RunConfig(
                suite=[str(SUITE)],
                agent=base.replace("http://", f"http://evalkit:{FRONT_END_KEY}@"),
                tags=["channels"],
                out=tmp_path / "run",
                progress=False,
                handle_signals=False,
                concurrency=4,
            )
        ).run_sync()
        pool = app.state.pool
        live, created = len(pool), pool.created
    convs = result.conversations
    assert len(convs) >= 14
    failed = {c.transcript.scenario_id: [v.reason for v in c.verdicts if v.passed is False]
              for c in convs if c.passed is not True}
    assert failed == {}
    # Streaming was used (time to first token recorded); each conversation had its own
    # session, and evalkit freed every one with DELETE at the end.
    assert all(a.ttft_ms is not None for c in convs for a in c.transcript.agent_turns)
    assert created == len(convs) and live == 0
    # The end state came over HTTP: a handoff scenario's ticket is in it.
    handoff = next(c for c in convs if c.transcript.scenario_id == "whatsapp-handoff")
    assert handoff.transcript.end_state["tickets"][0]["customer_id"] == "CUST-0003"
