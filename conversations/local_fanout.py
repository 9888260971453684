"""Fan-out to the WebSockets of this process, without a round trip through the channel layer.

Sockets in the same process as the turn get its events straight from the job
(in order, at once, and even while Redis is down); sockets elsewhere get them
through the channel layer. A socket may receive an event both ways: consumers
drop what they have already sent, by seq.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

_subscribers: defaultdict[str, set[asyncio.Queue]] = defaultdict(set)


def subscribe(group: str) -> asyncio.Queue:
    queue: asyncio.Queue = asyncio.Queue()
    _subscribers[group].add(queue)
    return queue


def unsubscribe(group: str, queue: asyncio.Queue) -> None:
    subscribers = _subscribers.get(group)
    if subscribers is not None:
        subscribers.discard(queue)
        if not subscribers:
            del _subscribers[group]


def publish(group: str, events: list[dict[str, Any]]) -> None:
    for queue in _subscribers.get(group, ()):
        queue.put_nowait(events)


def subscriber_count(group: str) -> int:
    return len(_subscribers.get(group, ()))
