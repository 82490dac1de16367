"""Shipped test doubles: scripted and misbehaving agents (and, elsewhere in this package,
a fake OpenAI-compatible server). Nothing here is imported until it is asked for."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ScriptedAgent": "evalkit.testing.agents",
    "EchoAgent": "evalkit.testing.agents",
    "SlowAgent": "evalkit.testing.agents",
    "FlakyAgent": "evalkit.testing.agents",
    "StatefulAgent": "evalkit.testing.agents",
    "FakeOpenAIServer": "evalkit.testing.fake_openai",
    "Reply": "evalkit.testing.fake_openai",
    "Rule": "evalkit.testing.fake_openai",
    "Failure": "evalkit.testing.fake_openai",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
