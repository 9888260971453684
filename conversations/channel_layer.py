"""The channels-redis layer, made to outlive a Redis outage.

A socket's receive loop would otherwise die with the first connection error and
take the WebSocket down with it; here it waits and tries again, so sockets stay
open (and keep getting this process's events directly) until Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels_redis.core import RedisChannelLayer

logger = logging.getLogger(__name__)


class ResilientRedisChannelLayer(RedisChannelLayer):
    retry_delay = 1.0
    _last_warning = 0.0

    async def receive(self, channel: str) -> dict:
        while True:
            try:
                return await super().receive(channel)
            except (ConnectionError, OSError, TimeoutError) as exc:
                self._warn(exc)
            except Exception as exc:  # redis-py wraps connection failures in its own classes
                if "Connection" not in type(exc).__name__ and "Timeout" not in type(exc).__name__:
                    raise
                self._warn(exc)
            await asyncio.sleep(self.retry_delay)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - ResilientRedisChannelLayer._last_warning > 30:
            ResilientRedisChannelLayer._last_warning = now
            logger.warning("channel layer: Redis unreachable (%s); retrying", type(exc).__name__)
