"""Time of the PII detectors (``no_pii_leak``, ``--redact-pii``) on large agent replies.

A reply may be up to ``max_reply_bytes`` (5 MB by default) of whatever the agent chose:

    python benchmarks/pii_scale.py              # 1 MB of each text
    python benchmarks/pii_scale.py --mb 5
"""

from __future__ import annotations

import argparse
import random
import time

from evalkit.core.pii import detect_pii


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0)
    n = int(parser.parse_args().mb * 1_000_000)
    rng = random.Random(0)
    texts = {
        "prose": ("Your order ORD-10001 shipped on 3 May; the refund of $25.00 is on its way. " * (n // 75 + 1))[:n],
        "contacts (phone + email, repeated)": ("call 555-0100 or ana@example.com, " * (n // 34 + 1))[:n],
        "digit flood '1 1 1 ...'": ("1 " * (n // 2 + 1))[:n],
        "random digits and spaces": "".join(rng.choice("0123456789 ") for _ in range(n)),
    }
    for name, text in texts.items():
        started = time.perf_counter()
        found = detect_pii(text)
        print(f"{name:38s} {len(text) / 1e6:.1f} MB  {time.perf_counter() - started:7.2f} s  {len(found)} found")


if __name__ == "__main__":
    main()
