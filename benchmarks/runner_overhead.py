"""How close the runner gets to the ideal wall time when the agent is the only cost.

200 scripted conversations against an in-process agent that answers after 20 ms (an async
sleep), at concurrency 20. The ideal wall time is conversations x turns x latency /
concurrency; the ratio measured / ideal is the runner's overhead (simulator, scoring with
a judge per step, journal fsync per conversation, run files at the end).

    python benchmarks/runner_overhead.py [--conversations 200] [--turns 4] [--latency-ms 20] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from evalkit.run.runfolder import RunFolder
from evalkit.run.runner import RunConfig, Runner
from evalkit.scenarios import load_suite


def write_suite(folder: Path, conversations: int, turns: int) -> None:
    lines = ["scenarios:"]
    for i in range(conversations):
        lines += [f"  - id: bench-{i:04d}", "    user:", "      script:"]
        for k in range(turns):
            lines += [
                f"        - say: message {k} of conversation {i}",
                "          expect: [{said: {contains: ok}}]",
            ]
        lines += ["    expect: [{outcome: resolved}, no_pii_leak]"]
    (folder / "bench.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "suite"
        folder.mkdir()
        write_suite(folder, args.conversations, args.turns)
        started = time.perf_counter()
        suite = load_suite([folder])
        load_s = time.perf_counter() - started
        agent = f"evalkit.testing.agents:SlowAgent?delay_ms={args.latency_ms}&ttft_ms={args.latency_ms}"
        config = RunConfig(
            suite=suite, agent=agent, out=Path(tmp) / "run", concurrency=args.concurrency, progress=False
        )
        outputs_s = 0.0
        write_outputs = RunFolder.finish

        def timed_outputs(*a: Any) -> Any:  # split "run files + reports" from the conversations
            nonlocal outputs_s
            t0 = time.perf_counter()
            try:
                return write_outputs(*a)
            finally:
                outputs_s += time.perf_counter() - t0

        RunFolder.finish = timed_outputs  # type: ignore[method-assign]
        started, cpu_started = time.perf_counter(), time.process_time()
        run = Runner(config).run_sync()
        run_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        RunFolder.finish = write_outputs  # type: ignore[method-assign]
        conv_s = run_s - outputs_s

    ideal = args.conversations * args.turns * args.latency_ms / 1000 / args.concurrency
    floor = asyncio.run(
        bare_asyncio(args.conversations, args.turns, args.latency_ms / 1000, args.concurrency)
    )
    n_ok = sum(1 for c in run.conversations if c.passed)
    print(f"conversations        {len(run.conversations)} ({n_ok} passed, status {run.manifest.status})")
    print(f"turns each           {args.turns}")
    print(f"agent latency        {args.latency_ms:g} ms (async sleep)")
    print(f"concurrency          {args.concurrency}")
    print(f"ideal                {ideal:.3f} s  (conversations x turns x latency / concurrency)")
    print(f"bare asyncio floor   {floor:.3f} s  (the same sleeps with no evalkit: this machine's timer cost)")
    print(
        f"load suite           {load_s:.3f} s  (parse + validate {args.conversations} scenarios, build judges)"
    )
    print(f"conversations phase  {conv_s:.3f} s  (play, score, journal with fsync)")
    print(
        f"run files + reports  {outputs_s:.3f} s  (parquet, summary.json, report.html, junit.xml, summary.md)"
    )
    print(
        f"run cpu              {cpu_s:.3f} s  ({cpu_s / len(run.conversations) * 1000:.1f} ms per conversation)"
    )
    print(f"ratio conversations / ideal  {conv_s / ideal:.2f}   <- the runner's overhead")
    print(f"ratio whole run / ideal      {run_s / ideal:.2f}")
    print(f"ratio with suite load        {(load_s + run_s) / ideal:.2f}")


async def bare_asyncio(conversations: int, turns: int, latency_s: float, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            for _ in range(turns):
                await asyncio.sleep(latency_s)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conversations)))
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
