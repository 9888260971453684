"""ASGI start-up warms what the first turn would otherwise pay for."""

import asyncio
import gc

import pytest

from chatproject.lifespan import GC_THRESHOLDS, LifespanApp
from conversations.turns import pg_pool
from conversations.turns.recovery import maintenance
from conversations.turns.running import accepting_turns, start_accepting
from conversations.turns.store import native_enabled
from providers.registry import get_registry


@pytest.mark.django_db(transaction=True)
async def test_startup_builds_every_configured_provider_before_the_first_request(openai_upstream):
    messages = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    sent = []

    accepting = []

    warmed = []

    async def send(message):
        sent.append(message)
        accepting.append(accepting_turns())
        if message["type"] == "lifespan.startup.complete":
            if native_enabled():  # one turn-pool connection is open before the first turn
                warmed.append((await pg_pool.pool()).get_stats()["pool_size"] >= 1)
            await messages.put({"type": "lifespan.shutdown"})

    registry = get_registry()
    assert "openai" not in registry._built
    try:
        await LifespanApp(app=None)({"type": "lifespan"}, messages.get, send)
    finally:
        start_accepting()  # the rest of the suite runs in this process: it takes turns again
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "openai" in registry._built  # the SDK client exists before any turn asks for it
    assert "chat" in registry.get("openai")._client.__dict__  # and the SDK resource it calls is loaded
    assert all(warmed)
    assert gc.get_freeze_count() > 0 and gc.get_threshold() == GC_THRESHOLDS
    assert asyncio.get_running_loop() not in maintenance._tasks  # shutdown stopped it
    assert accepting == [True, False]  # taking turns after start-up, refusing them once drained


@pytest.mark.django_db(transaction=True)
async def test_startup_completes_when_redis_is_down_and_says_so(openai_upstream, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    messages = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    sent = []

    async def send(message):
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            await messages.put({"type": "lifespan.shutdown"})

    try:
        await LifespanApp(app=None)({"type": "lifespan"}, messages.get, send)
    finally:
        start_accepting()
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "could not open a connection ahead of the first turn" in caplog.text
