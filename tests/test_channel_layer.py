"""The Redis channel layer under receivers that come and go (real Redis; skipped without REDIS_URL).

Found by the client-disconnect scenario (tests/reliability): a resumed SSE stream waited forever
for the end of its turn.
"""

import asyncio
import os
import uuid

import pytest

from conversations.channel_layer import ResilientRedisChannelLayer

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


@pytest.fixture
def layer():
    return ResilientRedisChannelLayer(
        hosts=[{"address": os.environ["REDIS_URL"], "socket_timeout": 15}],
        prefix=f"test-{uuid.uuid4().hex[:8]}",
    )


async def test_a_channel_of_another_prefix_is_not_starved_by_a_waiting_receiver(layer):
    socket = await layer.new_channel()  # a consumer's channel: its receiver waits, nothing comes
    resume = await layer.new_channel("resume.")
    assert layer.non_local_name(resume) == layer.non_local_name(socket)  # one queue per process
    waiting = asyncio.create_task(layer.receive(socket))
    await asyncio.sleep(0.2)  # it holds the process's receive, blocked in Redis
    try:
        await layer.send(resume, {"type": "turn.events", "n": 1})
        receiving = asyncio.ensure_future(layer.receive(resume))
        done, _ = await asyncio.wait({receiving}, timeout=3)
        assert receiving in done, "starved"
        assert receiving.result()["n"] == 1
    finally:
        waiting.cancel()
