"""ASGI lifespan: start-up and graceful shutdown around the Channels router.

Start-up warms what the first turn would otherwise pay for (importing the turn path, building
every configured provider with its SDK client, in a worker thread; opening a PostgreSQL and a
Redis connection), takes the start-up heap out of garbage collection, and starts turn maintenance
(heartbeat of local turns, recovery of orphans). Shutdown (after the server stopped accepting
and closed or timed out its connections) lets running turns finish for
``SHUTDOWN_GRACE_SECONDS``, then stops the rest, which are saved ``interrupted``.
Servers without lifespan (daphne) start maintenance with the first turn instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

logger = logging.getLogger(__name__)

#: How long start-up waits for the first PostgreSQL and Redis connections before going on without.
WARM_CONNECT_SECONDS = 3.0


class LifespanApp:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        from chatproject.startup_report import report
        from conversations.turns.recovery import maintenance
        from conversations.turns.running import start_accepting

        await asyncio.to_thread(warm_up)
        report()
        await warm_connections()
        tune_gc()
        start_accepting()
        maintenance.ensure()

    async def shutdown(self) -> None:
        from django.conf import settings

        from conversations import telemetry
        from conversations.turns import pg_pool
        from conversations.turns.recovery import maintenance
        from conversations.turns.running import drain

        await drain(settings.SHUTDOWN_GRACE_SECONDS)
        await maintenance.stop()
        await pg_pool.close_pool()
        await asyncio.to_thread(telemetry.shutdown)  # flushes the spans and metrics not yet exported


def warm_up() -> None:
    """Import the turn path and the views, set up telemetry when asked for (and its METRICS_BIND
    listener), and build each configured provider (a failure is logged, not fatal: the turn that
    needs that provider reports it)."""
    from django.urls import Resolver404, get_resolver

    import conversations.turns.service  # noqa: F401 - the turn path and the encoders it pulls in
    from conversations import telemetry
    from providers.registry import get_registry

    telemetry.configure()

    with contextlib.suppress(Resolver404):  # imports the URLconf and its views, compiles patterns
        get_resolver().resolve("/api/sessions/warm-up/messages")

    from billing.prices import price_book

    try:  # the prices edited in the admin apply from the first turn on
        price_book.load()
    except Exception as exc:
        logger.warning("prices not read at start-up (%s): read at the first turn", type(exc).__name__)

    registry = get_registry()
    for name in registry.names(configured_only=True):
        try:
            registry.get(name)
        except Exception as exc:
            logger.warning("provider %s could not be built at start-up: %s", name, exc)


async def warm_connections() -> None:
    """Open, on the server's loop, the connections a first turn would otherwise wait for: one of the
    turn pool's PostgreSQL connections and a Redis connection. A dependency that is down is logged
    and left to the health check and the first turn (which reports it)."""
    from django.conf import settings

    from conversations.turns import pg_pool
    from conversations.turns.store import native_enabled

    try:
        if native_enabled():
            await (await pg_pool.pool()).wait(timeout=WARM_CONNECT_SECONDS)
        if settings.REDIS_URL:
            from conversations.redis_client import redis_client

            await asyncio.wait_for(redis_client().ping(), WARM_CONNECT_SECONDS)
    except Exception as exc:
        logger.warning("start-up could not open a connection ahead of the first turn: %s", exc)


#: The cyclic garbage collector's thresholds for a serving process (CPython's are 700, 10, 10).
GC_THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """Keep the garbage collector off what start-up built: ``gc.freeze()`` moves every object
    alive now (modules, settings, URLconf, SDK clients) out of the collections, and larger
    thresholds make the collections that remain rarer. Turns allocate many short-lived objects;
    with CPython's defaults the collector re-scanned the start-up heap over and over
    (``bench/throughput.py``, 64 concurrent: 8.96 -> 7.33 ms of server CPU per turn)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
