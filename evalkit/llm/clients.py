"""The model clients of one run, by role: what simulators, judges and agents are handed as ``llm``.

:class:`ModelClients` is frozen and names each role's :class:`~evalkit.llm.LLMClient` (``None``
when that role has no model); ``None`` in place of the whole object means offline. It imports
no ``openai``: a rules-only run can name the type without loading the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from evalkit.llm.cache import ResponseCache
    from evalkit.llm.client import LLMClient

__all__ = ["ModelClients", "Role"]

Role = Literal["simulator", "judge", "agent"]
ROLES: tuple[Role, ...] = ("simulator", "judge", "agent")


@dataclass(frozen=True, eq=False)
class ModelClients:
    """One client per role: ``simulator`` (LLM-driven users), ``judge`` (model judges and a
    user's goal check) and ``agent`` (model-backed agents, through :class:`AgentConfig`).

    In a test, ``ModelClients(judge=client)`` hands one client to the judges alone.
    ``cache`` is the response cache the clients share (its hit counts go to the manifest).
    """

    simulator: LLMClient | None = None
    judge: LLMClient | None = None
    agent: LLMClient | None = None
    cache: ResponseCache | None = None

    def clients(self) -> dict[Role, LLMClient]:
        """The configured roles and their clients."""
        return {r: c for r in ROLES if (c := getattr(self, r)) is not None}

    def models(self) -> dict[str, str]:
        """``{role: "model @ url"}`` for the run manifest."""
        return {r: c.settings.describe() for r, c in self.clients().items()}

    def usage(self) -> dict[str, dict[str, int | float]]:
        """Per-role totals (calls, tokens, cost, retries, failures) for the manifest."""
        return {r: c.totals.as_dict() for r, c in self.clients().items()}

    def cache_stats(self) -> dict[str, int]:
        """Hits, misses and writes, for ``RunManifest.cache``."""
        return self.cache.stats.as_dict() if self.cache is not None else {}

    def caches(self) -> list[ResponseCache]:
        """Every response cache reachable from these clients (shared or a client's own)."""
        found = [self.cache, *(c.cache for c in self.clients().values())]
        return list({id(c): c for c in found if c is not None}.values())

    def withhold_pii(self) -> None:
        """What ``--redact-pii`` does to the response caches: they store no PII."""
        for cache in self.caches():
            cache.redact_pii = True

    async def aclose(self) -> None:
        for c in self.clients().values():
            await c.aclose()
