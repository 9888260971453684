"""ASGI start-up warms what the first turn would otherwise pay for."""

import asyncio

import pytest

from chatproject.lifespan import LifespanApp
from conversations.turns.recovery import maintenance
from conversations.turns.running import accepting_turns, start_accepting
from providers.registry import get_registry


@pytest.mark.django_db(transaction=True)
async def test_startup_builds_every_configured_provider_before_the_first_request(openai_upstream):
    messages = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    sent = []

    accepting = []

    async def send(message):
        sent.append(message)
        accepting.append(accepting_turns())
        if message["type"] == "lifespan.startup.complete":
            await messages.put({"type": "lifespan.shutdown"})

    registry = get_registry()
    assert "openai" not in registry._built
    try:
        await LifespanApp(app=None)({"type": "lifespan"}, messages.get, send)
    finally:
        start_accepting()  # the rest of the suite runs in this process: it takes turns again
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "openai" in registry._built  # the SDK client exists before any turn asks for it
    assert asyncio.get_running_loop() not in maintenance._tasks  # shutdown stopped it
    assert accepting == [True, False]  # taking turns after start-up, refusing them once drained
