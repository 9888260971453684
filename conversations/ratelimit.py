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

from django.conf import settings
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)

WARN_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0


class TurnRateLimiter:
    def __init__(self) -> None:
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[str, MovingWindowRateLimiter]
        ] = weakref.WeakKeyDictionary()
        self._last_warning = 0.0

    def _limiter(self) -> MovingWindowRateLimiter:
        loop = asyncio.get_running_loop()
        url = settings.REDIS_URL
        entry = self._limiters.get(loop)
        if entry is None or entry[0] != url:
            storage = RedisStorage(
                "async+" + url, implementation="redispy", socket_connect_timeout=1, socket_timeout=1
            )
            entry = (url, MovingWindowRateLimiter(storage))
            self._limiters[loop] = entry
        return entry[1]

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
            now = time.monotonic()
            if now - self._last_warning >= WARN_INTERVAL:
                self._last_warning = now
                logger.warning(
                    "rate limiting skipped: Redis unreachable (%s); requests pass", type(exc).__name__
                )
            return RateDecision(True)
        return RateDecision(False, max(1.0, stats.reset_time - time.time()))


turn_rate_limiter = TurnRateLimiter()
