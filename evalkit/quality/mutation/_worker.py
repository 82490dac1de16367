"""Worker processes: the clean run under coverage, and one mutant per process.

Each job runs in its own child process (``fork`` where available, so evalkit is already
imported and a mutant starts in milliseconds). The child drops any copy of the agent's
packages it inherited, installs the :class:`~evalkit.quality.mutation.mutants.MutantFinder` for its
mutant, and plays the conversations through the runner's own ``Runner.play_one`` (which plays each with
:func:`evalkit.run.play.play`, the one conversation loop). The mutant exists only in the child's memory: nothing is written to the
user's files, so a crash, a timeout kill or Ctrl-C cannot leave a mutated file behind.

The driver keeps ``jobs`` children alive at once and kills a child that runs past its
deadline (a mutant that loops forever is "killed by timeout").
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.quality.mutation.mutants import MutantFinder, Target

IMPORT_CONTEXT = "(import)"  # coverage context of the lines run while importing the agent


def _exc_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def purge(packages: Iterable[str]) -> None:
    """Forget every loaded module of ``packages`` so the next import reads them afresh."""
    tops = set(packages)
    for name in list(sys.modules):
        if name.split(".")[0] in tops:
            del sys.modules[name]
    importlib.invalidate_caches()


@dataclass(frozen=True)
class Play:
    """One conversation to play: the scenario, its trial and the agent spec."""

    scenario: Any  # evalkit.scenarios.Scenario
    trial: int
    spec: str


async def _play_all(
    suite: Any, plays: Sequence[Play], seed: int, on_result: Callable[[Play, Any, float], bool]
) -> None:
    from evalkit.agents.loader import load_agent
    from evalkit.run.runner import RunConfig, Runner

    runner = Runner(RunConfig(suite=suite, progress=False, handle_signals=False, seed=seed))
    for play in plays:
        t0 = time.monotonic()
        result = await runner.play_one(play.scenario, load_agent(play.spec), trial=play.trial, seed=seed)
        if on_result(play, result, time.monotonic() - t0):
            return


def _failed_verdicts(result: Any) -> list[dict[str, Any]]:
    from evalkit.core.results import JudgeKind

    out = [
        {"judge": v.judge, "spec": v.spec, "reason": " ".join((v.reason or "").split())[:300]}
        for v in result.verdicts
        if v.kind == JudgeKind.deterministic and (v.passed is False or v.error)
    ]
    if result.transcript.error is not None:
        out.append({"judge": "agent error", "spec": None, "reason": result.transcript.error[:300]})
    return out


def warm_up(suite: Any, plays: Sequence[Play], seed: int, packages: Sequence[str]) -> None:
    """Play one conversation in the driver so the modules every worker needs (runner,
    judges, simulators, the agent's own dependencies) are imported once before forking;
    what the warm-up imported of the agent's packages is dropped again (each worker imports
    its own copy), and what the caller had imported is put back as it was: a process that
    runs ``run_mutation`` keeps the classes it already holds (``isinstance`` still works)."""
    tops = set(packages)
    before = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] in tops}
    try:
        asyncio.run(_play_all(suite, plays[:1], seed, lambda *_: True))
    except Exception:  # a broken agent is reported by the clean run, with its reason
        pass
    finally:
        purge(packages)
        sys.modules.update(before)


# -- jobs (run in the child) ------------------------------------------------------------------
def clean_run(
    suite: Any, plays: Sequence[Play], seed: int, targets: Sequence[Target], packages: Sequence[str]
) -> dict[str, Any]:
    """Play every conversation on the clean agent under coverage, one coverage context per
    scenario; returns pass/fail and seconds per scenario and, per target file, the
    scenarios that ran each statement."""
    import coverage

    purge(packages)
    cov = coverage.Coverage(data_file=None, config_file=False, include=[str(t.path) for t in targets])
    cov.start()
    try:
        cov.switch_context(IMPORT_CONTEXT)
        for t in targets:
            try:
                importlib.import_module(t.module)
            except Exception as exc:  # the agent's own problem: reported by the conversations too
                return {"crash": f"cannot import {t.module}: {_exc_line(exc)}"}
        scenarios: dict[str, dict[str, Any]] = {}

        def record(play: Play, result: Any, seconds: float) -> bool:
            entry = scenarios.setdefault(play.scenario.id, {"passed": True, "seconds": 0.0, "why": []})
            entry["seconds"] += seconds
            if result.passed is not True:
                entry["passed"] = False
                entry["why"] += [v["judge"] for v in _failed_verdicts(result)] or ["no deterministic verdict"]
            return False

        async def main() -> None:
            for play in plays:
                cov.switch_context(play.scenario.id)
                await _play_all(suite, [play], seed, record)

        asyncio.run(main())
    finally:
        cov.stop()
    data = cov.get_data()
    lines: dict[str, dict[int, list[str]]] = {}
    statements: dict[str, list[int]] = {}
    for t in targets:
        by_line = data.contexts_by_lineno(str(t.path))
        lines[str(t.path)] = {int(k): sorted(v) for k, v in by_line.items()}
        statements[str(t.path)] = sorted(cov.analysis2(str(t.path))[1])
    return {"scenarios": scenarios, "lines": lines, "statements": statements}


def play_mutant(
    suite: Any, plays: Sequence[Play], seed: int, target: Target, source: str, packages: Sequence[str]
) -> dict[str, Any]:
    """Play ``plays`` against the agent with ``source`` in place of ``target``; stop at the
    first conversation that fails."""
    sys.dont_write_bytecode = True
    purge(packages)
    MutantFinder(target.module, target.path, source).install()
    try:
        importlib.import_module(target.module)
    except BaseException as exc:  # the mutant does not even import: killed
        return {"killed_by": None, "verdicts": [], "error": f"import failed: {_exc_line(exc)}", "played": 0}
    out: dict[str, Any] = {"killed_by": None, "verdicts": [], "error": None, "played": 0}

    def record(play: Play, result: Any, seconds: float) -> bool:
        out["played"] += 1
        if result.passed is not True:
            out["killed_by"] = play.scenario.id
            out["verdicts"] = _failed_verdicts(result)
            out["error"] = result.transcript.error
            return True
        return False

    try:
        asyncio.run(_play_all(suite, plays, seed, record))
    except Exception as exc:  # the mutant broke the loop itself (e.g. in the agent factory)
        out["error"] = f"agent failed: {_exc_line(exc)}"
        out["killed_by"] = out["killed_by"] or (
            plays[out["played"]].scenario.id if out["played"] < len(plays) else None
        )
    return out


# -- the pool (driver side) -------------------------------------------------------------------
@dataclass
class Job:
    """A function to run in a child, with its deadline in seconds (None: no limit)."""

    key: Any
    fn: Callable[..., dict[str, Any]]
    args: tuple[Any, ...]
    timeout: float | None


def _child(
    conn: multiprocessing.connection.Connection, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]
) -> None:
    # Ctrl-C reaches the whole process group: only the driver handles it (and kills us), so
    # an interrupted worker is never recorded as a mutant killed by a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        payload = fn(*args)
    except BaseException as exc:  # anything the job raised is the answer, never a hang
        payload = {"crash": _exc_line(exc)}
    try:
        conn.send(payload)
    finally:
        conn.close()
        # Skip the parent's atexit handlers and buffered files inherited by fork.
        os._exit(0)


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_pool(
    jobs: Iterable[Job], workers: int, on_done: Callable[[Job, dict[str, Any], float], None]
) -> None:
    """Run ``jobs`` in at most ``workers`` child processes at once. ``on_done(job, payload,
    seconds)`` gets ``{"timeout": True}`` for a job killed at its deadline and
    ``{"crash": ...}`` for a child that died without answering. Every child is killed on the
    way out (Ctrl-C included)."""
    ctx = _context()
    pending = deque(jobs)
    live: dict[Any, tuple[Any, Job, float, float]] = {}
    try:
        while pending or live:
            while pending and len(live) < workers:
                job = pending.popleft()
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(writer, job.fn, job.args), daemon=True)
                proc.start()
                writer.close()
                started = time.monotonic()
                deadline = started + job.timeout if job.timeout is not None else float("inf")
                live[reader] = (proc, job, deadline, started)
            nearest = min(d for _, _, d, _ in live.values())
            wait_s = None if nearest == float("inf") else max(0.0, nearest - time.monotonic())
            for ready in multiprocessing.connection.wait(list(live), timeout=wait_s):
                proc, job, _, started = live.pop(ready)
                conn: Any = ready  # one of our Pipe readers
                payload: dict[str, Any]
                try:
                    payload = conn.recv()
                except (EOFError, OSError):
                    proc.join()
                    payload = {"crash": f"worker died (exit code {proc.exitcode})"}
                conn.close()
                proc.join()
                on_done(job, payload, time.monotonic() - started)
            now = time.monotonic()
            for conn, (proc, job, deadline, started) in list(live.items()):
                if now >= deadline:
                    proc.kill()
                    proc.join()
                    conn.close()
                    del live[conn]
                    on_done(job, {"timeout": True}, now - started)
    finally:
        for conn, (proc, _, _, _) in live.items():
            proc.kill()
            proc.join()
            conn.close()
