"""ASGI lifespan: start-up and graceful shutdown around the Channels router.

Start-up warms the provider registry and starts turn maintenance (heartbeat of
local turns, recovery of orphans). Shutdown (after the server stopped accepting
and closed or timed out its connections) lets running turns finish for
``SHUTDOWN_GRACE_SECONDS``, then stops the rest, which are saved ``interrupted``.
Servers without lifespan (daphne) start maintenance with the first turn instead.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


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
        from conversations.recovery import maintenance

        maintenance.ensure()

    async def shutdown(self) -> None:
        from django.conf import settings

        from conversations import pg_turns
        from conversations.jobs import drain
        from conversations.recovery import maintenance

        await drain(settings.SHUTDOWN_GRACE_SECONDS)
        await maintenance.stop()
        await pg_turns.close_pool()
