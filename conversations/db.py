"""Running ORM work from async code without holding a connection while streaming.

Each call is one thread hop; the connection is given back at the end of the
hop (to the pool when one is configured), so thousands of open streams do not
hold thousands of PostgreSQL connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection

P = ParamSpec("P")
R = TypeVar("R")


def _call_and_release(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return fn(*args, **kwargs)
    finally:
        if not connection.in_atomic_block:
            connection.close()


async def run_db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await sync_to_async(_call_and_release, thread_sensitive=False)(fn, *args, **kwargs)
