"""Everything that talks to a language model: settings, the client, the cache, prices.

The names below load on first use (PEP 562): ``evalkit.llm.client`` imports ``openai``, which
``evalkit run --help``, a rules-only run or ``evalkit.llm.cache`` alone never need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.core.pricing import Price, PriceTable, load_prices
    from evalkit.llm.cache import CacheMode, CacheStats, ResponseCache
    from evalkit.llm.client import ChatResult, LLMClient, UsageTotals, strict_schema
    from evalkit.llm.clients import ModelClients
    from evalkit.llm.errors import ModelCallError, scrub
    from evalkit.llm.settings import ModelRoles, ModelSettings

_WHERE = {
    "CacheMode": "evalkit.llm.cache",
    "CacheStats": "evalkit.llm.cache",
    "ResponseCache": "evalkit.llm.cache",
    "ChatResult": "evalkit.llm.client",
    "LLMClient": "evalkit.llm.client",
    "ModelClients": "evalkit.llm.clients",
    "UsageTotals": "evalkit.llm.client",
    "strict_schema": "evalkit.llm.client",
    "ModelCallError": "evalkit.llm.errors",
    "scrub": "evalkit.llm.errors",
    "ModelRoles": "evalkit.llm.settings",
    "ModelSettings": "evalkit.llm.settings",
    "Price": "evalkit.core.pricing",
    "PriceTable": "evalkit.core.pricing",
    "load_prices": "evalkit.core.pricing",
}

__all__ = [
    "CacheMode",
    "CacheStats",
    "ChatResult",
    "LLMClient",
    "ModelCallError",
    "ModelClients",
    "ModelRoles",
    "ModelSettings",
    "Price",
    "PriceTable",
    "ResponseCache",
    "UsageTotals",
    "load_prices",
    "scrub",
    "strict_schema",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
