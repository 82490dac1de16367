"""Client-side rate limits (requests and tokens per minute) on :class:`aiolimiter.AsyncLimiter`.

Each limit is a leaky bucket that holds one second's worth (at least one unit), so calls are
spread over the minute instead of bursting a whole minute's budget at the start.

Tokens are only known once a call returns, so a call takes its estimate before it is sent
and :meth:`RateLimits.settle` takes the rest of its real usage afterwards (the caller that
overdrew waits for it, so the calls after it are held back as a provider's limit would hold
them). aiolimiter has no way to give capacity back, so a call that used fewer tokens than
estimated keeps its estimate counted: the limit errs on the safe side and is never exceeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

__all__ = ["RateLimits"]


def _per_minute(per_minute: int) -> AsyncLimiter:
    """A limiter of ``per_minute`` units a minute that holds ``max(1, per_minute / 60)`` units."""
    capacity = max(1.0, per_minute / 60.0)
    return AsyncLimiter(capacity, time_period=capacity * 60.0 / per_minute)


async def _take(limiter: AsyncLimiter, amount: float) -> None:
    """Take ``amount`` units, in bucket-sized pieces when it is more than the bucket holds."""
    while amount > 0:
        piece = min(amount, limiter.max_rate)
        await limiter.acquire(piece)
        amount -= piece


@dataclass
class RateLimits:
    """Requests-per-minute and tokens-per-minute limits shared by every call of one client."""

    rpm: int | None = None
    tpm: int | None = None
    _requests: AsyncLimiter | None = field(init=False, default=None)
    _tokens: AsyncLimiter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._requests = _per_minute(self.rpm) if self.rpm else None
        self._tokens = _per_minute(self.tpm) if self.tpm else None

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, est_tokens: int) -> None:
        """Wait until one more request of about ``est_tokens`` tokens fits in both limits."""
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            await _take(self._tokens, est_tokens)

    async def settle(self, est_tokens: int, actual_tokens: int) -> None:
        """Count the tokens a call used beyond its estimate, once its real usage is known."""
        if self._tokens is not None and actual_tokens > est_tokens:
            await _take(self._tokens, actual_tokens - est_tokens)
