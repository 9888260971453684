"""The Redis channel layer under receivers that come and go (real Redis; skipped without REDIS_URL).

Found by the client-disconnect scenario (tests/reliability): a resumed SSE stream waited forever
for the end of its turn.

The cancellation tests do not cancel at random times: they choose the interleaving. The receiver's
pop is seen blocked from Redis itself (CLIENT LIST, by the layer's connection name); messages come
from another layer, on an event loop of its own in a thread (another process's sender), whose
send() blocks this test's loop: when it returns, Redis has handed the message to the blocked pop
and this loop has not read it yet. Nothing of redis-py or channels-redis is replaced.
"""

import asyncio
import logging
import os
import socket
import threading
import time
import uuid

import pytest
import redis

from conversations.channel_layer import ResilientRedisChannelLayer

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")

ITERATIONS = 50


def _make_layer(name: str, address: str | None = None, **kwargs) -> ResilientRedisChannelLayer:
    host = {"address": address or os.environ["REDIS_URL"], "socket_timeout": 15, "client_name": name}
    return ResilientRedisChannelLayer(hosts=[host], **kwargs)


@pytest.fixture
async def layer():
    name = f"test-{uuid.uuid4().hex[:8]}"
    layer = _make_layer(name, prefix=name)
    yield layer
    # A pop outlives a cancelled receiver (by design, for brpop_timeout at most): none may outlive the
    # test, nor hold a message that nobody received.
    pops = list(layer._pops.values())
    undelivered = [pop.result() for pop in pops if pop.done() and not pop.cancelled() and not pop.exception()]
    for pop in pops:
        pop.cancel()
    if pops:
        await asyncio.wait(pops, timeout=layer.brpop_timeout + 5)  # a dropped cancellation: one pop more
    await asyncio.wait_for(layer.flush(), 5)  # the test's keys, its cleaners, its connections
    assert all(pop.done() for pop in pops), "a pop did not end"
    assert not [message for message in undelivered if message is not None], "a message popped, never received"


