"""One asyncio Redis client per event loop (redis-py connections belong to the loop that made them)."""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)


def redis_client() -> aioredis.Redis:
    """The client for REDIS_URL on the running loop. Short timeouts: Redis trouble must not stall a turn."""
    loop = asyncio.get_running_loop()
    url = settings.REDIS_URL
    entry = _clients.get(loop)
    if entry is None or entry[0] != url:
        # A blocking pool: under a burst (thousands of streams publishing at once) a command waits
        # up to a second for a free connection instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
            timeout=1,
            socket_connect_timeout=1,
            socket_timeout=1,
            health_check_interval=30,
        )
        client = aioredis.Redis(connection_pool=pool)
        _clients[loop] = entry = (url, client)
    return entry[1]
