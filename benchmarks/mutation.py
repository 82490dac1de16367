"""Mutation testing of the reference agent: counts, score per module, speed, cached rerun.

Runs ``run_mutation`` (what ``evalkit mutate`` runs) on reference_agent/tools.py,
guardrails.py, handoff.py and channels.py against the bundled suite with a fresh cache,
then again with the cache it wrote (a rerun with nothing changed), and prints mutants
generated, killed, survived, timed out and equivalent per module, the mutation score,
mutants per minute and both wall times. ``--sample N`` measures a seeded sample instead
(say so when you extrapolate from it).

    python benchmarks/mutation.py                         # full run, 2 workers
    python benchmarks/mutation.py --sample 60 --seed 1    # a sample
    python benchmarks/mutation.py --out runs/mutation     # also keep mutation.json/.html
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the reference agent, loaded by name like a user's agent
MODULES = ["tools", "guardrails", "handoff", "channels"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", default=str(ROOT / "datasets" / "support"))
    parser.add_argument(
        "--module", action="append", help="reference_agent module (repeatable; default the four)"
    )
    parser.add_argument("--sample", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--cache", help="cache file (default: a fresh temporary one)")
    parser.add_argument("--out", help="write mutation.json and mutation.html here")
    args = parser.parse_args()
    os.chdir(ROOT)

    from evalkit.quality.mutation import MutateConfig, run_mutation, write_report
    from evalkit.reports.mutation_html import render_mutation_html

    targets = [f"reference_agent/{m}.py" for m in (args.module or MODULES)]
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or str(Path(tmp) / "mutation.jsonl")
        config = MutateConfig(
            suite=[args.suite],
            targets=targets,
            jobs=args.jobs,
            sample=args.sample,
            seed=args.seed,
            cache=cache,
            progress=sys.stderr,
        )
        t0 = time.monotonic()
        first = run_mutation(config)
        full_s = time.monotonic() - t0
        t0 = time.monotonic()
        again = run_mutation(config)
        rerun_s = time.monotonic() - t0
    if args.out:
        write_report(first, args.out, render_mutation_html)
    n = first.totals.generated
    print(
        f"mutation benchmark: {', '.join(first.targets)} vs {args.suite} "
        f"({first.n_scenarios} scenarios), {args.jobs} workers, cpu count {os.cpu_count()}"
    )
    if first.sample:
        print(f"SAMPLE of {n} mutants (seed {args.seed}) out of {first.generated} generated")
    print(
        f"{'module':32} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'equiv':>5} {'no-cover':>8} {'score':>6}"
    )
    for s in [*first.modules, first.totals]:
        sc = f"{s.score:.1%}" if s.score is not None else "-"
        print(
            f"{s.module:32} {s.generated:7} {s.killed:6} {s.timeout:7} {s.survived:8} {s.equivalent:5} {s.not_covered:8} {sc:>6}"
        )
    played = first.played_mutants
    print(
        f"full run: {full_s:.1f} s wall, {played} mutants played, {played / (full_s / 60):.1f} mutants/minute"
    )
    print(
        f"cached rerun: {rerun_s:.1f} s wall, {again.played_mutants} mutants played, {again.cached_mutants} from the cache"
    )
    if first.clean_failing:
        print(f"clean agent fails (no oracle there): {', '.join(first.clean_failing)}")
    if first.stale_equivalents:
        print(f"stale equivalents (match no mutant any more): {', '.join(first.stale_equivalents)}")


if __name__ == "__main__":
    main()
