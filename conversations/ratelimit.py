"""Rate limiting of turns, per API key (per user, per IP when anonymous), stored in Redis.

Built on the ``limits`` library (moving window, async Redis storage). Without
REDIS_URL there is no limit. When Redis is unreachable, requests pass (fail
open) and a warning is logged at most once a minute, so a Redis outage never
takes chat down with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

logger = logging.getLogger(__name__)

WARN_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0


class _RedisLimiter:
    """A ``limits`` strategy on REDIS_URL, one per event loop (its Redis connections belong to the loop)."""

    strategy: type = MovingWindowRateLimiter
    what = "rate limiting"

    def __init__(self) -> None:
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._last_warning = 0.0

    def _limiter(self) -> Any:
        loop = asyncio.get_running_loop()
        url = settings.REDIS_URL
        entry = self._limiters.get(loop)
        if entry is None or entry[0] != url:
            storage = RedisStorage(
                "async+" + url, implementation="redispy", socket_connect_timeout=1, socket_timeout=1
            )
            entry = (url, self.strategy(storage))
            self._limiters[loop] = entry
        return entry[1]

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_INTERVAL:
            self._last_warning = now
            logger.warning("%s skipped: Redis unreachable (%s); turns pass", self.what, type(exc).__name__)


class TurnRateLimiter(_RedisLimiter):
    async def hit(self, key: str, limit: str | None = None) -> RateDecision:
        rate = limit or settings.RATE_LIMIT_TURNS
        if not settings.REDIS_URL or not rate:
            return RateDecision(True)
        item: RateLimitItem = parse(rate)
        limiter = self._limiter()
        try:
            if await limiter.hit(item, "turns", key):
                return RateDecision(True)
            stats = await limiter.get_window_stats(item, "turns", key)
        except Exception as exc:
            self._warn(exc)
            return RateDecision(True)
        return RateDecision(False, max(1.0, stats.reset_time - time.time()))


turn_rate_limiter = TurnRateLimiter()


class TokenRateLimiter(_RedisLimiter):
    """Tokens (input + output) per window per key (``RATE_LIMIT_TOKENS``), beside the turn rate.

    A turn is let in while its key's window has tokens left and is charged its actual tokens when
    it ends, so a key overshoots by at most the turns it had running. Fixed windows (``limits``),
    Redis; without Redis, or when Redis is unreachable, turns pass (fail open, warned once a minute).
    """

    strategy = FixedWindowRateLimiter
    what = "token rate limit"

    async def allow(self, key: str) -> RateDecision:
        rate = settings.RATE_LIMIT_TOKENS
        if not settings.REDIS_URL or not rate:
            return RateDecision(True)
        item = parse(rate)
        try:
            limiter = self._limiter()
            if await limiter.test(item, "tokens", key):
                return RateDecision(True)
            stats = await limiter.get_window_stats(item, "tokens", key)
        except Exception as exc:
            self._warn(exc)
            return RateDecision(True)
        return RateDecision(False, max(1.0, stats.reset_time - time.time()))

    async def spend(self, key: str, tokens: int) -> None:
        rate = settings.RATE_LIMIT_TOKENS
        if not settings.REDIS_URL or not rate or tokens <= 0:
            return
        try:
            await self._limiter().hit(parse(rate), "tokens", key, cost=tokens)
        except Exception as exc:
            self._warn(exc)


token_rate_limiter = TokenRateLimiter()
