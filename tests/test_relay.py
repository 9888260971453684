"""A stream relayed from a task of its own: the reader gets its items, its error, or Stopped."""

from __future__ import annotations

import asyncio

import pytest

from conversations.turns.relay import Relay, Stopped
from providers.base import Unavailable


async def read(relay: Relay, into: list) -> None:
    async for item in relay:
        into.append(item)


async def test_the_reader_gets_every_item_in_order_then_the_end():
    async def stream():
        for n in range(3):
            yield n

    items: list = []
    await read(Relay(stream()), items)
    assert items == [0, 1, 2]


async def test_an_error_of_the_stream_is_raised_to_the_reader_after_the_items_before_it():
    async def stream():
        yield "first"
        raise Unavailable("upstream", "went away")

    items: list = []
    with pytest.raises(Unavailable):
        await read(Relay(stream()), items)
    assert items == ["first"]


async def test_cancel_closes_the_stream_and_the_reader_gets_stopped():
    closed = asyncio.Event()

    async def stream():
        try:
            yield "first"
            await asyncio.sleep(60)  # a stalled upstream
            yield "never"
        finally:
            closed.set()

    relay = Relay(stream())
    items = aiter(relay)
    assert await anext(items) == "first"
    relay.cancel()
    with pytest.raises(Stopped):
        await asyncio.wait_for(anext(items), 1)
    assert closed.is_set()


async def test_cancel_before_the_relay_ever_ran_still_stops_the_reader():
    async def stream():
        yield "never"

    relay = Relay(stream())
    relay.cancel()  # before its task's first step: the task never enters its body
    items: list = []
    with pytest.raises(Stopped):
        await asyncio.wait_for(read(relay, items), 1)
    assert items == []


async def test_cancel_after_the_end_changes_nothing():
    async def stream():
        yield 1

    relay, items = Relay(stream()), []
    await read(relay, items)
    relay.cancel()
    assert items == [1]
