"""How long ``evalkit --help`` (and ``evalkit run --help``) take in a fresh interpreter.

Target: ``evalkit --help`` well under 0.3 s (it lists the commands without importing them).
Prints the best and median wall time of ``--repeat`` fresh processes for each command line.

    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --repeat 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def measure(args: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "evalkit", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    baseline = measure(["--version"], args.repeat)
    print(f"{'command':<22} {'best':>8} {'median':>8}")
    for name, times in (("evalkit --version", baseline), ("evalkit --help", measure(["--help"], args.repeat)),
                        ("evalkit run --help", measure(["run", "--help"], args.repeat))):
        print(f"{name:<22} {min(times):>7.3f}s {statistics.median(times):>7.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
