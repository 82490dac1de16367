"""A stable hash of what a run plays: the scenarios and the settings that apply to them.

Every journal line carries it, so ``--resume`` can tell a line of this run from one copied
in from another suite, and a suite edited between a run and its resume is noticed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from evalkit.scenarios.models import Scenario, SuiteConfig

__all__ = ["suite_hash"]


def suite_hash(scenarios: Sequence[Scenario], configs: Sequence[SuiteConfig] = ()) -> str:
    """``sha256:<16 hex>`` of the scenarios (in order) and the suite settings."""
    data = {
        "scenarios": [s.model_dump(mode="json") for s in scenarios],
        "configs": [c.model_dump(mode="json") for c in configs],
    }
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
