"""Shared helpers for the core tests: a tiny scripted simulator stand-in and suite writers."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from evalkit.core.transcript import StopReason
from evalkit.simulators.base import SimulatorContext, Stop, UserMessage


class LineSimulator:
    """Replays the scenario's script (or a persona's opening then 'thanks'), nothing clever."""

    def __init__(self, scenario: Any, seed: int) -> None:
        self.scenario = scenario
        self.seed = seed

    def next_turn(self, ctx: SimulatorContext) -> UserMessage | Stop:
        script = self.scenario.user.script
        if script is not None:
            if ctx.turn > len(script):
                return Stop(reason=StopReason.script_done)
            return UserMessage(content=script[ctx.turn - 1].say)
        if ctx.turn > 3:
            return Stop(reason=StopReason.goal_met)
        return UserMessage(content=f"persona says {ctx.turn} seed {self.seed}")


def line_simulator(scenario: Any, *, kind: str = "auto", seed: int = 0, llm: Any = None) -> LineSimulator:
    return LineSimulator(scenario, seed)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def script_suite(folder: Path, n: int, steps: int = 2, extra: str = "") -> Path:
    """A suite of ``n`` scripted scenarios with ``steps`` user turns each."""
    lines = ["scenarios:"]
    for i in range(n):
        lines.append(f"  - id: s{i:03d}\n    tags: [t{i % 2}]\n    user:\n      script:")
        lines += [f"        - say: message {k} of {i}" for k in range(steps)]
    write(folder / "scenarios.yaml", "\n".join(lines) + "\n")
    if extra:
        write(folder / "suite.yaml", extra)
    return folder
