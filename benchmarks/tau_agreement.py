"""Agreement between evalkit's verdicts and τ-bench's own rewards on recorded trajectories.

Imports a τ-bench results file (default: ../shared/data/tau_bench/airline_sample.json),
scores it offline with the τ-bench rules (database-changing calls with matching
arguments, required outputs said), then prints the agreement rate, the confusion matrix,
every disagreement with its reason, and pass^k from τ-bench's rewards computed two ways:
τ-bench's own formula (reproduced here from its ``display_metrics``) and evalkit's
``pass_hat_k`` over the imported ``source_verdict`` column. The two must be equal.

    python benchmarks/tau_agreement.py
    python benchmarks/tau_agreement.py path/to/retail-results.json --domain retail
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.integrations.importers import read_recordings, write_imported  # noqa: E402
from evalkit.run.recorded import agreement, format_agreement, score_run, source_pass_hat_k  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tau_bench" / "airline_sample.json"
# Where the data comes from, for a clone without ../shared/data.
SOURCE = (
    "a τ-bench results file (Sierra, MIT licence: https://github.com/sierra-research/tau-bench; "
    "its historical_trajectories/ folder holds recorded runs such as "
    "gpt-4o-airline.json). The default is ../shared/data/tau_bench/airline_sample.json, 8 records "
    "(2 tasks x 4 trials) of that file; pass another file as the argument"
)


def tau_bench_pass_hat_k(records: list[dict]) -> dict[int, float]:
    """τ-bench's pass^k, as its run.py ``display_metrics`` computes it from rewards."""

    def is_successful(reward: float) -> bool:
        return (1 - 1e-6) <= reward <= (1 + 1e-6)

    num_trials = len({r["trial"] for r in records})
    c_per_task: dict[object, int] = {}
    for r in records:
        c_per_task[r["task_id"]] = c_per_task.get(r["task_id"], 0) + (1 if is_successful(r["reward"]) else 0)
    return {
        k: sum(comb(c, k) / comb(num_trials, k) for c in c_per_task.values()) / len(c_per_task)
        for k in range(1, num_trials + 1)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, default=DATA)
    parser.add_argument("--domain", choices=["airline", "retail"], default=None)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"tau_agreement: no τ-bench data: {args.file} is absent. The data is {SOURCE}.", file=sys.stderr)
        return 2
    imported = read_recordings("tau-bench", args.file, domain=args.domain)
    with tempfile.TemporaryDirectory() as tmp:
        write_imported(imported, tmp)
        run = score_run(tmp)
    report = agreement(run)
    print(f"{args.file.name}: {len(run.conversations)} trajectories, {len(imported.scenarios)} tasks\n")
    print(format_agreement(report))
    theirs = tau_bench_pass_hat_k(json.loads(args.file.read_text()))
    ours = source_pass_hat_k(run.conversations)
    print("\npass^k from τ-bench's rewards:")
    for k in sorted(theirs):
        mark = "equal" if ours.get(k) == theirs[k] else "DIFFERENT"
        print(f"  k={k}: τ-bench formula {theirs[k]:.6f}   evalkit pass_hat_k {ours.get(k, float('nan')):.6f}   {mark}")
    return 0 if all(ours.get(k) == v for k, v in theirs.items()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
