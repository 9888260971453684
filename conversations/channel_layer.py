"""The channels-redis layer, made to outlive a Redis outage, bursts and its receivers' cancellation.

A burst of sockets joining their groups waits for a pooled connection (``CHANNEL_LAYER_MAX_CONNECTIONS``,
up to ``CHANNEL_LAYER_POOL_TIMEOUT`` seconds) rather than failing as if Redis were down.

A socket's receive loop would otherwise die with the first connection error and
take the WebSocket down with it; here it waits and tries again, so sockets stay
open (and keep getting this process's events directly) until Redis is back.

Every receiver of a process takes turns at one blocking pop (``BZPOPMIN``) on the
process's Redis queue, for all of them. channels-redis names that queue after the
prefix given to ``new_channel``: channels of another prefix (the resume streams')
would get a queue of their own that nobody pops while a receiver of the first
waits, for as long as nothing comes on it. Here every channel of the process,
whatever its prefix, is on the one queue. channels-redis cancels that pop when the
receiver running it is cancelled (a socket closes, a resumed stream is cut): a
message Redis pops as the connection is dropped is lost, for whichever channel it
was meant. Here the pop is not cancelled with its receiver: it goes on (one
``brpop_timeout`` at most), and the next receiver of the process takes over its result.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

logger = logging.getLogger(__name__)


class _NothingYet(Exception):
    """A blocking pop timed out empty."""


def _raise_if_cancelling(exc: BaseException) -> None:
    """redis-py may turn a cancelled read into a connection error: a receiver being cancelled
    (its socket closed) must end, not retry forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


class ResilientRedisChannelLayer(RedisChannelLayer):
    retry_delay = 1.0
    brpop_timeout = 1  # a pop whose receiver left ends within this (channels-redis: 5)
    _last_warning = 0.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pops: dict[str, asyncio.Task] = {}  # process queue -> the pop in flight

    def create_pool(self, index: int) -> BlockingConnectionPool:
        """A pool that makes a burst wait for a connection (``timeout`` seconds at most) instead of
        failing it: redis-py's default pool raises ``MaxConnectionsError`` at ``max_connections``
        (100), which under a burst of sockets joining their groups told clients that fan-out was
        down while Redis was up."""
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels: channels-redis's own pool
            return super().create_pool(index)
        return BlockingConnectionPool.from_url(host.pop("address"), **host)

    async def new_channel(self, prefix: str = "specific") -> str:
        name = await super().new_channel()  # specific.<process>!<random>: this process's one queue
        if prefix == "specific":
            return name
        queue, _, local = name.partition("!")
        return f"{queue}!{prefix}{local}"

    async def receive_single(self, channel: str) -> tuple:
        while True:
            if "!" not in channel:
                try:
                    return await super().receive_single(channel)
                except _NothingYet as exc:
                    # The pop runs in the receiver's task: redis-py sends its commands under 3.11's
                    # wait_for, which drops a cancellation that lands as a send completes. Such a
                    # receiver ends here, after one brpop_timeout, instead of popping on forever.
                    _raise_if_cancelling(exc)
                    continue
            # Only the holder of the receive lock gets here: one pop at a time, in order.
            pop = self._pops.get(channel)
            if pop is None or pop.get_loop() is not asyncio.get_running_loop():
                pop = self._pops[channel] = asyncio.ensure_future(self._pop(channel))
            try:
                result = await asyncio.shield(pop)
            except asyncio.CancelledError:
                if pop.cancelled():
                    self._pops.pop(channel, None)
                raise  # the pop goes on (brpop_timeout at most): the next receiver takes its message
            except BaseException:
                self._pops.pop(channel, None)
                raise
            self._pops.pop(channel, None)
            if result is not None:
                return result

    async def _pop(self, channel: str) -> tuple | None:
        """One blocking pop: a message, or None when none came within ``brpop_timeout``."""
        try:
            return await RedisChannelLayer.receive_single(self, channel)
        except _NothingYet:
            return None

    async def _brpop_with_clean(self, index: int, channel: str, timeout: float):  # noqa: ASYNC109 (overridden)
        member = await super()._brpop_with_clean(index, channel, timeout)
        if member is None:
            raise _NothingYet  # out of channels-redis's endless loop: a pop ends by itself
        return member

    async def receive(self, channel: str) -> dict:
        while True:
            try:
                return await super().receive(channel)
            except (ConnectionError, OSError, TimeoutError) as exc:
                _raise_if_cancelling(exc)
                self._warn(exc)
            except Exception as exc:  # redis-py wraps connection failures in its own classes
                if "Connection" not in type(exc).__name__ and "Timeout" not in type(exc).__name__:
                    raise
                _raise_if_cancelling(exc)
                self._warn(exc)
            await asyncio.sleep(self.retry_delay)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - ResilientRedisChannelLayer._last_warning > 30:
            ResilientRedisChannelLayer._last_warning = now
            logger.warning("channel layer: Redis unreachable (%s); retrying", type(exc).__name__)
