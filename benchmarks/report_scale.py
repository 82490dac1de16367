"""How the HTML report scales: 10,000 conversations, realistic transcripts.

Synthesises a run folder (manifest.json + conversations.jsonl; 6-10 turns per conversation
with tool calls, handoffs and verdicts), then measures:

* ``evalkit report RUN`` wall time and peak RSS (a child process, as a user runs it),
* the HTML file size,
* in headless Chromium (cold browser): time until the table is usable (the ready marker the
  report's JavaScript sets), until the charts are drawn, to apply a filter ("failed only",
  a search), and to open a transcript.

Targets: report <= 20 s, HTML <= 25 MB, opens (table usable) <= 3 s.

    python benchmarks/report_scale.py                  # 10,000 conversations
    python benchmarks/report_scale.py --n 2000 --keep /tmp/run2k
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The browser launch is shared with the browser tests (tests/_browser.py, not shipped).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from evalkit.core.results import ConversationResult, JudgeKind, RunManifest, Verdict
from evalkit.core.transcript import (
    AgentTurn,
    Handoff,
    Outcome,
    StopReason,
    ToolCall,
    Transcript,
    UserTurn,
)
from evalkit.run.runfiles import JOURNAL
from evalkit.run.runfolder import Existing, RunFolder

TOPICS = {
    "orders": ("check_order_status", "Where is my order {oid}? It was supposed to arrive {day}."),
    "returns": ("create_return", "I want to return the {item} from order {oid}, it does not fit."),
    "refunds": ("issue_refund", "I was charged twice for order {oid}, please refund me."),
    "billing": ("get_invoice", "Can you send me the invoice for {oid}? My accountant needs it."),
    "account": ("reset_password", "I cannot log in to my account, the reset email never arrives."),
    "shipping": ("update_address", "Please change the delivery address of {oid} to {addr}."),
    "subscriptions": ("cancel_subscription", "Cancel my premium subscription before the next charge."),
    "product": ("search_catalog", "Do you have the {item} in size M and in blue?"),
    "warranty": ("check_warranty", "My {item} stopped working after two months, is it covered?"),
    "loyalty": ("get_points", "How many loyalty points do I have and when do they expire?"),
}
EXTRA_TAGS = ["smoke", "regression", "vip", "angry", "multilingual", "edge-case", "pii", "long"]
CHANNELS = ["web", "web", "whatsapp", "slack", "voice"]
ITEMS = ["rain jacket", "running shoes", "desk lamp", "coffee grinder", "backpack", "headphones"]
DAYS = ["yesterday", "last Monday", "on the 3rd", "two weeks ago"]
FOLLOW_UPS = [
    "Thanks. And how long will that take exactly?",
    "That is not what I asked. Can you check again please?",
    "OK, can you also confirm the email you have on file for me?",
    "I already tried that twice, it does not work.",
    "Great, please go ahead.",
    "Is there a fee for that?",
    "Can I talk to a human instead?",
    "Perfect, that solves it. Thank you!",
]
AGENT_LINES = [
    "I have looked up order {oid}: it left our warehouse {day} and is now with the carrier. "
    "The tracking shows it out for delivery, so it should arrive within one to two business days.",
    "I am sorry about the trouble. I have started the process for you and you will receive a "
    "confirmation email in the next few minutes with all the details and a reference number.",
    "Thanks for your patience. According to our policy, items can be returned within 30 days "
    "of delivery if they are unused and in the original packaging. Shall I create the label?",
    "I understand. To protect your account I need to verify your identity first: could you "
    "confirm the postcode of your billing address?",
    "Done. The change is saved and you will see it in your account within a few minutes.",
]


def _conversation(rng: random.Random, sid: int, variant: str, trial: int, topic: str) -> ConversationResult:
    tool, opener = TOPICS[topic]
    oid = f"A{100000 + sid}"
    fill = {"oid": oid, "day": rng.choice(DAYS), "item": rng.choice(ITEMS), "addr": f"{sid} Baker Street"}
    n_exchanges = rng.randint(3, 5)  # 6-10 turns
    quality = 0.8 if variant == "A" else 0.84
    fail_at = None if rng.random() < quality else rng.randint(1, n_exchanges)
    escalate = rng.random() < 0.12
    abandon = not escalate and rng.random() < 0.05
    errored = not escalate and not abandon and rng.random() < 0.01
    turns: list = []
    for x in range(1, n_exchanges + 1):
        say = opener.format(**fill) if x == 1 else rng.choice(FOLLOW_UPS)
        turns.append(UserTurn(content=say))
        calls = []
        if x <= 2 or rng.random() < 0.3:
            calls.append(
                ToolCall(
                    name=tool if x == 1 else rng.choice([t for t, _ in TOPICS.values()]),
                    arguments={"order_id": oid, "customer_id": f"C{sid:06d}", "locale": "en-GB"},
                    result={
                        "status": rng.choice(["shipped", "processing", "delivered", "cancelled"]),
                        "carrier": "DHL",
                        "tracking": f"JD{rng.randrange(10**12):012d}",
                        "eta_days": rng.randint(1, 6),
                        "items": [{"sku": f"SKU-{rng.randrange(10**5)}", "qty": 1, "price": round(rng.uniform(5, 200), 2)}],
                    },
                )
            )
        handoff = None
        if escalate and x == n_exchanges:
            handoff = Handoff(ticket_id=f"T-{sid}-{trial}", reason="customer asked for a human")
        latency = rng.lognormvariate(6.9, 0.5)  # median ~1 s, long tail
        turns.append(
            AgentTurn(
                content=rng.choice(AGENT_LINES).format(**fill),
                tool_calls=calls,
                latency_ms=round(latency, 1),
                ttft_ms=round(latency * rng.uniform(0.15, 0.4), 1),
                handoff=handoff,
            )
        )
    verdicts = [
        Verdict(judge="tool_called", spec=f"tool_called({tool})", passed=True, reason=f"{tool} was called", turn=1),
        Verdict(judge="no_pii_leak", passed=True, reason="no personal data in replies"),
        Verdict(judge="policy_compliance", spec="policy_compliance(returns-30d)", passed=fail_at is None,
                reason="followed the returns policy" if fail_at is None
                else "promised a refund outside the 30-day window without checking the delivery date",
                turn=fail_at),
        Verdict(judge="max_turns", spec="max_turns(8)", passed=True, reason=f"{n_exchanges} turns"),
        Verdict.skip("llm_rubric", "no model configured"),
        Verdict(judge="csat_proxy", kind=JudgeKind.proxy, score=round(rng.uniform(1, 5), 2), reason="offline estimate"),
    ]
    outcome = (
        Outcome.error if errored else Outcome.escalated if escalate else Outcome.abandoned if abandon else Outcome.resolved
    )
    t = Transcript(
        scenario_id=f"{topic}-{sid:04d}",
        trial=trial,
        seed=sid * 100 + trial,
        variant=variant,
        channel=CHANNELS[sid % len(CHANNELS)],
        turns=turns,
        outcome=outcome,
        stop_reason=StopReason.agent_error if errored else StopReason.transferred if escalate else StopReason.goal_met,
        error="agent timed out after 30 s" if errored else None,
        duration_ms=round(sum(a.latency_ms or 0 for a in turns if isinstance(a, AgentTurn)) + 500, 1),
    )
    tags = [topic] + ([EXTRA_TAGS[sid % len(EXTRA_TAGS)]] if sid % 3 == 0 else [])
    return ConversationResult(
        run_id="bench-10k",
        title=opener.format(**fill)[:60],
        tags=tags,
        transcript=t,
        verdicts=verdicts,
        metrics={"csat_proxy": round(max(1.0, min(5.0, rng.gauss(3.6 if fail_at is None else 2.4, 0.8))), 2)},
    )


def synthesise(folder: Path, n: int, variants: list[str], trials: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    topics = list(TOPICS)
    per_variant = n // len(variants)
    scenarios = max(1, per_variant // trials)
    manifest = RunManifest(
        run_id="bench-10k",
        evalkit_version="0.1.0",
        agent="reference_agent:create_agent",
        variants={v: f"reference_agent:create_agent --prompt {v.lower()}" for v in variants},
        seed=seed,
        trials=trials,
        concurrency=16,
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:42:00Z",
        duration_s=2520.0,
        status="complete",
        n_planned=scenarios * trials * len(variants),
        cache={"hits": 0, "misses": 0},
    )
    count = 0
    with RunFolder(folder).claim(Existing.overwrite) as writer:
        writer.write_manifest(manifest)
        # The same line format as the run folder's journal, without its fsync per line (a
        # synthetic folder need not survive a crash; 10,000 fsyncs would dominate the figures).
        with open(folder / JOURNAL, "wb") as fh:
            for v in variants:
                for sid in range(scenarios):
                    for trial in range(trials):
                        conv = _conversation(rng, sid, v, trial, topics[sid % len(topics)])
                        fh.write(conv.model_dump_json().encode() + b"\n")
                        count += 1
    return count


def _browser_figures(report: Path) -> dict[str, float]:
    """Cold-browser figures, measured in Debian's Chromium driven by Playwright (the same
    launch as the browser tests: tests/_browser.py)."""
    from _browser import LAUNCH_ARGS, ConsoleLog, chromium_path
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        console = ConsoleLog.watch(page)
        started = time.perf_counter()
        page.goto(report.as_uri(), wait_until="commit")
        page.wait_for_function(
            "() => document.documentElement && document.documentElement.dataset.ready === '1'", polling=20
        )
        out["wall_to_ready_s"] = time.perf_counter() - started
        # performance.now() counts from the navigation start, inside the page.
        out["ready_s"] = page.evaluate("window.evalkitReport.readyAt") / 1000
        page.wait_for_function("() => document.documentElement.dataset.charts === '1'")
        out["charts_s"] = page.evaluate("window.evalkitReport.chartsAt") / 1000
        out["rows"] = page.evaluate("window.evalkitReport.rowCount()")
        out["filter_failed_ms"] = page.evaluate(
            "(() => { const t = performance.now(); document.getElementById('f-failed').click();"
            " return performance.now() - t; })()"
        )
        out["rows_failed"] = page.evaluate("window.evalkitReport.rowCount()")
        out["search_ms"] = page.evaluate(
            "(() => { const r = window.evalkitReport; const t = performance.now();"
            " r.state.q = 'refund a1000'; r.applyFilters(); return performance.now() - t; })()"
        )
        out["rows_search"] = page.evaluate("window.evalkitReport.rowCount()")
        out["sort_ms"] = page.evaluate(
            "(() => { const t = performance.now(); document.querySelector(\"th[data-sort='csat']\").click();"
            " return performance.now() - t; })()"
        )
        out["open_transcript_ms"] = page.evaluate(
            "(async () => { const t = performance.now(); await window.evalkitReport.open(9876);"
            " return performance.now() - t; })()"
        )
        out["bubbles"] = page.evaluate("document.querySelectorAll('#drawer-body .msg').length")
        out["console_errors"] = len(console.settle(page).errors)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="conversations (default 10,000)")
    parser.add_argument("--variants", default="A,B", help="comma-separated variant names (default A,B)")
    parser.add_argument("--trials", type=int, default=5, help="trials per scenario (default 5)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folder here")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium measurements")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="evalkit-report-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        n = synthesise(folder, args.n, args.variants.split(","), args.trials)
        journal_mb = (folder / JOURNAL).stat().st_size / 1e6
        print(f"synthesised {n:,} conversations in {time.perf_counter() - t0:.1f} s "
              f"({journal_mb:.1f} MB journal) at {folder}")

        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "evalkit", "report", str(folder)], capture_output=True, text=True
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"evalkit report failed ({proc.returncode}): {proc.stderr.strip()}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = folder / "report.html"
        size_mb = report.stat().st_size / 1e6
        print(
            f"evalkit report: {elapsed:.1f} s wall (target <= 20 s), {usage.ru_utime + usage.ru_stime:.1f} s CPU, "
            f"peak RSS {usage.ru_maxrss / 1024:.0f} MB; machine load average {os.getloadavg()[0]:.1f}"
        )
        print(f"report.html: {size_mb:.1f} MB (target <= 25 MB)")

        if not args.no_browser:
            from _browser import missing_reason

            if missing_reason():
                print(f"browser: skipped ({missing_reason()})")
            else:
                f = _browser_figures(report)
                print(
                    f"browser (cold): table usable after {f['ready_s']:.2f} s (target <= 3 s; "
                    f"{f['wall_to_ready_s']:.2f} s wall until Playwright saw it), charts drawn after {f['charts_s']:.2f} s"
                )
                print(
                    f"browser: filter 'failed only' {f['filter_failed_ms']:.0f} ms "
                    f"({int(f['rows']):,} -> {int(f['rows_failed']):,} rows), search {f['search_ms']:.0f} ms "
                    f"({int(f['rows_search']):,} rows), sort {f['sort_ms']:.0f} ms, open a transcript "
                    f"{f['open_transcript_ms']:.0f} ms ({int(f['bubbles'])} messages), console errors: "
                    f"{int(f['console_errors'])}"
                )
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