class Sender:
    """Another process's channel layer: its own event loop, in a thread. ``send`` blocks the caller's
    event loop until Redis has taken the message (and handed it to a receiver blocked in BZPOPMIN)."""

    def __init__(self, prefix: str) -> None:
        self.layer = _make_layer(f"{prefix}-sender", prefix=prefix)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.loop.run_forever()
        self.loop.close()  # channels-redis closes this loop's connections here

    def send(self, channel: str, message: dict) -> None:
        asyncio.run_coroutine_threadsafe(self.layer.send(channel, message), self.loop).result(timeout=5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def sender(layer):
    sender = Sender(layer.prefix)
    yield sender
    sender.close()


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


def blocked_in_pop(redis_client: redis.Redis, layer: ResilientRedisChannelLayer) -> bool:
    """Whether one of the layer's connections is blocked in BZPOPMIN, as Redis sees it (synchronous:
    nothing runs on the event loop meanwhile)."""
    name = layer.hosts[0]["client_name"]
    return any(
        client["name"] == name and "b" in client["flags"] and client["cmd"] == "bzpopmin"
        for client in redis_client.client_list()
    )


def queue_keys(layer: ResilientRedisChannelLayer, channel: str) -> tuple[str, str]:
    """The Redis sorted set of the process's queue, and channels-redis's backup of its popped message."""
    key = layer.prefix + layer.non_local_name(channel)
    return key, layer._backup_channel_name(key)


async def until(condition, what: str, *, pause: float = 0.001, within: float = 5.0) -> None:
    """Waits for ``condition``, looking again after each ``pause`` (0: each turn of the event loop)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(pause)


async def finish(tasks) -> None:
    """Cancels what is left of ``tasks`` and waits for them to end (bounded)."""
    tasks = [task for task in tasks if task is not None]
    for task in tasks:
        task.cancel()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=5)
        assert not pending, f"tasks that did not end: {pending}"


async def test_a_channel_of_another_prefix_is_not_starved_by_a_waiting_receiver(layer, redis_client):
    socket_channel = await layer.new_channel()  # a consumer's channel: its receiver waits, nothing comes
    resume = await layer.new_channel("resume.")
    assert layer.non_local_name(resume) == layer.non_local_name(socket_channel)  # one queue per process
    waiting = asyncio.create_task(layer.receive(socket_channel))
    receiving = None
    try:
        # it holds the process's receive, blocked in Redis
        await until(lambda: blocked_in_pop(redis_client, layer), "the receiver blocks in BZPOPMIN")
        await layer.send(resume, {"type": "turn.events", "n": 1})
        receiving = asyncio.ensure_future(layer.receive(resume))
        done, _ = await asyncio.wait({receiving}, timeout=3)
        assert receiving in done, "starved"
        assert receiving.result()["n"] == 1
    finally:
        await finish([waiting, receiving])


# Where the popping receiver is cancelled, along the path of one message:
BEFORE = "blocked in BZPOPMIN, before the message"  # then it is sent (to the pop left without receiver)
IN_REDIS = "popped by Redis, its reply unread"  # gone from Redis's queue, not yet in the process
IN_LAYER = "popped by the layer, receive() not returned"  # channels-redis has started its backup cleaner
# One and two turns of the loop later: its wakeup is due (it still gets the cancellation, not the message),
# then it has returned the message itself (the cancellation comes too late). Either is accepted.
LATER = ("1 loop turn later", "2 loop turns later")
POINTS = (BEFORE, IN_REDIS, IN_LAYER, *LATER)

ALONE = "alone"
FOR_THE_OTHER = "another receiver waits: the message is for its channel"
FOR_ITS_OWN = "another receiver waits: the message is for the cancelled receiver's channel"


async def _cancel_at(point, layer, sender, redis_client, popping, to, message) -> None:
    """Sends ``message`` to channel ``to`` and cancels the popping receiver at ``point``."""
    key, backup = queue_keys(layer, to)
    if point == BEFORE:
        popping.cancel()
        await asyncio.wait({popping}, timeout=1)
        assert popping.cancelled()
        assert blocked_in_pop(redis_client, layer), "the pop ended with its receiver"
    sender.send(to, message)  # blocks this loop; Redis hands the message to the blocked pop
    assert redis_client.zcard(key) == 0, "the message was not popped in Redis"
    assert not blocked_in_pop(redis_client, layer)
    if point == BEFORE:
        return
    assert redis_client.zcard(backup) == 0  # the process has not read the reply: it is on the wire only
    if point == IN_REDIS:
        popping.cancel()
        return
    # channels-redis starts the cleaner of a popped message's backup right as its pop returns, with no
    # turn of the loop in between; the receiver is woken two turns later at the earliest.
    await until(lambda: layer.receive_cleaners, "channels-redis's pop returns the message", pause=0)
    assert redis_client.zcard(backup) == 1  # backed up by channels-redis, its cleaner not yet run
    assert not popping.done()
    for _ in range(0 if point == IN_LAYER else LATER.index(point) + 1):
        await asyncio.sleep(0)
    popping.cancel()


async def _round(layer, sender, redis_client, scenario: str, point: str, n: int) -> None:
    own = await layer.new_channel()
    other = await layer.new_channel() if scenario != ALONE else None
    to = other if scenario == FOR_THE_OTHER else own
    message = {"type": "turn.events", "n": n}
    popping = waiting = None
    tasks = []
    try:
        await asyncio.wait_for(layer.wait_received(), 5)
        assert not layer.receive_cleaners
        popping = asyncio.create_task(layer.receive(own))
        tasks.append(popping)
        await until(lambda: blocked_in_pop(redis_client, layer), "the receiver blocks in BZPOPMIN")
        if other is not None:
            waiting = asyncio.create_task(layer.receive(other))  # behind it, for the receive lock
            tasks.append(waiting)
            await until(lambda: layer.receive_count == 2, "the second receiver waits", pause=0)

        await _cancel_at(point, layer, sender, redis_client, popping, to, message)
        await asyncio.wait({popping}, timeout=1)
        assert popping.done(), "the cancelled receiver did not end"
        if point in (BEFORE, IN_REDIS, IN_LAYER) or to != own:
            assert popping.cancelled()  # it had not returned, and it did not swallow its cancellation

        # Every channel then gets a sentinel: what came before it must be the message, exactly once,
        # on its channel only.
        first_receive = {own: None if popping.cancelled() else popping}  # it may have returned it
        if other is not None:
            first_receive[other] = waiting  # the receiver that waited all along
        received: dict[str, list] = {}
        for channel, receive in first_receive.items():
            sentinel = {"type": "turn.events", "n": -1, "channel": channel}
            await layer.send(channel, sentinel)
            received[channel] = []
            while not received[channel] or received[channel][-1] != sentinel:
                if receive is None:
                    receive = asyncio.create_task(layer.receive(channel))
                    tasks.append(receive)
                received[channel].append(await asyncio.wait_for(asyncio.shield(receive), 3))
                receive = None
            expected = [message, sentinel] if channel == to else [sentinel]
            assert received[channel] == expected, f"{point}; {scenario}; channel {channel}"
        await asyncio.wait_for(layer.wait_received(), 5)
        for channel in received:
            assert [redis_client.zcard(key) for key in queue_keys(layer, channel)] == [0, 0]
    finally:
        await finish(tasks)


@pytest.mark.parametrize("scenario", [ALONE, FOR_THE_OTHER, FOR_ITS_OWN])
async def test_a_receiver_cancelled_mid_pop_loses_no_message(layer, sender, redis_client, scenario):
    """A socket closing (its receive cancelled) just as Redis hands its pop a message: the next receive
    of the process gets that message, once, wherever the cancellation fell."""
    layer.brpop_timeout = 5  # the pop must not time out empty within a round (1 s in production)
    for n in range(ITERATIONS):
        for point in POINTS:
            await _round(layer, sender, redis_client, scenario, point, n)


# A cancelled receive() ends at once, wherever it waits.
POPPING = "blocked in the process's pop"
BEHIND = "waiting for the receive lock behind another receiver"


@pytest.mark.parametrize("state", [POPPING, BEHIND])
async def test_a_cancelled_receive_raises_cancelled_error_at_once(layer, sender, redis_client, state):
    layer.brpop_timeout = 5
    own = await layer.new_channel()
    first = asyncio.create_task(layer.receive(own))
    behind = None
    try:
        await until(lambda: blocked_in_pop(redis_client, layer), "the receiver blocks in BZPOPMIN")
        cancelled = first
        if state == BEHIND:
            behind = cancelled = asyncio.create_task(layer.receive(await layer.new_channel()))
            await until(lambda: layer.receive_count == 2, "the second receiver waits", pause=0)
        started = time.monotonic()
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(cancelled), 1)
        assert time.monotonic() - started < 2.5  # not after the pop (brpop_timeout, 5 s), not retried
        assert cancelled.cancelled()
        if state == BEHIND:
            assert not first.done()  # the receiver that pops goes on
        sender.send(own, {"type": "turn.events", "n": 1})  # the pop left behind still delivers, once
        remaining = first if state == BEHIND else asyncio.create_task(layer.receive(own))
        assert (await asyncio.wait_for(asyncio.shield(remaining), 3))["n"] == 1
        await finish([remaining])
    finally:
        await finish([first, behind])


TURNS = 40  # the whole start of a receive: receive lock, cleanup script, BZPOPMIN, their sends and reads


@pytest.mark.parametrize("kind", ["process", "general"])
async def test_a_receive_cancelled_at_any_turn_of_its_start_ends(layer, sender, kind):
    """Cancelled at each turn of the event loop after it starts: a receive on a process channel ends at
    once and its pop, which goes on, delivers the next message once; a receive on a general channel pops
    in its own task, where redis-py may drop the cancellation (3.11's wait_for, around each command it
    sends): it ends within one brpop_timeout all the same, instead of popping on forever."""
    layer.brpop_timeout = 0.02  # Redis ends it at its next wake-up: within 0.1 s (hz 10)
    receives = []
    try:
        for turns in range(TURNS):
            channel = await layer.new_channel() if kind == "process" else f"{layer.prefix}.general"
            receive = asyncio.create_task(layer.receive(channel))
            receives.append(receive)
            for _ in range(turns):
                await asyncio.sleep(0)
            receive.cancel()
            await asyncio.wait({receive}, timeout=layer.brpop_timeout + 2)
            assert receive.done(), f"cancelled {turns} turns in, the receive did not end"
            assert receive.cancelled()
            if kind == "process":
                sender.send(channel, {"type": "turn.events", "n": turns})
                again = asyncio.create_task(layer.receive(channel))
                receives.append(again)
                assert (await asyncio.wait_for(asyncio.shield(again), 3))["n"] == turns
    finally:
        await finish(receives)


async def test_a_cancelled_receive_ends_while_redis_is_unreachable(monkeypatch, caplog):
    """Retrying, Redis refused: the receive ends when cancelled (it does not retry on forever)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: connections are refused
    layer = _make_layer("unreachable", f"redis://127.0.0.1:{port}/0", prefix="unreachable")
    layer.retry_delay = 60
    monkeypatch.setattr(ResilientRedisChannelLayer, "_last_warning", 0.0)  # its warning is not held back
    caplog.set_level(logging.WARNING, logger="conversations.channel_layer")
    receiving = asyncio.create_task(layer.receive(await layer.new_channel()))
    try:
        await until(lambda: "Redis unreachable" in caplog.text, "the receive fails and waits to retry")
        started = time.monotonic()
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(receiving), 1)
        assert time.monotonic() - started < 5  # not after the retry delay (60 s)
    finally:
        await finish([receiving])
    assert not [pop for pop in layer._pops.values() if not pop.done()]


async def test_a_burst_of_sockets_joining_their_groups_waits_for_a_connection_instead_of_failing():
    # Found by the reliability soak: redis-py's default pool raised MaxConnectionsError at its
    # limit, and each socket joining then told its client that fan-out was down while Redis was up.
    name = f"test-{uuid.uuid4().hex[:8]}"
    host = {"address": os.environ["REDIS_URL"], "max_connections": 2, "timeout": 10, "client_name": name}
    layer = ResilientRedisChannelLayer(hosts=[host], prefix=name)
    try:
        joins = [layer.group_add(f"group-{i % 5}", f"specific.{name}!c{i}") for i in range(60)]
        await asyncio.gather(*joins)  # 60 at once through 2 connections
        client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])
        try:
            members = [await client.zcard(layer._group_key(f"group-{g}")) for g in range(5)]
        finally:
            await client.aclose()
        assert members == [12] * 5
    finally:
        await asyncio.wait_for(layer.flush(), 5)
