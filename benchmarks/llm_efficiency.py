"""How close evalkit gets to the model-bound ideal, and what it costs per model call.

The work: ``--conversations`` (200) conversations, each with an LLM-simulated user (a
persona with a scripted opening, then the model writes the next ``--user-turns - 1``
messages and, on its ``--user-turns``-th call, ends with ``goal_met``), the agent
``openai-chat:fake-model`` (one non-streaming model call per user message, no tools),
and one LLM judge call (``goal_completion``) per conversation. Everything runs against
the fake OpenAI-compatible server, in its own process on 127.0.0.1, which sleeps
``--latency-ms`` before each answer. No response cache (every call goes to the server).

Model calls per conversation, all strictly sequential (each needs the previous answer):
``user_turns`` simulator calls + ``user_turns`` agent calls + 1 judge call = 13 for 6
user turns. With ``--concurrency`` C conversations at a time and every conversation the
same length, the conversations run in ``ceil(N / C)`` waves, so

    ideal = ceil(N / C) x (2 x user_turns + 1) x latency
          = ceil(200 / 32) x 13 x 50 ms = 7 x 13 x 50 ms = 4.55 s

(the critical path of model calls; it assumes zero time for HTTP, JSON, the simulator,
the agent adapter, scoring and the journal). Targets:

1. at 50 ms: conversations-phase wall time / ideal <= 1.15;
2. at 0 ms: harness time per model call <= 1 ms, where harness time is the CPU time of
   the evalkit process (the fake server runs in another process) during the conversations
   phase, divided by the number of model calls. The wall time per call is printed too.

"Conversations phase" is the run minus writing the run files and reports at the end
(parquet, summary, report.html with plotly, junit, markdown), which is printed apart.

    python benchmarks/llm_efficiency.py                       # both: 50 ms and 0 ms
    python benchmarks/llm_efficiency.py --latency-ms 50 --repeat 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fake_llm import fake_llm  # noqa: E402

from evalkit.llm.client import LLMClient  # noqa: E402
from evalkit.llm.clients import ModelClients  # noqa: E402
from evalkit.llm.settings import ModelSettings  # noqa: E402
from evalkit.run.runfolder import RunFolder  # noqa: E402
from evalkit.run.runner import RunConfig, Runner  # noqa: E402
from evalkit.scenarios import load_suite  # noqa: E402


def write_suite(folder: Path, conversations: int, user_turns: int) -> None:
    settings = [f"max_turns: {user_turns}", "turn_timeout_s: 60", "conversation_timeout_s: 600"]
    (folder / "suite.yaml").write_text("\n".join(settings) + "\n", encoding="utf-8")
    lines = ["scenarios:"]
    for i in range(conversations):
        lines += [
            f"  - id: llm-{i:04d}",
            "    user:",
            "      persona:",
            f"        name: Customer {i}",
            "        goal:",
            "          description: Find out where order ORD-10001 is.",
            f"          opening: Hi, I am customer {i}. Where is my order ORD-10001?",
            "    expect: [goal_completion]",
        ]
    (folder / "bench.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def one_run(base_url: str, args: argparse.Namespace, latency_ms: float) -> dict[str, float]:
    def settings() -> ModelSettings:
        return ModelSettings(model="fake-model", base_url=base_url, api_key="sk-fake-bench",  # type: ignore[arg-type]
                             max_concurrency=4 * args.concurrency, timeout=60.0)

    llm = ModelClients(simulator=LLMClient(settings(), role="simulator"), judge=LLMClient(settings(), role="judge"))
    agent = (f"openai-chat:fake-model?base_url={base_url}&stream=0&max_concurrency={4 * args.concurrency}"
             "&timeout=60")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "suite"
        folder.mkdir()
        write_suite(folder, args.conversations, args.user_turns)
        suite = load_suite([folder])
        config = RunConfig(suite=suite, agent=agent, out=Path(tmp) / "run", concurrency=args.concurrency,
                           simulator="llm", llm=llm, progress=False, close_llm=True, handle_signals=False)
        outputs = {"wall": 0.0, "cpu": 0.0}
        write_outputs = RunFolder.finish

        def timed(*a: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return write_outputs(*a)
            finally:
                outputs["wall"] += time.perf_counter() - t0
                outputs["cpu"] += time.process_time() - c0

        RunFolder.finish = timed  # type: ignore[method-assign]
        import os

        os.environ.setdefault("EVALKIT_AGENT_API_KEY", "sk-fake-bench")
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            run = Runner(config).run_sync()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            RunFolder.finish = write_outputs  # type: ignore[method-assign]
    usage = run.manifest.extra.get("llm_usage", {})
    sim_calls = int(usage.get("simulator", {}).get("calls", 0))  # type: ignore[union-attr]
    judge_calls = int(usage.get("judge", {}).get("calls", 0))  # type: ignore[union-attr]
    agent_turns = sum(len(c.transcript.agent_turns) for c in run.conversations)
    errors = sum(1 for c in run.conversations if c.transcript.error)
    calls = sim_calls + judge_calls + agent_turns
    per_conv = 2 * args.user_turns + 1
    ideal = math.ceil(args.conversations / args.concurrency) * per_conv * latency_ms / 1000
    conv_wall = wall - outputs["wall"]
    conv_cpu = cpu - outputs["cpu"]
    return {
        "conversations": len(run.conversations), "errors": errors, "calls": calls, "sim": sim_calls,
        "judge": judge_calls, "agent": agent_turns, "expected_calls": args.conversations * per_conv,
        "wall": wall, "conv_wall": conv_wall, "outputs_wall": outputs["wall"], "conv_cpu": conv_cpu,
        "ideal": ideal,
    }


def report(latency_ms: float, runs: list[dict[str, float]], args: argparse.Namespace) -> None:
    r0 = runs[0]
    print(f"\n== latency {latency_ms:g} ms per model call, {args.conversations} conversations x "
          f"{args.user_turns} user turns + 1 judge call, concurrency {args.concurrency} ==")
    print(f"model calls per run: {int(r0['calls'])} (simulator {int(r0['sim'])}, agent {int(r0['agent'])}, "
          f"judge {int(r0['judge'])}; expected {int(r0['expected_calls'])}); conversation errors: {int(r0['errors'])}")
    walls = [r["conv_wall"] for r in runs]
    cpu_per_call = [r["conv_cpu"] / r["calls"] * 1000 for r in runs]
    wall_per_call = [r["conv_wall"] / r["calls"] * 1000 for r in runs]
    print("runs (conversations phase): " + ", ".join(f"{w:.2f} s" for w in walls)
          + f"; run files + reports: {statistics.median([r['outputs_wall'] for r in runs]):.2f} s")
    if latency_ms > 0:
        ideal = r0["ideal"]
        ratios = [w / ideal for w in walls]
        whole = [r["wall"] / ideal for r in runs]
        print(f"ideal {ideal:.2f} s = ceil({args.conversations}/{args.concurrency}) waves x "
              f"{2 * args.user_turns + 1} calls x {latency_ms:g} ms")
        print(f"ratio conversations phase / ideal: median {statistics.median(ratios):.3f}, best {min(ratios):.3f}, spread {min(ratios):.3f}-{max(ratios):.3f}"
              f"  (target <= 1.15)")
        print(f"ratio whole run (incl. run files + report) / ideal: best {min(whole):.3f}")
    print(f"harness CPU per model call: median {statistics.median(cpu_per_call):.3f} ms, best {min(cpu_per_call):.3f} ms, spread "
          f"{min(cpu_per_call):.3f}-{max(cpu_per_call):.3f} ms" + ("  (target <= 1 ms)" if latency_ms == 0 else ""))
    print(f"wall per model call: best {min(wall_per_call):.3f} ms (concurrent)")
    print("machine speed right after each run: " + ", ".join(f"{r['speed']:.3f} s" for r in runs))


def machine_speed(repeat: int = 5) -> float:
    """CPU seconds of a fixed pure-Python loop: the same figure on two machines (or two moments
    of a shared one) says their per-call CPU figures are comparable."""
    best = math.inf
    for _ in range(repeat):
        c0 = time.process_time()
        total = 0
        for i in range(3_000_000):
            total += i * i
        best = min(best, time.process_time() - c0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--user-turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, action="append", default=None,
                        help="repeatable; default: 50 and 0")
    parser.add_argument("--repeat", type=int, default=3, help="runs per latency (best and spread reported)")
    args = parser.parse_args()
    print(f"machine speed: a fixed pure-Python loop takes {machine_speed():.3f} s of CPU (best of 5; lower is "
          "faster): per-call figures from two runs compare only when this does")
    for latency_ms in args.latency_ms or [50.0, 0.0]:
        with fake_llm(latency_ms, args.user_turns) as base_url:
            runs = []
            for _ in range(args.repeat):
                run = one_run(base_url, args, latency_ms)
                run["speed"] = machine_speed(repeat=2)  # right after: was the machine slow just then?
                runs.append(run)
        report(latency_ms, runs, args)


if __name__ == "__main__":
    main()
