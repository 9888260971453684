"""Native Server-Sent Events: ``id:`` is the event's seq, ``event:`` its type, ``data:`` its JSON."""

from __future__ import annotations

import orjson

from conversations.events import TurnEvent

CONTENT_TYPE = "text/event-stream"
# Response headers of every streamed reply: no caching, no proxy buffering (nginx).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode_sse(event: TurnEvent) -> bytes:
    data = orjson.dumps(event.to_dict())
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, event.type.encode(), data)


def encode_sse_frame(event: dict) -> bytes:
    """The same frame from an event already in dict form (the replay buffer's)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event["seq"], event["type"].encode(), orjson.dumps(event))


def sse_data(payload: bytes | str) -> bytes:
    """A bare ``data:`` frame (seed dialects). Multi-line text becomes several data lines."""
    if isinstance(payload, str):
        payload = payload.encode()
    lines = payload.split(b"\n")
    return b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
