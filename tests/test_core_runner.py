"""The runner: concurrency, trials and seeds, timeouts, agent failures as data, outcomes,
variants, scoring hooks, interrupt and resume after a killed run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _core_helpers import line_simulator, script_suite, write

from evalkit.agents.base import AgentReply, TurnContext
from evalkit.core.errors import ConfigError
from evalkit.core.results import RunResult
from evalkit.core.transcript import Handoff, Outcome, StopReason
from evalkit.run.runfiles import JOURNAL, load_run, read_journal
from evalkit.run.runner import RunConfig, Runner, derive_seed
from evalkit.scenarios import load_suite

TESTS = Path(__file__).resolve().parent


def run(suite: Any, agent: str | None = None, **kw: Any) -> RunResult:
    kw.setdefault("progress", False)
    kw.setdefault("handle_signals", False)
    return Runner(RunConfig(suite=suite, agent=agent, **kw)).run_sync()


class Tracker:
    """Counts agents in flight at the same time (shared across sessions on purpose)."""

    in_flight = 0
    peak = 0

    def __init__(self, delay_ms: float = 50) -> None:
        self.delay = delay_ms / 1000

    async def respond(self, ctx: TurnContext) -> str:
        Tracker.in_flight += 1
        Tracker.peak = max(Tracker.peak, Tracker.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            Tracker.in_flight -= 1
        return "ok"


class SyncSleeper:
    """A blocking agent: must run in worker threads, not on the event loop."""

    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def respond(self, ctx: TurnContext) -> str:
        with SyncSleeper.lock:
            SyncSleeper.in_flight += 1
            SyncSleeper.peak = max(SyncSleeper.peak, SyncSleeper.in_flight)
        time.sleep(0.1)
        with SyncSleeper.lock:
            SyncSleeper.in_flight -= 1
        return "ok"


class Ender:
    def respond(self, ctx: TurnContext) -> AgentReply:
        if ctx.message.startswith("persona says 2"):
            return AgentReply(content="Handing you over.", handoff=Handoff(ticket_id="T-1"))
        return AgentReply(content="Anything else?", end_conversation=ctx.message == "bye")


def test_concurrency_overlaps_conversations(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 12, steps=2)
    Tracker.peak = 0
    result = run([suite], "test_core_runner:Tracker?delay_ms=100", out=tmp_path / "r", concurrency=6)
    assert len(result.conversations) == 12 and result.manifest.status == "complete"
    # Six conversations were in flight at once (measured by the agent, not by a clock, so a
    # loaded machine cannot fail it); the speed it buys is benchmarks/workers.py's business.
    assert Tracker.peak == 6
    latencies = [a.latency_ms for c in result.conversations for a in c.transcript.agent_turns]
    assert all(95 <= x < 1000 for x in latencies)


def test_sync_agents_run_in_threads(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 8, steps=2)
    SyncSleeper.peak = 0
    result = run([suite], "test_core_runner:SyncSleeper", out=tmp_path / "r", concurrency=8)
    assert SyncSleeper.peak >= 4  # blocking calls overlapped in threads instead of queueing
    assert all(c.transcript.outcome == Outcome.resolved for c in result.conversations)


def test_trials_have_distinct_deterministic_seeds_shared_across_variants(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 2, steps=1)
    variants = {"a": "evalkit.testing.agents:EchoAgent", "b": "evalkit.testing.agents:EchoAgent?prefix=B:"}
    r1 = run([suite], out=tmp_path / "r1", trials=3, seed=7, variants=variants)
    keys = [c.key for c in r1.conversations]
    assert len(keys) == 12 and len(set(keys)) == 12
    seeds = {
        (c.transcript.variant, c.transcript.scenario_id, c.transcript.trial): c.transcript.seed
        for c in r1.conversations
    }
    assert len({seeds[("a", "s000", t)] for t in range(3)}) == 3  # distinct per trial
    assert all(seeds[("a", s, t)] == seeds[("b", s, t)] for s in ("s000", "s001") for t in range(3))
    assert seeds[("a", "s001", 2)] == derive_seed(7, "s001", 2)
    r2 = run([suite], out=tmp_path / "r2", trials=3, seed=8, variants=variants)
    assert {c.transcript.seed for c in r2.conversations}.isdisjoint(set(seeds.values()))
    assert r1.manifest.variants == variants
    assert [c.transcript.turns[1].content for c in r1.conversations if c.key == ("b", "s000", 0)] == [
        "B:message 0 of 0"
    ]


def test_turn_timeout_records_error_and_run_goes_on(tmp_path: Path) -> None:
    write(tmp_path / "s" / "a.yaml", "id: hangs\nuser: {script: [one, two, three]}\n")
    write(tmp_path / "s" / "b.yaml", "id: fine\nuser: {script: [one]}\n")
    started = time.monotonic()
    result = run(
        [tmp_path / "s"],
        "evalkit.testing.agents:FlakyAgent?mode=hang&turns=[2]",
        out=tmp_path / "r",
        turn_timeout_s=0.2,
    )
    assert time.monotonic() - started < 3
    by = {c.transcript.scenario_id: c for c in result.conversations}
    t = by["hangs"].transcript
    assert (t.outcome, t.stop_reason) == (Outcome.error, StopReason.timeout)
    assert t.error == "turn 2: no reply within 0.2s (turn timeout)"
    assert len(t.user_turns) == 2 and t.agent_turns[-1].error is not None and by["hangs"].passed is False
    assert by["fine"].transcript.outcome == Outcome.resolved


def test_sync_hang_does_not_block_the_run(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 3, steps=1)
    started = time.monotonic()
    result = run(
        [suite],
        "evalkit.testing.agents:FlakyAgent?mode=sync_hang&turns=1&hang_s=8",
        out=tmp_path / "r",
        turn_timeout_s=0.1,
    )
    assert time.monotonic() - started < 6  # the 8 s hangs were abandoned, not waited for
    assert all(c.transcript.stop_reason == StopReason.timeout for c in result.conversations)


def test_conversation_timeout(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 1, steps=6)
    result = run(
        [suite],
        "evalkit.testing.agents:SlowAgent?delay_ms=100",
        out=tmp_path / "r",
        conversation_timeout_s=0.25,
    )
    t = result.conversations[0].transcript
    assert (t.outcome, t.stop_reason) == (Outcome.error, StopReason.timeout)
    assert "conversation timeout" in (t.error or "")
    assert 1 <= len(t.user_turns) <= 3  # stopped long before the 6 scripted turns
    assert t.turns[-1].role == "agent" and t.turns[-1].error == "cancelled: conversation timeout"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            "evalkit.testing.agents:FlakyAgent?mode=raise&turns=[1]",
            "turn 1: agent raised RuntimeError: flaky agent failed on turn 1",
        ),
        (
            "evalkit.testing.agents:FlakyAgent?mode=junk&turns=[1]",
            "turn 1: junk reply: reply field 'content'",
        ),
        ("test_core_runner:Tracker?delay_ms=0&bogus=1", None),
    ],
)
def test_agent_failures_are_data(tmp_path: Path, spec: str, error: str | None) -> None:
    suite = script_suite(tmp_path / "suite", 2, steps=2)
    if error is None:
        with pytest.raises(Exception, match="cannot call the factory"):
            run([suite], spec, out=tmp_path / "r")
        return
    result = run([suite], spec, out=tmp_path / "r")
    assert len(result.conversations) == 2
    for c in result.conversations:
        t = c.transcript
        assert t.outcome == Outcome.error and t.stop_reason == StopReason.agent_error
        assert t.error is not None and t.error.startswith(error) and "\n" not in t.error


def test_flaky_rate_is_seeded_and_some_conversations_survive(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 20, steps=1)
    spec = "evalkit.testing.agents:FlakyAgent?mode=raise&rate=0.5&seed=3"
    a = run([suite], spec, out=tmp_path / "a")
    b = run([suite], spec, out=tmp_path / "b")
    errs = [c.transcript.outcome == Outcome.error for c in a.conversations]
    assert 0 < sum(errs) < 20
    assert errs == [c.transcript.outcome == Outcome.error for c in b.conversations]


def test_factory_raising_and_end_state(tmp_path: Path) -> None:
    write(
        tmp_path / "s" / "a.yaml",
        "id: a\ninitial_state: {orders: {ORD-9: placed}}\nuser: {script: [cancel ORD-9]}\n",
    )
    ok = run([tmp_path / "s"], "evalkit.testing.agents:StatefulAgent", out=tmp_path / "r1")
    assert ok.conversations[0].transcript.end_state == {"orders": {"ORD-9": "cancelled"}, "tickets": []}
    bad = run([tmp_path / "s"], "evalkit.testing.agents:FlakyAgent?mode=nonsense", out=tmp_path / "r2")
    t = bad.conversations[0].transcript
    assert (
        t.outcome == Outcome.error
        and t.error is not None
        and t.error.startswith("creating the agent failed: ValueError")
    )


def test_outcomes_handoff_and_agent_ended(tmp_path: Path) -> None:
    write(tmp_path / "s" / "a.yaml", "id: ends\nuser: {script: [hi, bye, never sent]}\n")
    write(tmp_path / "s" / "b.yaml", "id: handoff\nuser: {persona: {goal: {description: get help}}}\n")
    write(
        tmp_path / "s" / "c.yaml",
        "id: stubborn\nuser: {persona: {goal: {description: x, accept_handoff: false}}}\n",
    )
    write(tmp_path / "s" / "d.yaml", "id: long\nmax_turns: 2\nuser: {script: [a, b, c]}\n")
    # A stand-in user whose persona turns are predictable, so the agent can hand off on cue.
    result = run(
        [tmp_path / "s"], "test_core_runner:Ender", out=tmp_path / "r", simulator_factory=line_simulator
    )
    by = {c.transcript.scenario_id: c.transcript for c in result.conversations}
    assert (by["ends"].stop_reason, by["ends"].outcome, len(by["ends"].user_turns)) == (
        StopReason.agent_ended,
        Outcome.resolved,
        2,
    )
    assert (by["handoff"].stop_reason, by["handoff"].outcome) == (StopReason.transferred, Outcome.escalated)
    assert (by["stubborn"].stop_reason, by["stubborn"].outcome) == (StopReason.goal_met, Outcome.escalated)
    assert len(by["stubborn"].user_turns) == 3
    assert (by["long"].stop_reason, by["long"].outcome, len(by["long"].user_turns)) == (
        StopReason.max_turns,
        Outcome.max_turns,
        2,
    )


def test_step_and_scenario_judges_are_scored(tmp_path: Path) -> None:
    write(
        tmp_path / "s" / "a.yaml",
        """
        id: judged
        user:
          script:
            - say: first
              expect:
                - said: {contains: first}
            - say: second
              expect:
                - said: {contains: first}
        expect:
          - outcome: resolved
        """,
    )
    write(tmp_path / "s" / "suite.yaml", "judges: [no_pii_leak]\n")
    result = run([tmp_path / "s"], "evalkit.testing.agents:EchoAgent", out=tmp_path / "r")
    c = result.conversations[0]
    got = [(v.judge, v.turn, v.passed) for v in c.verdicts]
    assert got == [
        ("no_pii_leak", None, True),
        ("outcome", None, True),
        ("said", 1, True),
        ("said", 2, False),
    ]
    assert c.passed is False and all(v.spec for v in c.verdicts)
    assert isinstance(c.metrics.get("csat_proxy"), float)


def test_existing_run_folder_needs_resume_and_matching_settings(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 2, steps=1)
    run([suite], "evalkit.testing.agents:EchoAgent", out=tmp_path / "r", seed=1)
    with pytest.raises(ConfigError, match="already holds a run"):
        run([suite], "evalkit.testing.agents:EchoAgent", out=tmp_path / "r")
    with pytest.raises(ConfigError, match="--seed 2 differs"):
        run([suite], "evalkit.testing.agents:EchoAgent", out=tmp_path / "r", resume=True, seed=2)
    again = run([], None, out=tmp_path / "r", resume=True)  # everything from the manifest
    assert again.manifest.status == "complete" and len(again.conversations) == 2
    assert len(read_journal(tmp_path / "r" / JOURNAL)[0]) == 2  # nothing redone


def test_no_agent_anywhere_is_a_config_error(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 1, steps=1)
    with pytest.raises(ConfigError, match="no agent for scenario 's000'"):
        run([suite], None, out=tmp_path / "r")
    write(suite / "suite.yaml", "agent: evalkit.testing.agents:EchoAgent\n")
    assert run([suite], None, out=tmp_path / "r2").manifest.agent == "evalkit.testing.agents:EchoAgent"


def test_run_accepts_a_loaded_suite_and_derives_defaults(tmp_path: Path) -> None:
    suite_dir = script_suite(
        tmp_path / "suite", 3, steps=1, extra="trials: 2\nagent: evalkit.testing.agents:EchoAgent\n"
    )
    result = run(load_suite([suite_dir], tags=["t0"]), None, out=tmp_path / "r")
    assert sorted(c.key for c in result.conversations) == [
        ("default", "s000", 0),
        ("default", "s000", 1),
        ("default", "s002", 0),
        ("default", "s002", 1),
    ]


# -- kill / interrupt / resume in a real process -----------------------------------------

DRIVER = """
import sys
sys.path[:0] = [{tests!r}]
from pathlib import Path
from evalkit.run.runner import RunConfig, Runner

