"""Who is watching a session: WebSocket listeners registered per process and, with Redis, across processes.

A turn with no listener left is stopped after a grace period; this is how it
knows whether a socket on another process still watches the session.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.conf import settings

from conversations.redis_client import redis_client

logger = logging.getLogger(__name__)

_local: Counter[str] = Counter()
TTL = 3600


def presence_key(group: str) -> str:
    return f"chat:presence:{group}"


def presence_local_count(group: str) -> int:
    """Sockets of the session's group in this process."""
    return _local.get(group, 0)


async def presence_add(group: str, channel_name: str) -> None:
    _local[group] += 1
    if settings.REDIS_URL:
        try:
            async with redis_client().pipeline(transaction=False) as pipe:
                pipe.sadd(presence_key(group), channel_name)
                pipe.expire(presence_key(group), TTL)
                await pipe.execute()
        except Exception as exc:
            logger.warning("presence: redis unavailable (%s)", type(exc).__name__)


async def presence_remove(group: str, channel_name: str) -> None:
    _local[group] -= 1
    if _local[group] <= 0:
        del _local[group]
    if settings.REDIS_URL:
        try:
            await redis_client().srem(presence_key(group), channel_name)
        except Exception as exc:
            logger.warning("presence: redis unavailable (%s)", type(exc).__name__)


async def presence_count(group: str) -> int:
    """Listeners of the session's group anywhere (this process only, without Redis or when it is down)."""
    if settings.REDIS_URL:
        try:
            return int(await redis_client().scard(presence_key(group)))
        except Exception as exc:
            logger.warning("presence: redis unavailable (%s)", type(exc).__name__)
    return _local.get(group, 0)
