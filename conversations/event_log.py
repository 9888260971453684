"""The replay buffer: every event of a running or recently finished turn, by seq.

With ``REDIS_URL`` the buffer is a Redis list per turn (index = seq - 1), so a
client may resume on any server process; without it, an in-process buffer
serves the single process. Entries expire (``TURN_BUFFER_TTL_SECONDS``); after
that the stored message is served instead.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from django.conf import settings

from conversations.redis_client import redis_client

logger = logging.getLogger(__name__)

MAX_EVENTS = 50_000


class BufferUnavailable(Exception):
    """The replay buffer cannot be reached (Redis down): resume cannot be served right now."""


def _key(message_id: str) -> str:
    return f"chat:turn:{message_id}:events"


class MemoryEventLog:
    def __init__(self) -> None:
        self._events: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._events.items() if expires < now]:
            del self._events[key]

    async def append(self, message_id: str, events: list[dict[str, Any]]) -> None:
        self._sweep()
        _, stored = self._events.get(message_id, (0.0, []))
        if len(stored) < MAX_EVENTS:
            stored.extend(events)
        self._events[message_id] = (time.monotonic() + settings.TURN_BUFFER_TTL_SECONDS, stored)

    async def read_after(self, message_id: str, after_seq: int) -> list[dict[str, Any]] | None:
        self._sweep()
        entry = self._events.get(message_id)
        if entry is None:
            return None
        return [e for e in entry[1][max(0, after_seq) :]]


class RedisEventLog:
    def _client(self):
        return redis_client()

    async def append(self, message_id: str, events: list[dict[str, Any]]) -> None:
        key = _key(message_id)
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                pipe.rpush(key, *(orjson.dumps(e) for e in events))
                pipe.expire(key, settings.TURN_BUFFER_TTL_SECONDS)
                await pipe.execute()
        except Exception as exc:  # the turn goes on; only resume degrades
            raise BufferUnavailable(str(exc)) from exc

    async def read_after(self, message_id: str, after_seq: int) -> list[dict[str, Any]] | None:
        key = _key(message_id)
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                pipe.exists(key)
                pipe.lrange(key, max(0, after_seq), -1)
                exists, raw = await pipe.execute()
        except Exception as exc:
            raise BufferUnavailable(str(exc)) from exc
        if not exists:
            return None
        return [orjson.loads(item) for item in raw]


_memory_log = MemoryEventLog()
_redis_log = RedisEventLog()


def get_event_log() -> MemoryEventLog | RedisEventLog:
    return _redis_log if settings.REDIS_URL else _memory_log