resume = sys.argv[1] == "resume"
runner = Runner(RunConfig(suite=[{suite!r}], agent="evalkit.testing.agents:SlowAgent?delay_ms={delay}",
                          out={out!r}, concurrency=3, trials=2, progress=False, resume=resume))
run = runner.run_sync()
print(run.manifest.status, len(run.conversations))
"""


def _driver(tmp_path: Path, n: int, delay_ms: int = 60) -> tuple[Path, Path]:
    suite = script_suite(tmp_path / "suite", n, steps=2)
    out = tmp_path / "run"
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(DRIVER).format(tests=str(TESTS), suite=str(suite), out=str(out), delay=delay_ms)
    )
    return script, out


def _wait_for_lines(journal: Path, n: int, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"driver exited early: {proc.communicate()}")
        time.sleep(0.02)
    raise AssertionError("journal did not grow")


def _spawn(script: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), "fresh"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
    }


def test_resume_after_sigkill_runs_every_key_exactly_once(tmp_path: Path) -> None:
    script, out = _driver(tmp_path, 15)
    proc = _spawn(script)
    _wait_for_lines(out / JOURNAL, 4, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # Simulate the crash landing mid-write: a torn last line must be dropped, not fatal.
    with open(out / JOURNAL, "ab") as fh:
        fh.write(b'{"schema_version": 1, "run_id": "x", "transcr')
    before, _, note = read_journal(out / JOURNAL)
    assert note is not None and 4 <= len(before) < 30
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running"
    done = subprocess.run(
        [sys.executable, str(script), "resume"], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["complete", "30"]
    keys = Counter(r.key for r in read_journal(out / JOURNAL)[0])
    assert len(keys) == 30 and set(keys.values()) == {1}
    run_back = load_run(out)
    assert run_back.manifest.status == "complete" and run_back.manifest.extra["resumes"] == 1
    # conversations finished before the kill were kept as they were, not redone
    assert {r.transcript.started_at for r in before} <= {
        c.transcript.started_at for c in run_back.conversations
    }


def test_sigterm_interrupts_cleanly_then_resume_completes(tmp_path: Path) -> None:
    script, out = _driver(tmp_path, 15, delay_ms=150)  # slow enough that SIGTERM lands mid-run
    proc = _spawn(script)
    _wait_for_lines(out / JOURNAL, 3, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    status, n = stdout.split()
    assert status == "interrupted" and 3 <= int(n) < 30
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert (out / "results.parquet").exists() and (out / "summary.json").exists()
    done = subprocess.run(
        [sys.executable, str(script), "resume"], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert done.stdout.split() == ["complete", "30"], done.stderr
    keys = Counter(r.key for r in read_journal(out / JOURNAL)[0])
    assert len(keys) == 30 and set(keys.values()) == {1}


def test_persona_user_end_to_end_with_state_judge(tmp_path: Path) -> None:
    write(
        tmp_path / "s" / "p.yaml",
        """
        id: cancel-persona
        initial_state: {orders: {ORD-7: placed}}
        user:
          persona:
            goal:
              description: cancel my order
              intent: cancel
              done_when:
                - tool_called: {name: cancel_order, arguments: {order_id: ORD-7}}
            facts: {order_id: ORD-7}
        expect:
          - state: {contains: {orders: {ORD-7: cancelled}}}
        """,
    )
    result = run([tmp_path / "s"], "evalkit.testing.agents:StatefulAgent", out=tmp_path / "r", trials=3)
    assert [c.transcript.stop_reason for c in result.conversations] == [StopReason.goal_met] * 3
    assert all(c.passed for c in result.conversations)
    openings = {c.transcript.turns[0].content for c in result.conversations}
    assert len(openings) > 1  # distinct seeds, distinct phrasings
    # The same agent that forgets to act fails the state judge (the judge can fail).
    bad = run([tmp_path / "s"], 'evalkit.testing.agents:ScriptedAgent?replies=["Sure."]', out=tmp_path / "r2")
    assert bad.conversations[0].passed is False


class Pooled:
    """A factory handing out one shared object: reset() must clear it before each conversation."""

    instance: Pooled | None = None

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.resets = 0

    @classmethod
    def get(cls) -> Pooled:
        cls.instance = cls.instance or cls()
        return cls.instance

    async def reset(self) -> None:
        self.resets += 1
        self.seen = []

    def respond(self, ctx: TurnContext) -> str:
        self.seen.append(ctx.message)
        return f"seen {len(self.seen)}"

    def end_state(self) -> dict[str, Any]:
        return {"seen": len(self.seen)}


def test_reset_is_called_before_each_conversation(tmp_path: Path) -> None:
    Pooled.instance = None
    suite = script_suite(tmp_path / "suite", 3, steps=2)
    result = run([suite], "test_core_runner:Pooled.get", out=tmp_path / "r", concurrency=1)
    assert Pooled.instance is not None and Pooled.instance.resets == 3
    assert [c.transcript.end_state for c in result.conversations] == [{"seen": 2}] * 3


def test_bad_setup_leaves_no_run_folder(tmp_path: Path) -> None:
    suite = script_suite(tmp_path / "suite", 1, steps=1)
    with pytest.raises(Exception, match="no module named 'not_a_module_xyz'"):
        run([suite], "not_a_module_xyz:make", out=tmp_path / "r")
    with pytest.raises(Exception, match="health check failed"):
        run([suite], "http://127.0.0.1:9", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    # ... so fixing the typo and running again just works, without --resume.
    assert run([suite], "evalkit.testing.agents:EchoAgent", out=tmp_path / "r").manifest.status == "complete"


def test_importing_the_runner_does_not_load_the_model_client():
    """Offline runs start fast: the openai package (~1 s to import) loads only when a model
    role is configured (a --redact-pii run included)."""
    import subprocess
    import sys

    code = "import sys, evalkit.run.runner, evalkit.run.recorded; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
