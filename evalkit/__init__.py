"""evalkit: test conversational support agents before they reach customers.

Public names are re-exported lazily so that ``import evalkit`` stays cheap and has no
side effects (no model clients, no deepeval, no telemetry).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "EvalkitError": "evalkit.core.errors",
    "Transcript": "evalkit.core.transcript",
    "Turn": "evalkit.core.transcript",
    "UserTurn": "evalkit.core.transcript",
    "AgentTurn": "evalkit.core.transcript",
    "ToolCall": "evalkit.core.transcript",
    "Handoff": "evalkit.core.transcript",
    "Usage": "evalkit.core.transcript",
    "Outcome": "evalkit.core.transcript",
    "StopReason": "evalkit.core.transcript",
    "Verdict": "evalkit.core.results",
    "JudgeKind": "evalkit.core.results",
    "ConversationResult": "evalkit.core.results",
    "RunManifest": "evalkit.core.results",
    "RunResult": "evalkit.core.results",
    "Scenario": "evalkit.scenarios.models",
    "SuiteConfig": "evalkit.scenarios.models",
    "JudgeSpec": "evalkit.scenarios.models",
    "Judge": "evalkit.judges.base",
    "JudgeContext": "evalkit.judges.base",
    "AgentReply": "evalkit.agents.base",
    "AgentConfig": "evalkit.agents.base",
    "TurnContext": "evalkit.agents.base",
    "SessionInfo": "evalkit.agents.base",
    "UserMessage": "evalkit.simulators.base",
    "Stop": "evalkit.simulators.base",
    "SimulatorContext": "evalkit.simulators.base",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
