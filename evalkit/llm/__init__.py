"""Everything that talks to a language model: settings, the client, the cache, prices."""

from evalkit.llm.cache import CacheMode, CacheStats, ResponseCache
from evalkit.llm.client import ChatResult, LLMClient, LLMClients, UsageTotals, role_client, strict_schema
from evalkit.llm.errors import ModelCallError, scrub
from evalkit.llm.settings import ModelRoles, ModelSettings
from evalkit.pricing import Price, PriceTable, load_prices

__all__ = [
    "CacheMode",
    "CacheStats",
    "ChatResult",
    "LLMClient",
    "LLMClients",
    "ModelCallError",
    "ModelRoles",
    "ModelSettings",
    "Price",
    "PriceTable",
    "ResponseCache",
    "UsageTotals",
    "load_prices",
    "role_client",
    "scrub",
    "strict_schema",
]
