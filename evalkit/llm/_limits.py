"""Client-side rate limits: token buckets for requests and tokens per minute."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

__all__ = ["Bucket", "RateLimiter"]


@dataclass
class Bucket:
    """Refills at ``per_minute / 60`` units a second up to one second's worth (at least 1)."""

    per_minute: float
    level: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.level = self.capacity
        self.stamp = time.monotonic()

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate)

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` (capped at the capacity) is available; 0 when it is now."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount  # may go negative: a debt the next callers wait out


@dataclass
class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits shared by every call of one client."""

    rpm: int | None = None
    tpm: int | None = None
    _requests: Bucket | None = field(init=False, default=None)
    _tokens: Bucket | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._requests = Bucket(self.rpm) if self.rpm else None
        self._tokens = Bucket(self.tpm) if self.tpm else None

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, est_tokens: int) -> None:
        """Wait until one more request of about ``est_tokens`` tokens fits in both limits."""
        if not self.active:
            return
        while True:
            wait = 0.0
            if self._requests is not None:
                wait = max(wait, self._requests.wait_for(1))
            if self._tokens is not None:
                wait = max(wait, self._tokens.wait_for(est_tokens))
            if wait <= 0:
                if self._requests is not None:
                    self._requests.take(1)
                if self._tokens is not None:
                    self._tokens.take(est_tokens)
                return
            # Buckets are plain numbers touched only between awaits, so no lock is needed on
            # one event loop; re-check after sleeping because other calls may have taken.
            await asyncio.sleep(wait)

    def settle(self, est_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once the real usage of a call is known."""
        if self._tokens is not None and actual_tokens != est_tokens:
            self._tokens.take(actual_tokens - est_tokens)
