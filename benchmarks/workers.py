"""Past one process: speed-up of ``--workers 2`` and ``--ray`` (2 CPUs), the driver's memory
while it streams many conversations from Ray, and the journal's throughput (the driver's limit).

Three measurements, printed (this is a benchmark, not a timed test):

1. **speed-up**: the bundled offline suite (``datasets/support``, the reference agent's rules
   engine, offline users, deterministic judges) at ``--n`` conversations (default 2,565:
   ``--trials 15``), once in one process, once with ``--workers 2``, once with ``--ray
   --workers 2`` (a local Ray started by the run, 2 actors). Each is a child ``evalkit run``; wall time includes start-up
   (and Ray's start), and "play" is the manifest's ``duration_s`` (from the first item sent to
   the last one journaled, plus writing the tables and the report).
2. **driver memory**: ``--stream`` conversations (default 20,000; the issue asks for 100,000)
   of a one-turn scripted scenario against a trivial Python agent, on Ray; the driver's
   resident set size is sampled from ``/proc`` as the journal grows, so a growth with the run
   shows up as a rising column.
3. **journal throughput**: :meth:`evalkit.run.runfolder.RunFolder.append_many` (mask, serialise,
   write, fsync) of ``--journal`` conversations in a row, one per fsync (one process) and
   eight per fsync (a worker's batch at ``--concurrency 8``): the most conversations a second
   one driver can record, whatever the number of workers.

    python benchmarks/workers.py                       # all three (several minutes)
    python benchmarks/workers.py --only speedup --n 5130
    python benchmarks/workers.py --only memory --stream 100000

Needs Ray for 1 (its third run) and 2: ``pip install 'evalkit-support[ray]'``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "datasets" / "support"


def _env(extra_path: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "OPENAI_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    return env


def _rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in kB, or (0, 0) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    vals = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines() if line.startswith(("VmRSS", "VmHWM"))}
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


def _run(args: list[str], out: Path, *, cwd: Path = ROOT, extra_path: str | None = None,
         sample: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "evalkit", "run", *args, "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=_env(extra_path))
    samples: list[tuple[int, int]] = []  # (journal lines, RSS kB)
    progress: list[tuple[float, int]] = []  # (seconds since start, journal lines)
    hwm = 0
    journal = out / "conversations.jsonl"
    while proc.poll() is None:
        lines = 0
        if journal.is_file():
            with open(journal, "rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        progress.append((time.perf_counter() - t0, lines))
        if sample:
            rss, peak = _rss_kb(proc.pid)
            hwm = max(hwm, peak)
            if rss:
                samples.append((lines, rss))
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        sys.exit(f"evalkit run {' '.join(args)} failed ({proc.returncode}): {err[-800:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall": wall, "play": manifest.get("duration_s"), "n": manifest.get("n_planned"),
            "extra": manifest.get("extra", {}), "samples": samples, "hwm_kb": hwm,
            "steady": _steady_rate(progress, int(manifest.get("n_planned") or 0))}


def _steady_rate(progress: list[tuple[float, int]], n: int) -> float:
    """Conversations a second while the journal grew from 10 % to 90 % of ``n`` (start-up,
    Ray's start and writing the report left out)."""
    lo = next(((t, k) for t, k in progress if k >= 0.1 * n), None)
    hi = next(((t, k) for t, k in progress if k >= 0.9 * n), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return float("nan")
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


def speedup(n: int) -> None:
    from evalkit.scenarios import load_suite

    s = len(load_suite([SUITE]).scenarios)
    trials = math.ceil(n / s)
    print(f"1. offline suite, {s} scenarios x {trials} trials = {s * trials} conversations")
    print("   wall: the whole command (start-up, Ray's start, the report); steady: conversations a second")
    print("   while the journal grew from 10 % to 90 %")
    print(f"   {'backend':<17}{'wall s':>8}{'speed-up':>10}{'steady/s':>10}{'speed-up':>10}")
    base: tuple[float, float] | None = None
    for label, extra in (("1 process", []), ("--workers 2", ["--workers", "2"]),
                         ("--ray, 2 actors", ["--ray", "--workers", "2"])):
        with tempfile.TemporaryDirectory() as tmp:
            r = _run([str(SUITE), "--trials", str(trials), *extra], Path(tmp) / "run")
        wall, steady = float(r["wall"]), float(r["steady"])
        base = base or (wall, steady)
        print(f"   {label:<17}{wall:>8.1f}{base[0] / wall:>9.2f}x{steady:>10.1f}{steady / base[1]:>9.2f}x",
              flush=True)


TRIVIAL_AGENT = textwrap.dedent("""
    class Agent:
        def respond(self, ctx):
            return "ok"

    def create(session=None):
        return Agent()
""")


def memory(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "trivial_agent.py").write_text(TRIVIAL_AGENT)
        suite = folder / "suite"
        suite.mkdir()
        scenarios = max(1, math.ceil(n / 1000))
        trials = math.ceil(n / scenarios)
        lines = ["scenarios:"] + [
            f"  - id: t{i:04d}\n    user:\n      script:\n        - say: hello" for i in range(scenarios)
        ]
        (suite / "scenarios.yaml").write_text("\n".join(lines) + "\n")
        r = _run([str(suite), "--agent", "trivial_agent:create", "--trials", str(trials), "--ray",
                  "--concurrency", "16"], folder / "run", cwd=folder, extra_path=str(folder), sample=True)
    total = scenarios * trials
    samples: list[tuple[int, int]] = r["samples"]
    print(f"\n2. driver RSS streaming {total} one-turn conversations of a trivial agent through Ray "
          f"({r['extra'].get('workers')} actors): wall {float(r['wall']):.1f} s, "
          f"{total / float(r['wall']):.0f} conv/s")
    print(f"   {'journaled':>10}{'driver RSS MB':>15}")
    shown = set()
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        target = q * total
        near = min(samples, key=lambda s: abs(s[0] - target)) if samples else None
        if near is not None and near not in shown:
            shown.add(near)
            print(f"   {near[0]:>10}{near[1] / 1024:>15.0f}")
    print(f"   peak (VmHWM, including writing the tables and the report): {int(r['hwm_kb']) / 1024:.0f} MB")


def journal_throughput(n: int) -> None:
    from evalkit.core.results import ConversationResult, RunManifest
    from evalkit.core.transcript import AgentTurn, Transcript, UserTurn
    from evalkit.run.runfolder import Existing, RunFolder

    def result(i: int) -> ConversationResult:
        t = Transcript(scenario_id="s", trial=i, turns=[UserTurn(content="hello"), AgentTurn(content="ok")])
        return ConversationResult(run_id="bench", transcript=t)

    print(f"\n3. journal: {n} one-turn conversations (mask, serialise, write, fsync)")
    for batch in (1, 8):  # one process fsyncs each conversation; workers' batches (-j 8) one fsync each
        with tempfile.TemporaryDirectory() as tmp:
            folder = RunFolder(Path(tmp) / "run").claim(Existing.new)
            try:
                folder.begin(RunManifest(run_id="bench", evalkit_version="bench", suites=[], seed=0,
                                         status="running"))
                t0 = time.perf_counter()
                for i in range(0, n, batch):
                    folder.append_many([result(k) for k in range(i, min(n, i + batch))])
                elapsed = time.perf_counter() - t0
            finally:
                folder.close()
        print(f"   {batch} per fsync: {elapsed:.2f} s = {n / elapsed:.0f} conv/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2565, help="conversations of the offline suite (1.)")
    parser.add_argument("--stream", type=int, default=20000, help="trivial conversations through Ray (2.)")
    parser.add_argument("--journal", type=int, default=2000, help="journal appends (3.)")
    parser.add_argument("--only", choices=["speedup", "memory", "journal"])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (figures on a shared "
          "machine are noisy)\n")
    if args.only in (None, "speedup"):
        speedup(args.n)
    if args.only in (None, "memory"):
        memory(args.stream)
    if args.only in (None, "journal"):
        journal_throughput(args.journal)


if __name__ == "__main__":
    main()
