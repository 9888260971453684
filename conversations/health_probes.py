"""Dependency probes for the health endpoint: the database and (when configured) Redis."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from psycopg_pool import ConnectionPool, PoolTimeout

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0


def _pool_ping(pool: ConnectionPool) -> None:
    """DATABASE_POOL: wait PROBE_TIMEOUT for a connection, not DATABASE_POOL_TIMEOUT. A pooled
    connection that fails is likely one a PostgreSQL restart left stale: drop every broken one
    (``pool.check()``) and ask once more, so the answer is about the database, not one connection."""
    pool.open()
    for attempt in (1, 2):
        try:
            with pool.connection(timeout=PROBE_TIMEOUT) as conn:
                conn.execute("SELECT 1")
            return
        except PoolTimeout:
            raise
        except psycopg.Error:
            if attempt == 2:
                raise
            pool.check()


def _database_ping() -> None:
    pool = getattr(connection, "pool", None)
    if pool is not None:
        _pool_ping(pool)
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        connection.close()  # the next probe reconnects from scratch
        raise


async def database_ok() -> bool:
    try:
        await asyncio.wait_for(sync_to_async(_database_ping)(), PROBE_TIMEOUT + 3)
    except Exception as exc:
        logger.warning("health: database unreachable (%s)", type(exc).__name__)
        return False
    return True


async def redis_ok(url: str) -> bool:
    client = aioredis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)
    try:
        await asyncio.wait_for(client.ping(), PROBE_TIMEOUT + 1)
    except Exception as exc:
        logger.warning("health: redis unreachable (%s)", type(exc).__name__)
        return False
    finally:
        await client.aclose()
    return True


async def dependency_states() -> dict[str, str]:
    """``{"database": "ok"|"unavailable", "redis": …}``; redis only when REDIS_URL is set."""
    probes = {"database": database_ok()}
    if settings.REDIS_URL:
        probes["redis"] = redis_ok(settings.REDIS_URL)
    results = await asyncio.gather(*probes.values())
    return {name: "ok" if ok else "unavailable" for name, ok in zip(probes, results, strict=True)}
