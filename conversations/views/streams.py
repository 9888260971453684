"""GET /api/sessions/{key}/messages/{id}/stream: resume an answer over SSE from ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from conversations.edge.http_errors import HttpError, error_response
from conversations.presence import presence_add, presence_remove
from conversations.turns import resume
from conversations.turns.jobs import session_group
from conversations.views.auth import request_owner_id
from conversations.wire.sse import CONTENT_TYPE, STREAM_HEADERS, encode_sse_frame
from conversations.wire.websocket import is_terminal

# How long a resume stream waits for a live event before it reads what it may have missed: the turn
# can end between the stream's first read and its joining the turn's group.
RECHECK_SECONDS = 2.0


def after_seq_of(request: HttpRequest) -> int:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after_seq") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(
            400, "invalid_last_event_id", "Last-Event-ID must be the seq of the last event received."
        ) from None
    if value < 0:
        raise HttpError(400, "invalid_last_event_id", "Last-Event-ID must not be negative.")
    return value


async def resumed_events(
    owner_id: int | None, session_key: str, message_id: str, after_seq: int
) -> AsyncIterator[dict[str, Any]]:
    message = await resume.owned_message(owner_id, session_key, message_id)
    layer = get_channel_layer()
    group = session_group(str(message.conversation_id))
    try:
        channel = await layer.new_channel("resume.")
        await layer.group_add(group, channel)  # live events from now on; missed ones from the buffer
    except Exception:
        if message.status in ("streaming", "pending"):
            raise resume.ResumeError(
                "resume_unavailable",
                "Live updates (Redis) are unreachable: retry in a moment, or read the answer from history "
                "when it completes.",
                503,
            ) from None
        for event in await resume.missed_events(
            owner_id, session_key, message_id, after_seq, message=message
        ):
            yield event  # a finished answer needs no live updates
        return
    await presence_add(group, channel)
    receiving: asyncio.Future | None = None
    try:
        last = after_seq
        for event in await resume.missed_events(
            owner_id, session_key, message_id, after_seq, message=message
        ):
            if event["seq"] > last or event.get("snapshot"):
                last = event["seq"]
                yield event
                if is_terminal(event):
                    return
        if message.status not in ("streaming", "pending"):
            return  # finished, and the client already has every event
        while True:
            # The receive is never cancelled on a timeout (a cancelled receive may drop a message
            # the layer had already taken): it is awaited again after the check.
            if receiving is None:
                receiving = asyncio.ensure_future(layer.receive(channel))
            done, _ = await asyncio.wait({receiving}, timeout=RECHECK_SECONDS)
            if done:
                incoming, receiving = receiving.result(), None
            else:
                # Nothing live for a while: the turn may have ended between the message read and
                # joining its group (its last events published before this stream listened, its
                # job gone from this process). Read what was missed; a finished answer ends here.
                fresh = await resume.owned_message(owner_id, session_key, message_id)
                missed = await resume.missed_events(owner_id, session_key, message_id, last, message=fresh)
                incoming = {"events": missed}
            for event in incoming.get("events", ()):
                if event["message_id"] == message_id and (event["seq"] > last or event.get("snapshot")):
                    last = event["seq"]
                    yield event
                    if is_terminal(event):
                        return
    finally:
        if receiving is not None:
            receiving.cancel()
        await layer.group_discard(group, channel)
        await presence_remove(group, channel)


async def resume_stream(request: HttpRequest, session_key: str, message_id: Any) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
        after_seq = after_seq_of(request)
        events = resumed_events(owner_id, session_key, str(message_id), after_seq)
        first = await anext(events, None)
    except HttpError as exc:
        return error_response(exc)
    except resume.ResumeError as exc:
        return error_response(HttpError(exc.status, exc.code, exc.message))

    async def frames() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield encode_sse_frame(first)
        async for event in events:
            yield encode_sse_frame(event)

    return StreamingHttpResponse(frames(), content_type=CONTENT_TYPE, headers=STREAM_HEADERS)
