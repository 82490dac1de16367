"""Reference agent speed: store copies and whole conversations per second.

    python benchmarks/reference_agent_bench.py [N]
"""

from __future__ import annotations

import sys
import time

from reference_agent.agent import SupportAgent
from reference_agent.store import open_store

SCRIPT = [
    "hi",
    "Where is my order?",
    "ORD-10001",
    "I want to return ORD-10002, it arrived broken",
    "yes",
    "no thanks",
]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    open_store().close()  # build the template once
    t = time.perf_counter()
    for _ in range(n):
        open_store().close()
    copy_ms = (time.perf_counter() - t) * 1000 / n
    t = time.perf_counter()
    turns = 0
    for i in range(n):
        agent = SupportAgent(session_id=f"bench-{i}", customer_email="ana.silva@example.com")
        for msg in SCRIPT:
            agent.reply(msg)
            turns += 1
        agent.close()
    total = time.perf_counter() - t
    print(f"store copy: {copy_ms:.3f} ms each")
    print(f"{n} conversations ({turns} turns): {total:.2f} s; {total * 1000 / turns:.2f} ms per turn")


if __name__ == "__main__":
    main()
