"""The Redis replay buffer: every running turn's appends of an interval in one script call."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from conversations.presence import presence_key
from conversations.redis_client import redis_client
from conversations.turns.replay_buffer import BufferUnavailable, RedisReplayBuffer

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the Redis buffer needs REDIS_URL")


def events(message_id: str, first: int, count: int) -> list[dict]:
    return [
        {"seq": s, "type": "delta", "message_id": message_id, "text": f"t{s}"}
        for s in range(first, first + count)
    ]


@needs_redis
async def test_appends_of_many_turns_in_one_flush_keep_order_counts_and_expiry(settings):
    settings.REDIS_URL = os.environ["REDIS_URL"]
    settings.TURN_PUBLISH_INTERVAL_SECONDS = 0.05
    buffer, redis = RedisReplayBuffer(), redis_client()
    turns = [f"rb-{uuid.uuid4().hex}" for _ in range(3)]
    group = f"chat.rb{uuid.uuid4().hex}"
    await redis.sadd(presence_key(group), "a", "b")
    try:
        counts = await asyncio.gather(
            buffer.append(turns[0], events(turns[0], 1, 2), refresh_expiry=True, count_listeners_of=group),
            buffer.append(turns[1], events(turns[1], 1, 2500), refresh_expiry=False),  # > one RPUSH slice
            buffer.append(
                turns[2], events(turns[2], 1, 1), refresh_expiry=True, count_listeners_of="chat.none"
            ),
        )
        assert counts == [2, 0, 0]
        assert [e["seq"] for e in await buffer.read_after(turns[1], 0)] == list(range(1, 2501))
        assert await buffer.read_after(turns[0], 1) == events(turns[0], 2, 1)
        assert 0 < await redis.ttl(f"chat:turn:{turns[0]}:events") <= settings.TURN_BUFFER_TTL_SECONDS
        assert await redis.ttl(f"chat:turn:{turns[1]}:events") == -1  # no expiry asked for (yet)
        await buffer.append(turns[0], events(turns[0], 3, 1), refresh_expiry=False)
        assert [e["seq"] for e in await buffer.read_after(turns[0], 0)] == [1, 2, 3]
    finally:
        await redis.delete(presence_key(group), *(f"chat:turn:{t}:events" for t in turns))


async def test_redis_down_fails_every_append_of_the_flush_as_buffer_unavailable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    settings.TURN_PUBLISH_INTERVAL_SECONDS = 0.01
    buffer = RedisReplayBuffer()
    results = await asyncio.gather(
        buffer.append("x", events("x", 1, 1)), buffer.append("y", events("y", 1, 1)), return_exceptions=True
    )
    assert all(isinstance(r, BufferUnavailable) for r in results)
