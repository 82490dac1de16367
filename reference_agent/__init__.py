"""AcmeCorp's reference customer-support agent (the agent evalkit's bundled suite tests).

``SupportAgent`` (in :mod:`reference_agent.agent`) is one conversation; ``open_store``
gives a fresh seeded copy of the shop database; ``create_agent`` is the evalkit factory
(``--agent reference_agent:create_agent``). Names are loaded lazily so importing the
package stays cheap and does not import evalkit.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SupportAgent", "AgentResponse", "open_store", "create_agent"]

_EXPORTS = {
    "SupportAgent": "reference_agent.agent",
    "AgentResponse": "reference_agent.agent",
    "open_store": "reference_agent.store",
    "create_agent": "reference_agent.adapter",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reference_agent' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
