"""The one turn pipeline: every HTTP surface that starts a turn goes through :func:`turn_pipeline`.

Authenticate the caller (the rule the route hands over: the native API's, or a seed mount's
access rule), read the body within the limits, let the protocol's codec decode it into a :class:`TurnRequest`, start the turn,
let the codec render a rejection, follow the job, let the codec encode the events, write the
reply; a client that goes away detaches (the request's end). The codec (:mod:`conversations.codecs`)
knows its protocol only: it is handed what it needs (:class:`~conversations.codecs.base.Inbound`)
and answers with a transport-free :data:`~conversations.codecs.base.Reply`, written here.

The upper floor of the edge: it stands on the codecs and the HTTP kit (:mod:`conversations.edge`)
and imports no view or dialect; who may call and the lookups a codec needs come with the
:class:`Route` (the route tables, ``conversations/urls.py`` and ``conversations/dialects/urls.py``,
declare them).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from accounts.callers import Caller
from conversations.codecs.base import Codec, Inbound, JsonReply, Reply, SessionForAnswer, Started, StreamReply
from conversations.edge.bodies import read_json_object
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.namespaces import require_native_key
from conversations.telemetry import stages
from conversations.turns.jobs import follow
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start
from conversations.wire.sse import STREAM_HEADERS


async def start_and_follow(request: TurnRequest) -> Started:
    """The usual start: the turn service, then the job's events for this connection."""
    turn = await turn_start(request)
    return Started(turn.message_id, follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS))


@dataclass(frozen=True, slots=True)
class Route:
    """One turn-starting endpoint: its codec, who may call it, the lookups its codec may need, and
    how its turns start.

    ``caller`` is the route's caller rule (the native API's, or a seed mount's access rule: session
    cookies never authenticate a mount). ``mount`` is the seed mount's name (its budget applies) or
    ``None`` for the native API (a mount's sessions unreachable). ``body_required=False`` lets an
    empty body through as ``{}`` (a regenerate needs none).
    """

    codec: Codec
    caller: Callable[[HttpRequest], Awaitable[Caller]]
    session_for_answer: SessionForAnswer | None = None
    mount: str | None = None
    body_required: bool = True
    start: Callable[[Any], Awaitable[Started]] = start_and_follow


async def turn_pipeline(request: HttpRequest, route: Route, **params: str) -> HttpResponse:
    if stages.on:
        stages.mark("edge")
    codec, inbound = route.codec, None
    try:
        caller = await route.caller(request)
        body = read_json_object(request) if route.body_required or request.body else {}
        inbound = Inbound(
            headers=request.headers,
            body=body,
            caller=caller,
            params=params,
            received_at=time.time(),
            session_for_answer=route.session_for_answer,
        )
        turn_request = await codec.decode(inbound)
        if route.mount is None:  # the native API never reaches a mount's sessions
            require_native_key(caller.owner_id, turn_request.session_key)
        elif isinstance(turn_request, TurnRequest):  # the mount's budget applies: the route says so
            turn_request = replace(turn_request, mount=route.mount)
        if stages.on:
            stages.mark("decoded")
        started = await route.start(turn_request)
        if stages.on:
            stages.mark("started")
    except (HttpError, TurnRejected) as exc:
        return http_response(codec.reject(exc, inbound))
    return http_response(await codec.reply(started, inbound))


def http_response(reply: Reply) -> HttpResponse:
    """A codec's reply as a Django response."""
    if isinstance(reply, StreamReply):
        headers = {**STREAM_HEADERS, **reply.headers} if reply.headers else STREAM_HEADERS
        return StreamingHttpResponse(_frames(reply.frames), content_type=reply.content_type, headers=headers)
    assert isinstance(reply, JsonReply)
    return JsonResponse(reply.body, status=reply.status, headers=reply.headers, safe=False)


async def _frames(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for frame in frames:
        if frame:
            yield frame
