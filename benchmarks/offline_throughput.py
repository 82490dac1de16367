"""Offline throughput and memory: the bundled suite, the reference agent's rules engine,
offline users (scripts replayed, personas played by the offline persona simulator) and
deterministic judges, as a user runs it: ``evalkit run datasets/support --trials K``.

The bundled suite has S scenarios; ``--n`` conversations means ``K = ceil(n / S)`` trials
(so slightly more than n run; the figures are scaled to n). Each run is a child process, so
its wall time includes start-up, suite loading and writing every run file and the report,
and its peak RSS is the child's own (``getrusage(RUSAGE_CHILDREN)``).

Targets: 1,000 conversations in <= 20 s on this 2-core machine; a 10,000-conversation
run under 1 GiB peak RSS.

    python benchmarks/offline_throughput.py                  # 1,000 conversations, twice
    python benchmarks/offline_throughput.py --n 10000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "datasets" / "support"


def n_scenarios() -> int:
    from evalkit.scenarios import load_suite

    return len(load_suite([SUITE]).scenarios)


def one(trials: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "evalkit", "run", str(SUITE), "--trials", str(trials), "--out", str(out),
               "--concurrency", str(concurrency)]
        # RUSAGE_CHILDREN's ru_maxrss is the largest child so far, so each run goes through a
        # fresh wrapper process that reports its own (single) child's peak.
        wrapper = (
            "import resource, subprocess, sys, json, time; t=time.perf_counter(); "
            "p=subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
            "u=resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(json.dumps({'rc': p.returncode, 'wall': time.perf_counter()-t, 'rss_kb': u.ru_maxrss, "
            "'cpu': u.ru_utime+u.ru_stime, 'err': p.stderr[-500:]}))"
        )
        proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, cwd=ROOT)
        data = json.loads(proc.stdout)
        if data["rc"] not in (0, 1):  # 1: the suite's own gate may fail; the run still completed
            sys.exit(f"evalkit run failed ({data['rc']}): {data['err']}")
        summary = json.loads((out / "summary.json").read_text())
        manifest = json.loads((out / "manifest.json").read_text())
        data["n"] = summary.get("n_conversations") or manifest.get("n_planned")
        data["errors"] = summary.get("n_errors")
        data["status"] = manifest.get("status")
        data["run_s"] = manifest.get("duration_s")
        return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="conversations (default 1,000)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="evalkit run --concurrency (default 8)")
    args = parser.parse_args()
    s = n_scenarios()
    trials = math.ceil(args.n / s)
    print(f"bundled suite: {s} scenarios x {trials} trials = {s * trials:,} conversations "
          f"(concurrency {args.concurrency}); load average {os.getloadavg()[0]:.1f}")
    results = []
    for i in range(args.repeat):
        t0 = time.perf_counter()
        r = one(trials, args.concurrency)
        r["outer"] = time.perf_counter() - t0
        results.append(r)
        scaled = r["wall"] * args.n / r["n"]
        print(f"run {i + 1}: {r['n']:,} conversations ({r['errors']} errors, {r['status']}) in {r['wall']:.1f} s wall "
              f"(runner {r['run_s']:.1f} s; {r['n'] / r['wall']:.0f} conversations/s), {r['cpu']:.1f} s CPU, "
              f"peak RSS {r['rss_kb'] / 1024:.0f} MiB; scaled to {args.n:,}: {scaled:.1f} s")
    best = min(r["wall"] * args.n / r["n"] for r in results)
    worst = max(r["wall"] * args.n / r["n"] for r in results)
    peak = max(r["rss_kb"] for r in results) / 1024
    print(f"{args.n:,} conversations: best {best:.1f} s, spread {best:.1f}-{worst:.1f} s (target <= 20 s for 1,000)")
    print(f"peak RSS: {peak:.0f} MiB (target < 1024 MiB for 10,000)")


if __name__ == "__main__":
    main()
