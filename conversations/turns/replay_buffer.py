"""The replay buffer: every event of a running or recently finished turn, by seq.

With ``REDIS_URL`` the buffer is a Redis list per turn (index = seq - 1), so a
client may resume on any server process; without it, an in-process buffer
serves the single process. Entries expire (``TURN_BUFFER_TTL_SECONDS``); after
that the stored message is served instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

import orjson
from django.conf import settings

from conversations.presence import presence_key, presence_local_count
from conversations.redis_client import redis_client

logger = logging.getLogger(__name__)

MAX_EVENTS = 50_000


class BufferUnavailable(Exception):
    """The replay buffer cannot be reached (Redis down): resume cannot be served right now."""


def _key(message_id: str) -> str:
    return f"chat:turn:{message_id}:events"


class MemoryReplayBuffer:
    def __init__(self) -> None:
        self._events: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._events.items() if expires < now]:
            del self._events[key]

    async def append(
        self,
        message_id: str,
        events: list[dict[str, Any]],
        *,
        refresh_expiry: bool = True,
        count_listeners_of: str | None = None,
    ) -> int:
        """Add events. Returns the sockets of ``count_listeners_of`` anywhere: this process's, without Redis."""
        self._sweep()
        _, stored = self._events.get(message_id, (0.0, []))
        if len(stored) < MAX_EVENTS:
            stored.extend(events)
        self._events[message_id] = (time.monotonic() + settings.TURN_BUFFER_TTL_SECONDS, stored)
        return presence_local_count(count_listeners_of) if count_listeners_of else 0

    async def read_after(self, message_id: str, after_seq: int) -> list[dict[str, Any]] | None:
        self._sweep()
        entry = self._events.get(message_id)
        if entry is None:
            return None
        return [e for e in entry[1][max(0, after_seq) :]]


# Every turn's appends of one flush in one command: RPUSH (in slices), EXPIRE when asked, and the
# SCARD of the presence set of the turn's session ('' when none is asked). KEYS: a buffer key and a
# presence key per turn; ARGV: the TTL, then per turn the number of events, 1/0 for EXPIRE, events.
_APPEND_SCRIPT = """
local ttl = ARGV[1]
local at = 2
local counts = {}
for i = 1, #KEYS, 2 do
  local n = tonumber(ARGV[at])
  local refresh = ARGV[at + 1]
  at = at + 2
  local last = at + n - 1
  while at <= last do
    local upto = math.min(at + 999, last)
    redis.call('RPUSH', KEYS[i], unpack(ARGV, at, upto))
    at = upto + 1
  end
  if refresh == '1' then redis.call('EXPIRE', KEYS[i], ttl) end
  if KEYS[i + 1] ~= '' then counts[#counts + 1] = redis.call('SCARD', KEYS[i + 1]) else counts[#counts + 1] = 0 end
end
return counts
"""


class _Appends:
    """Every running turn's appends of one interval in one Redis command (per event loop).

    redis-py's per-command cost was most of the CPU of thousands of slow streams: a script call
    per interval (:data:`_APPEND_SCRIPT`) makes it per interval, not per turn or per event.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[str, list[dict[str, Any]], bool, str | None, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        self.script: Any = None

    async def submit(
        self, message_id: str, events: list[dict[str, Any]], refresh: bool, group: str | None
    ) -> int:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((message_id, events, refresh, group, future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(self._flush())
        return await asyncio.shield(future)  # a cancelled caller's events are still written

    async def _flush(self) -> None:
        await asyncio.sleep(settings.TURN_PUBLISH_INTERVAL_SECONDS)
        batch, self.pending = self.pending, []
        keys: list[str] = []
        args: list[Any] = [settings.TURN_BUFFER_TTL_SECONDS]
        for message_id, events, refresh, group, _ in batch:
            keys += (_key(message_id), presence_key(group) if group else "")
            args += (len(events), 1 if refresh else 0)
            args += [orjson.dumps(e) for e in events]
        try:
            client = redis_client()
            if self.script is None or self.script.registered_client is not client:
                self.script = client.register_script(_APPEND_SCRIPT)
            counts = await self.script(keys=keys, args=args)
        except Exception as exc:  # the turns go on; only resume degrades
            for *_, future in batch:
                if not future.done():
                    future.set_exception(BufferUnavailable(str(exc)))
            return
        for (*_, future), count in zip(batch, counts, strict=True):
            if not future.done():
                future.set_result(int(count))


class RedisReplayBuffer:
    def __init__(self) -> None:
        self._appends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Appends] = (
            weakref.WeakKeyDictionary()
        )

    async def append(
        self,
        message_id: str,
        events: list[dict[str, Any]],
        *,
        refresh_expiry: bool = True,
        count_listeners_of: str | None = None,
    ) -> int:
        """Add events (within ``TURN_PUBLISH_INTERVAL_SECONDS``, in one round trip with the other
        turns' appends); ``refresh_expiry`` (re)sets the TTL (a running turn does it now and then,
        not per batch). Returns the sockets of ``count_listeners_of`` on every process."""
        loop = asyncio.get_running_loop()
        appends = self._appends.get(loop)
        if appends is None:
            appends = self._appends[loop] = _Appends()
        return await appends.submit(message_id, events, refresh_expiry, count_listeners_of)

    async def read_after(self, message_id: str, after_seq: int) -> list[dict[str, Any]] | None:
        key = _key(message_id)
        try:
            async with redis_client().pipeline(transaction=False) as pipe:
                pipe.exists(key)
                pipe.lrange(key, max(0, after_seq), -1)
                exists, raw = await pipe.execute()
        except Exception as exc:
            raise BufferUnavailable(str(exc)) from exc
        if not exists:
            return None
        return [orjson.loads(item) for item in raw]


_memory_log = MemoryReplayBuffer()
_redis_log = RedisReplayBuffer()


def get_replay_buffer() -> MemoryReplayBuffer | RedisReplayBuffer:
    return _redis_log if settings.REDIS_URL else _memory_log
