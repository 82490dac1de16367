"""How long the full self-test takes, and what the main run's concurrency does to it.

Runs ``evalkit selftest`` (every fault of the reference agent over the bundled suite) once
per ``--concurrency`` value and prints wall time, conversations, the clean agent's worst
turn latency (what a latency budget sees) and peak memory.

    python benchmarks/selftest_speed.py                   # concurrency 16 (the default)
    python benchmarks/selftest_speed.py -j 4 -j 16 -j 64
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the reference agent, loaded by name like a user's agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-j", "--concurrency", type=int, action="append", help="main-run concurrency (repeatable)")
    parser.add_argument("--suite", default=str(ROOT / "datasets" / "support"))
    args = parser.parse_args()

    import pandas as pd

    from evalkit.quality.selftest import SelftestConfig, run_selftest

    print(f"{'concurrency':>11}  {'wall s':>7}  {'convs':>6}  {'clean max ms':>12}  {'clean mean ms':>13}  result")
    for concurrency in args.concurrency or [16]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "st"
            started = time.perf_counter()
            report = run_selftest(SelftestConfig(suite=[args.suite], out=out, concurrency=concurrency))
            wall = time.perf_counter() - started
            frame = pd.read_parquet(out / "results.parquet")
            clean = frame[frame.variant == "clean"].latency_max_ms
            n = len(frame) + (len(pd.read_parquet(out / "timing" / "results.parquet")) if report.other_runs else 0)
            caught = sum(1 for r in report.faults if r.caught)
            print(
                f"{concurrency:>11}  {wall:>7.1f}  {n:>6}  {clean.max():>12.0f}  {clean.mean():>13.1f}  "
                f"{'PASSED' if report.passed else 'FAILED'} ({caught}/{len(report.faults)} caught)"
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
