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


async def test_receivers_cancelled_while_they_pop_lose_no_message_of_another_channel(layer):
    """Sockets closing all the time (their receives cancelled) while another socket listens."""
    listening = await layer.new_channel()
    await layer.group_add("session", listening)
    received: list[int] = []
    all_in = asyncio.Event()

    async def listen():
        while True:
            received.append((await layer.receive(listening))["n"])
            if len(received) == 600:
                all_in.set()

    async def come_and_go():
        while True:
            channel = await layer.new_channel()
            await layer.group_add("session", channel)
            receive = asyncio.ensure_future(layer.receive(channel))
            await asyncio.sleep(0.003)
            receive.cancel()  # the socket closes, perhaps as Redis hands it a message
            await asyncio.wait({receive}, timeout=3)
            await layer.group_discard("session", channel)

    tasks = [asyncio.create_task(listen())] + [asyncio.create_task(come_and_go()) for _ in range(4)]
    try:
        for n in range(600):
            await layer.group_send("session", {"type": "turn.events", "n": n})
            if n % 10 == 0:
                await asyncio.sleep(0.002)
        tasks.append(asyncio.ensure_future(all_in.wait()))
        await asyncio.wait({tasks[-1]}, timeout=5)
    finally:
        for task in tasks:
            task.cancel()
    assert sorted(received) == list(range(600)), f"lost: {sorted(set(range(600)) - set(received))[:20]}"
    assert received == sorted(received)  # and in order
