"""Server-Sent Events: the one writer of SSE frames, and the native format's events.

:func:`sse_frame` writes every SSE frame the server sends, whatever the protocol (native events,
OpenAI chunks, each seed dialect): an optional ``id:`` and ``event:`` line, then the data as one
``data:`` line per line (a CR, an LF or a CRLF ends a line, as the SSE spec reads them, so a line
break inside the data can never end the frame early), then the blank line that dispatches it.

The native format: ``id:`` is the event's seq, ``event:`` its type, ``data:`` its JSON.
"""

from __future__ import annotations

import re

import orjson

from conversations.events import TurnEvent

CONTENT_TYPE = "text/event-stream"
# Response headers of every streamed reply: no caching, no proxy buffering (nginx).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def sse_frame(data: bytes | str, *, event: str | bytes | None = None, id: int | str | None = None) -> bytes:
    """One SSE event. ``event`` and ``id`` must not hold a line break (they are names and numbers)."""
    if isinstance(data, str):
        data = data.encode()
    head = b""
    if id is not None:
        head += b"id: %s\n" % (str(id).encode())
    if event is not None:
        head += b"event: " + (event.encode() if isinstance(event, str) else event) + b"\n"
    if b"\n" not in data and b"\r" not in data:  # JSON from orjson, single-line text: the common case
        return head + b"data: " + data + b"\n\n"
    return head + b"".join(b"data: " + line + b"\n" for line in _LINE_BREAK.split(data)) + b"\n"


def encode_sse(event: TurnEvent) -> bytes:
    return sse_frame(orjson.dumps(event.to_dict()), event=event.type, id=event.seq)


def encode_sse_frame(event: dict) -> bytes:
    """The same frame from an event already in dict form (the replay buffer's)."""
    return sse_frame(orjson.dumps(event), event=event["type"], id=event["seq"])
