"""Running ORM work from async code without holding a connection while streaming.

Each call is one thread hop; the connection is given back at the end of the
hop (to the pool when one is configured), so thousands of open streams do not
hold thousands of PostgreSQL connections.

A write that is safe to repeat can ask to be retried while the database is
unreachable (a restart, a failover): ``@retry_while_database_down(seconds)``.
The waiting is done on the event loop, not in a worker thread, and every
attempt gets a connection of its own (the failed one is closed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection

from conversations.db_errors import DATABASE_DOWN, database_problem

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# The hops run on threads of their own, not the event loop's default executor: a database that
# does not answer (psycopg's pool waiting DATABASE_POOL_TIMEOUT for a connection, a connect
# timeout) then stalls database work only, not what Django itself runs there (logging a 4xx/5xx
# response, converting an exception to a response). Same size as the default executor.
_executor = ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="run-db")


def _call_and_release(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return fn(*args, **kwargs)
    finally:
        if not connection.in_atomic_block:
            connection.close()


def retry_while_database_down(seconds: float) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Mark a write that is safe to repeat: :func:`run_db` retries it for up to ``seconds``."""

    def mark(fn: Callable[P, R]) -> Callable[P, R]:
        fn.database_retry_seconds = seconds  # type: ignore[attr-defined]
        return fn

    return mark


async def retrying_while_database_down(call: Callable[[], Awaitable[R]], seconds: float) -> R:
    """Await ``call()``, again after a short backoff while the database is down, for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    delay, attempts = 0.1, 1
    while True:
        try:
            return await call()
        except DATABASE_DOWN as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.error(
                    "%s after %d attempt(s): %s", database_problem(exc)[0], attempts, type(exc).__name__
                )
                raise
            if attempts == 1:
                logger.warning(
                    "%s (%s); retrying for up to %.0fs", database_problem(exc)[0], type(exc).__name__, seconds
                )
            await asyncio.sleep(min(delay, remaining))
            delay, attempts = min(delay * 2, 1.0), attempts + 1


async def run_db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    def call() -> Awaitable[R]:
        return sync_to_async(_call_and_release, thread_sensitive=False, executor=_executor)(
            fn, *args, **kwargs
        )

    seconds = getattr(fn, "database_retry_seconds", 0)
    if seconds:
        return await retrying_while_database_down(call, seconds)
    return await call()
