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

from evalkit.runner import RunConfig, Runner
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
        started = time.perf_counter()
        run = Runner(config).run_sync()
        run_s = time.perf_counter() - started

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
    print(f"run                  {run_s:.3f} s  (conversations, scoring, journal fsync, run files)")
    print(f"ratio run / ideal    {run_s / ideal:.2f}")
    print(f"ratio total / ideal  {(load_s + run_s) / ideal:.2f}")


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
