"""evalkit vs deepeval 4.x, the same work against the same fake model server.

The work: ``--conversations`` (50) simulated conversations of up to ``--user-turns`` (6)
user messages with the same agent, then each conversation scored with deepeval's
``ConversationCompletenessMetric`` (one conversational metric). Model: the fake
OpenAI-compatible server in its own process on 127.0.0.1, ``--latency-ms`` (50) per call;
every JSON-schema request gets a valid instance, so both tools parse every answer.

- The agent (both sides): :func:`agent_reply`, one ``openai.AsyncOpenAI`` chat call per
  user message with the conversation so far — what a typical user's agent does.
- deepeval: ``ConversationSimulator(model_callback=..., simulator_model=GPTModel(...,
  base_url=fake), max_concurrent=C)`` then ``evaluate(..., metrics=[
  ConversationCompletenessMetric(model=...)], async_config=AsyncConfig(max_concurrent=C))``
  with caching off. Its best settings: async mode, ``max_concurrent`` = C for both.
  deepeval's user stops only when its completeness controller says so or after
  ``max_user_simulations``; the fake server never says "complete", so every conversation
  has exactly ``user_turns`` user messages.
- evalkit: ``evalkit run`` semantics through the Python API: the LLM user (persona, no
  scripted opening; the fake model ends with ``goal_met`` after ``user_turns`` messages),
  the same agent as a Python agent, and the same deepeval metric as an evalkit judge
  (``deepeval: {metric: conversation_completeness}``, deepeval's metric code with evalkit's
  model client), ``--concurrency`` C, no response cache.

Both wall times are end to end (simulation + scoring; evalkit also writes its run folder
and report). Both sides must have scored every conversation with the metric (a score, no
error), so the two timings cover the same work: otherwise the script says which side fell
short and exits 1. Target: evalkit <= 1/5 of deepeval's wall time.

    python benchmarks/vs_deepeval.py [--conversations 50] [--concurrency 32] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fake_llm import fake_llm  # noqa: E402

_AGENT_CLIENTS: dict[str, Any] = {}


async def agent_reply(base_url: str, history: list[dict[str, str]]) -> str:
    """The agent under test (both sides): one chat call with the conversation so far."""
    import openai

    client = _AGENT_CLIENTS.get(base_url)
    if client is None:
        # 60 s, as evalkit's model client in this script: a busy machine must not time out a connect.
        client = _AGENT_CLIENTS[base_url] = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0,
                                                               timeout=60.0)
    messages = [{"role": "system", "content": "You are Acme's support agent."}, *history]
    r = await client.chat.completions.create(model="fake-model", messages=messages)  # type: ignore[arg-type]
    return r.choices[0].message.content or ""


class BenchAgent:
    """evalkit side of :func:`agent_reply` (``--agent vs_deepeval:BenchAgent?base_url=...``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.history: list[dict[str, str]] = []

    async def respond(self, ctx: Any) -> str:
        self.history.append({"role": "user", "content": ctx.message})
        text = await agent_reply(self.base_url, self.history)
        self.history.append({"role": "assistant", "content": text})
        return text


GOAL = "Find out where order ORD-10001 is and when it will arrive."
METRIC_JUDGE = "deepeval_conversation_completeness"  # evalkit's verdict name for the metric


def run_deepeval(base_url: str, n: int, user_turns: int, concurrency: int) -> tuple[float, int]:
    """deepeval's wall time and how many conversations its metric scored."""
    from evalkit.judges.deepeval_metrics import import_deepeval

    import_deepeval()  # telemetry off, no .env, before the first deepeval import
    from deepeval import evaluate
    from deepeval.dataset import ConversationalGolden
    from deepeval.evaluate.configs import AsyncConfig, CacheConfig, DisplayConfig
    from deepeval.metrics import ConversationCompletenessMetric
    from deepeval.models import GPTModel
    from deepeval.simulator import ConversationSimulator
    from deepeval.test_case import Turn

    model = GPTModel(model="gpt-4o-mini", api_key="sk-fake", base_url=base_url)

    async def callback(input: str, turns: list[Turn]) -> Turn:
        history = [{"role": t.role, "content": t.content} for t in turns]
        history.append({"role": "user", "content": input})
        return Turn(role="assistant", content=await agent_reply(base_url, history))

    goldens = [ConversationalGolden(scenario=f"Customer {i}: {GOAL}", expected_outcome="The agent gives the "
                                    "delivery date.", user_description=f"Customer {i}, polite") for i in range(n)]
    started = time.perf_counter()
    simulator = ConversationSimulator(model_callback=callback, simulator_model=model, max_concurrent=concurrency)
    cases = simulator.simulate(conversational_goldens=goldens, max_user_simulations=user_turns)
    simulated = time.perf_counter() - started
    result = evaluate(
        test_cases=cases,
        metrics=[ConversationCompletenessMetric(model=model, async_mode=True)],
        async_config=AsyncConfig(run_async=True, max_concurrent=concurrency),
        cache_config=CacheConfig(write_cache=False, use_cache=False),
        display_config=DisplayConfig(print_results=False, show_indicator=False, verbose_mode=False),
    )
    wall = time.perf_counter() - started
    users = [sum(1 for t in c.turns if t.role == "user") for c in cases]
    scored = sum(1 for r in result.test_results
                 if any(m.score is not None and not m.error for m in (r.metrics_data or [])))
    print(f"deepeval: {len(cases)} conversations ({scored} scored by the metric), user messages per "
          f"conversation {min(users)}-{max(users)}; simulate {simulated:.2f} s + evaluate {wall - simulated:.2f} s")
    return wall, scored


def run_evalkit(base_url: str, n: int, user_turns: int, concurrency: int) -> tuple[float, int]:
    """evalkit's wall time and how many conversations the deepeval metric scored."""
    from evalkit.llm.client import LLMClient
    from evalkit.llm.clients import ModelClients
    from evalkit.llm.settings import ModelSettings
    from evalkit.run.runner import RunConfig, Runner
    from evalkit.scenarios import load_suite

    def settings() -> ModelSettings:
        return ModelSettings(model="gpt-4o-mini", base_url=base_url, api_key="sk-fake",  # type: ignore[arg-type]
                             max_concurrency=4 * concurrency, timeout=60.0)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "suite"
        folder.mkdir()
        (folder / "suite.yaml").write_text(f"max_turns: {user_turns + 1}\nturn_timeout_s: 60\n", encoding="utf-8")
        lines = ["scenarios:"]
        for i in range(n):
            lines += [f"  - id: conv-{i:04d}", "    user:", "      persona:", f"        name: Customer {i}",
                      "        goal:", f"          description: {GOAL}",
                      "    expect: [{deepeval: {metric: conversation_completeness}}]"]
        (folder / "bench.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        started = time.perf_counter()
        llm = ModelClients(simulator=LLMClient(settings(), role="simulator"), judge=LLMClient(settings(), role="judge"))
        config = RunConfig(
            suite=load_suite([folder]), agent=f"vs_deepeval:BenchAgent?base_url={base_url}", out=Path(tmp) / "run",
            concurrency=concurrency, simulator="llm", llm=llm, progress=False, close_llm=True,
            handle_signals=False,
        )
        run = Runner(config).run_sync()
        wall = time.perf_counter() - started
    users = [len(c.transcript.user_turns) for c in run.conversations]
    # The judge is named after the metric: deepeval_conversation_completeness.
    scored = sum(1 for c in run.conversations
                 if any(v.judge == METRIC_JUDGE and v.score is not None and v.skipped is None for v in c.verdicts))
    errors = sum(1 for c in run.conversations if c.transcript.error)
    print(f"evalkit: {len(run.conversations)} conversations ({errors} errors, {scored} scored by the deepeval "
          f"metric), user messages per conversation {min(users)}-{max(users)}")
    return wall, scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--user-turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] = "YES"
    n, turns, c = args.conversations, args.user_turns, args.concurrency
    print(f"{n} conversations x {turns} user turns + ConversationCompletenessMetric, concurrency {c}, "
          f"fake model latency {args.latency_ms:g} ms")
    stats_e: dict[str, int] = {}
    with fake_llm(args.latency_ms, turns, stats_e) as base_url:
        evalkit_s, evalkit_scored = run_evalkit(base_url, n, turns, c)
    _AGENT_CLIENTS.clear()
    stats_d: dict[str, int] = {}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, fake_llm(args.latency_ms, turns, stats_d) as base_url:
        os.chdir(tmp)  # deepeval writes .deepeval/ folders into the working directory
        try:
            deepeval_s, deepeval_scored = run_deepeval(base_url, n, turns, c)
        finally:
            os.chdir(cwd)
    print(f"model calls: evalkit {stats_e.get('calls')}, deepeval {stats_d.get('calls')}")
    print(f"wall time: evalkit {evalkit_s:.2f} s, deepeval {deepeval_s:.2f} s")
    short = [f"{name} scored {k} of {n}" for name, k in (("evalkit", evalkit_scored), ("deepeval", deepeval_scored))
             if k != n]
    if short:
        print(f"error: not the same work: {', '.join(short)} conversations with the metric; no ratio",
              file=sys.stderr)
        sys.exit(1)
    print(f"ratio evalkit / deepeval: {evalkit_s / deepeval_s:.3f}  (target <= 0.2)")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
