"""How well the offline CSAT proxy tracks human satisfaction ratings (USS corpus).

For each USS file (one dialogue = one recorded conversation; the mean of the annotators'
OVERALL ratings = the human score) prints Spearman's rho between the human score and:

* the offline CSAT proxy (``evalkit.judges.csat.csat_proxy``),
* two trivial baselines: conversation length (turns) and the user's "thank you" count,
* the LLM CSAT judge (``llm_csat``) when a judge model is configured
  (``EVALKIT_JUDGE_MODEL`` / ``EVALKIT_MODEL`` [+ ``EVALKIT_BASE_URL``]; responses cached
  per ``EVALKIT_CACHE`` / ``EVALKIT_CACHE_DIR``), on a seeded sample
  of ``--llm-sample`` dialogues per file; otherwise "skipped: no model configured".

each with a bootstrap 95% interval. ``--crossfit`` also fits a linear model on the proxy's
components on one file and reports it on the other (both directions), beside the proxy's
fixed hand-set weights: a check that the weights are not tuned to either file.

    python benchmarks/csat_uss.py                    # ../shared/data/uss/*.txt
    python benchmarks/csat_uss.py --crossfit
    python benchmarks/csat_uss.py path/to/ReDial.txt --resamples 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.core.transcript import Transcript  # noqa: E402
from evalkit.integrations.importers.uss import read  # noqa: E402
from evalkit.judges.csat import csat_signals  # noqa: E402
from evalkit.quality.calibration import Correlation, length_baseline, spearman, spearman_ci, thanks_baseline  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "uss"
# Where the data comes from, for a clone without ../shared/data.
SOURCE = (
    "the USS corpus (Sun et al., SIGIR 2021, 'Simulating User Satisfaction for the Evaluation of "
    "Task-oriented Dialogue Systems'): download SGD.txt and MWOZ.txt from the dataset folder of "
    "https://github.com/sunnweiwei/user-satisfaction-simulation into {folder}, or pass USS .txt files"
)


def _llm_scores(transcripts: list[Transcript], sample: int, seed: int) -> tuple[list[int], list[float]] | str:
    """(indices, llm_csat scores) for a seeded sample, or the reason it was skipped."""
    os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")
    from evalkit.cli._model_options import build_llm_for_run, build_model_roles

    roles = build_model_roles()
    if roles.judge is None:
        return "skipped: no model configured (set EVALKIT_JUDGE_MODEL or EVALKIT_MODEL)"
    from evalkit.judges.base import JudgeContext
    from evalkit.judges.registry import build_judge
    from evalkit.scenarios.models import JudgeSpec

    llm = build_llm_for_run(
        roles,
        cache=os.environ.get("EVALKIT_CACHE", "read-write"),
        cache_dir=os.environ.get("EVALKIT_CACHE_DIR", ".evalkit-cache/llm"),
    )
    judge = build_judge(JudgeSpec(name="llm_csat"))
    idx = sorted(random.Random(seed).sample(range(len(transcripts)), min(sample, len(transcripts))))

    async def go() -> list[Any]:
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> Any:
            async with gate:
                out = judge.evaluate(JudgeContext(transcript=transcripts[i], llm=llm))
                return await out if asyncio.iscoroutine(out) else out

        try:
            return list(await asyncio.gather(*(one(i) for i in idx)))
        finally:
            await llm.aclose()  # type: ignore[union-attr]

    verdicts = asyncio.run(go())
    kept = [(i, v.score) for i, v in zip(idx, verdicts, strict=True) if v.score is not None]
    if not kept:
        errors = {v.error or v.skipped for v in verdicts}
        return f"skipped: the judge returned no score ({'; '.join(str(e) for e in errors)[:200]})"
    return [i for i, _ in kept], [float(s) for _, s in kept]


def _components(signals: list[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
    names = sorted(k for k in signals[0] if k.endswith("_pts"))
    return names, np.array([[float(s.get(k) or 0.0) for k in names] for s in signals])


def crossfit(files: dict[str, tuple[list[dict[str, Any]], list[float]]]) -> list[str]:
    """Least squares on the proxy's components, fitted on one file and tested on each other."""
    lines = []
    for train, (sig_tr, y_tr) in files.items():
        names, x_tr = _components(sig_tr)
        keep = x_tr.std(axis=0) > 0
        a = np.c_[np.ones(len(x_tr)), x_tr[:, keep]]
        beta, *_ = np.linalg.lstsq(a, np.asarray(y_tr), rcond=None)
        weights = ", ".join(f"{n[:-4]}={b:+.2f}" for n, b in zip(np.array(names)[keep], beta[1:], strict=True))
        for test, (sig_te, y_te) in files.items():
            if test == train:
                continue
            _, x_te = _components(sig_te)
            pred = np.c_[np.ones(len(x_te)), x_te[:, keep]] @ beta
            fitted = spearman(list(pred), y_te)
            hand = spearman([float(s["csat_proxy"]) for s in sig_te], y_te)
            lines.append(
                f"  fit on {train} -> {test}: fitted {fitted:+.3f} vs hand-set proxy {hand:+.3f}"
                f"   (fitted multipliers per component: {weights})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help="USS .txt files (default: ../shared/data/uss/*.txt)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crossfit", action="store_true", help="fit on one file, report on the other")
    parser.add_argument("--llm-sample", type=int, default=200, help="dialogues per file for the LLM judge")
    args = parser.parse_args(argv)

    files = args.files or sorted(DATA.glob("*.txt"))
    if not files:
        where = "is absent" if not DATA.is_dir() else "holds no .txt file"
        print(f"csat_uss: no USS data: {DATA} {where}. The data is {SOURCE.format(folder=DATA)}.", file=sys.stderr)
        return 2
    missing = [f for f in files if not f.is_file()]
    if missing:
        print(f"csat_uss: {missing[0]}: no such file", file=sys.stderr)
        return 2
    print("Spearman's rho vs the human dialogue-level satisfaction (mean of OVERALL ratings), bootstrap 95% CI\n")
    header = f"{'file':<8} {'n':>5}  {'csat proxy':<28} {'length (turns)':<28} {'thank-you count':<28}"
    print(header)
    print("-" * len(header))
    collected: dict[str, tuple[list[dict[str, Any]], list[float]]] = {}
    llm_lines = []
    for path in files:
        started = time.monotonic()
        recs = [r for r in read(path).recordings if isinstance(r.metrics.get("human_csat"), float)]
        human = [float(r.metrics["human_csat"]) for r in recs]  # type: ignore[arg-type]
        signals = [csat_signals(r.transcript) for r in recs]
        proxy = [float(s["csat_proxy"]) for s in signals]  # type: ignore[arg-type]
        ci = {
            "proxy": spearman_ci(proxy, human, n_resamples=args.resamples, seed=args.seed),
            "length": spearman_ci(
                [length_baseline(r.transcript) for r in recs], human, n_resamples=args.resamples, seed=args.seed
            ),
            "thanks": spearman_ci(
                [thanks_baseline(r.transcript) for r in recs], human, n_resamples=args.resamples, seed=args.seed
            ),
        }

        def cell(c: Correlation) -> str:
            return "n/a" if c.rho is None else f"{c.rho:+.3f} [{c.low:+.3f}, {c.high:+.3f}]"

        print(
            f"{path.stem:<8} {len(recs):>5}  {cell(ci['proxy']):<28} {cell(ci['length']):<28} "
            f"{cell(ci['thanks']):<28}  ({time.monotonic() - started:.1f}s)"
        )
        collected[path.stem] = (signals, human)
        got = _llm_scores([r.transcript for r in recs], args.llm_sample, args.seed)
        if isinstance(got, str):
            llm_lines.append(f"  {path.stem}: llm_csat {got}")
        else:
            idx, scores = got
            sub_h = [human[i] for i in idx]
            llm_c = spearman_ci(scores, sub_h, n_resamples=args.resamples, seed=args.seed)
            prx_c = spearman_ci([proxy[i] for i in idx], sub_h, n_resamples=args.resamples, seed=args.seed)
            llm_lines.append(f"  {path.stem}: llm_csat {llm_c}   (offline proxy on the same sample: {prx_c})")
    print("\nLLM CSAT judge:")
    print("\n".join(llm_lines))
    if args.crossfit and len(collected) > 1:
        print("\nCross-fit check (linear model on the proxy's components; Spearman on the held-out file):")
        print("\n".join(crossfit(collected)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
