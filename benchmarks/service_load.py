"""Load on the reference agent's HTTP service: many concurrent sessions over real HTTP.

Starts ``python -m reference_agent serve`` on 127.0.0.1 (a free port, its own process), then plays
``--sessions`` conversations of ``--turns`` messages each, ``--concurrency`` at a time,
with httpx2; half the sessions stream (SSE), half use plain JSON. Prints requests per
second, per-request latency percentiles, time to the first SSE token and the server's live
session count at the end (every session is deleted, so 0). Every reply is checked for the protocol shape; any non-2xx
is counted as an error. The load generator plays the shop's front end: it holds the
service's identity key (a random one per run) and carries each session's token.

    python benchmarks/service_load.py
    python benchmarks/service_load.py --sessions 500 --concurrency 64 --max-sessions 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.metrics.summary import percentile  # noqa: E402

SCRIPT = [
    "Where is my order ORD-10001?",
    "I want to return ORD-10002, it is broken",
    "yes",
    "How long do refunds take?",
    "Please cancel ORD-10006",
    "yes",
    "Thanks, that's all",
]


async def conversation(client: httpx2.AsyncClient, sid: str, turns: int, stream: bool,
                       lat: list[float], ttft: list[float], errors: list[str]) -> None:
    headers: dict[str, str] = {}  # the session's token, once the first reply has sent it
    for i in range(turns):
        body = {"message": SCRIPT[i % len(SCRIPT)], "turn": i + 1, "channel": "web",
                "customer": {"email": "ana.silva@example.com"}, "stream": stream}
        t0 = time.perf_counter()
        try:
            if stream:
                first = None
                async with client.stream("POST", f"/v1/sessions/{sid}/messages", json=body, headers=headers) as r:
                    headers = {"Session-Token": r.headers.get("Session-Token", "")}
                    text = ""
                    async for chunk in r.aiter_text():
                        if first is None and "event: token" in chunk:
                            first = time.perf_counter()
                        text += chunk
                if r.status_code != 200 or "event: reply" not in text:
                    errors.append(f"{r.status_code} {text[:80]}")
                    continue
                if first is not None:
                    ttft.append((first - t0) * 1000)
            else:
                r = await client.post(f"/v1/sessions/{sid}/messages", json=body, headers=headers)
                headers = {"Session-Token": r.headers.get("Session-Token", "")}
                if r.status_code != 200 or "content" not in r.json():
                    errors.append(f"{r.status_code} {r.text[:80]}")
                    continue
        except httpx2.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        lat.append((time.perf_counter() - t0) * 1000)
    await client.get(f"/v1/sessions/{sid}/state", headers=headers)
    await client.delete(f"/v1/sessions/{sid}", headers=headers)


async def main_async(args: argparse.Namespace, base: str, key: str) -> None:
    lat: list[float] = []
    ttft: list[float] = []
    errors: list[str] = []
    sem = asyncio.Semaphore(args.concurrency)
    limits = httpx2.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    front_end = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(base_url=base, timeout=60, limits=limits, headers=front_end) as client:
        async def one(n: int) -> None:
            async with sem:
                await conversation(client, f"load-{n}", args.turns, n % 2 == 0, lat, ttft, errors)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(args.sessions)))
        elapsed = time.perf_counter() - t0
        health = (await client.get("/healthz")).json()
    n = len(lat) + len(errors)
    print(f"sessions {args.sessions} x {args.turns} turns, concurrency {args.concurrency}: "
          f"{n} requests in {elapsed:.2f}s = {n / elapsed:.0f} req/s, errors {len(errors)}")
    print(f"latency ms: p50 {percentile(lat, 50):.1f}  p95 {percentile(lat, 95):.1f}  "
          f"p99 {percentile(lat, 99):.1f}  max {max(lat):.1f}")
    if ttft:
        print(f"SSE time to first token ms: p50 {percentile(ttft, 50):.1f}  p95 {percentile(ttft, 95):.1f}")
    print(f"live sessions after the run: {health['sessions']}")
    print(f"load generator peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for e in errors[:5]:
        print("  error:", e)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--turns", type=int, default=7)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-sessions", type=int, default=1000)
    args = ap.parse_args()

    # The server runs in its own process (as in production), so the load generator's
    # own CPU use does not count against it.
    port = _free_port()
    key = secrets.token_urlsafe(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "reference_agent", "serve", "--port", str(port),
         "--max-sessions", str(args.max_sessions)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "REFERENCE_AGENT_IDENTITY_KEY": key},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the service did not start")
            time.sleep(0.1)
        asyncio.run(main_async(args, base, key))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
