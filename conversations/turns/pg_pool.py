"""The native PostgreSQL path's connections: an async psycopg pool per event loop, and one-round-trip
statement batches on a connection held only for that round trip (never while streaming).

The pool closes with its event loop (``asyncio.run``, uvicorn's loop, a test's loop), not at
garbage collection; a PostgreSQL restart does not hand out stale connections (``check``).
"""

from __future__ import annotations

import asyncio
import select
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from psycopg_pool import AsyncConnectionPool


def spoke_while_idle(conn: psycopg.Connection | psycopg.AsyncConnection) -> bool:
    """Whether the server wrote to a connection sitting idle in a pool: on a shutdown or restart
    it says so and closes the socket. One non-blocking poll, no round trip."""
    try:
        fd = conn.fileno()
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):  # closed already
        return True


async def check_pooled_connection(conn: psycopg.AsyncConnection, pool: AsyncConnectionPool) -> None:
    """``check`` of an async psycopg pool, so a PostgreSQL restart does not hand out stale connections.

    A round trip only for a connection the server spoke to while it was idle (the pool drops it
    if that fails); then the other idle ones are likely stale too: ``pool.check()`` drops them
    all at once, rather than one per request with the pool's backoff in between.
    """
    if spoke_while_idle(conn):
        await pool.check()
        await conn.execute("")


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[AsyncConnectionPool]] = (
    weakref.WeakKeyDictionary()
)
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

_SKIPPED_OPTIONS = {
    "pool",
    "isolation_level",
    "server_side_binding",
    "assume_role",
    "cursor_factory",
    "context",
}


def connection_kwargs() -> dict[str, Any]:
    """psycopg connection arguments for Django's default database (its test name under the test runner)."""
    s = connections["default"].settings_dict
    kwargs: dict[str, Any] = {
        "dbname": s["NAME"],
        "user": s.get("USER") or None,
        "password": s.get("PASSWORD") or None,
        "host": s.get("HOST") or None,
        "port": str(s["PORT"]) if s.get("PORT") else None,
        "autocommit": True,
    }
    kwargs.update({k: v for k, v in (s.get("OPTIONS") or {}).items() if k not in _SKIPPED_OPTIONS})
    return {k: v for k, v in kwargs.items() if v is not None}


async def _close_with_loop(pool: AsyncConnectionPool) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await pool.close()


async def _open_pool() -> AsyncConnectionPool:
    async def check(conn: psycopg.AsyncConnection) -> None:
        await check_pooled_connection(conn, pool)

    pool = AsyncConnectionPool(
        kwargs=connection_kwargs(),
        min_size=1,
        max_size=settings.TURN_DB_POOL_SIZE,
        timeout=settings.TURN_DB_POOL_TIMEOUT,
        check=check,  # no stale connections after a PostgreSQL restart
        open=False,
        name="turns",
    )
    await pool.open(wait=False)
    # A started async generator is finalized by the loop's shutdown_asyncgens() (asyncio.run,
    # asyncio.Runner, uvicorn): the pool's connections close with their loop, not at garbage collection.
    closer = _close_with_loop(pool)
    await anext(closer)
    _closers[asyncio.get_running_loop()] = closer
    return pool


async def pool() -> AsyncConnectionPool:
    loop = asyncio.get_running_loop()
    future = _pools.get(loop)
    if future is None:
        future = _pools[loop] = asyncio.ensure_future(_open_pool())
    return await future


async def close_pool() -> None:
    """Close this event loop's pool (lifespan shutdown, end of a test)."""
    loop = asyncio.get_running_loop()
    future = _pools.pop(loop, None)
    closer = _closers.pop(loop, None)
    if closer is not None:
        await closer.aclose()
    elif future is not None:
        await (await future).close()


async def batch(
    conn: psycopg.AsyncConnection, statements: list[str], params: Any
) -> list[list[tuple] | None]:
    """Several statements in one simple-protocol message (one round trip), parameters bound client-side
    (psycopg escapes them); the rows of each, ``None`` for a statement without a result."""
    cursor = psycopg.AsyncClientCursor(conn)
    await cursor.execute("; ".join(statements), params)
    results: list[list[tuple] | None] = []
    while True:
        results.append(await cursor.fetchall() if cursor.description is not None else None)
        if not cursor.nextset():
            return results


@asynccontextmanager
async def transaction_connection() -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection; a transaction left open by an error (or an early return) is rolled back."""
    async with (await pool()).connection() as conn:
        try:
            yield conn
        finally:
            if not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.rollback()
