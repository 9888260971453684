"""``/v1/responses``: the OpenAI Responses API over the turn pipeline, with the Responses codec
(:mod:`conversations.codecs.openai_responses`).

``POST /v1/responses`` starts a turn (the turn pipeline with :func:`start_response`) (``background: true``: it runs to its end with nobody
listening); ``GET /v1/responses/{id}`` reads it (``?stream=true&starting_after=N``: its events
after N, live while it runs); ``POST …/cancel`` stops a background response from any process;
``DELETE`` removes it (see :mod:`conversations.turns.responses`); ``GET …/input_items`` lists
its input. Authentication is the native API's; errors are OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from conversations.codecs.base import JsonReply, Started
from conversations.codecs.openai_responses import ResponsesTurn, responses_error
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.routes.pipeline import http_response
from conversations.turns import responses as stored
from conversations.turns import resume
from conversations.turns.jobs import follow, launch, turn_stop
from conversations.turns.live import LiveTurn
from conversations.turns.service import turn_start
from conversations.views.auth import request_owner_id
from conversations.views.streams import resumed_events
from conversations.wire.openai_response_events import ResponseEventEncoder
from conversations.wire.openai_response_store import input_items_list, stored_shell, stored_state
from conversations.wire.openai_responses import message_id_of, response_object, running_state
from conversations.wire.sse import CONTENT_TYPE, STREAM_HEADERS


async def _no_events() -> AsyncIterator[Any]:
    return
    yield


async def start_response(turn: ResponsesTurn) -> Started:
    """Start the turn and keep the request's options with its answer; a background one runs
    unattended (a client that leaves does not stop it)."""
    live = await turn_start(turn.request)
    if isinstance(live, LiveTurn):
        await stored.response_options_store(live.message_id, turn.options)
    grace = settings.HTTP_DETACH_GRACE_SECONDS
    if turn.background and not turn.stream:
        if isinstance(live, LiveTurn):
            launch(live, grace=grace, listen=False, unattended=True)
        return Started(live.message_id, _no_events())
    return Started(live.message_id, follow(live, grace=grace, unattended=turn.background))


def _error(exc: HttpError | TurnRejected | resume.ResumeError) -> HttpResponse:
    param = exc.details.get("field") if isinstance(exc, HttpError | TurnRejected) else None
    return http_response(responses_error(exc.status, exc.code, exc.message, param))


async def _owned(request: HttpRequest, response_id: str) -> tuple[int | None, stored.StoredResponse]:
    """The caller and their response with this id; HttpError 401 / 404 otherwise."""
    owner_id = await request_owner_id(request)
    message_id = message_id_of(response_id)
    found = message_id and await stored.aresponse_for_owner(owner_id, message_id)
    if not found:
        raise HttpError(404, "not_found", f"No response with id {response_id!r}.", field="response_id")
    return owner_id, found


async def response_detail(request: HttpRequest, response_id: str) -> HttpResponse:
    """``GET``: the response now (or its events, ``stream=true``); ``DELETE``: remove it."""
    try:
        owner_id, found = await _owned(request, response_id)
        if request.method == "DELETE":
            await stored.aresponse_delete(owner_id, found.message_id)
            return http_response(
                JsonReply({"id": response_id, "object": "response.deleted", "deleted": True})
            )
        if request.GET.get("stream") == "true":
            return await _event_stream(owner_id, found, _starting_after(request))
        return http_response(JsonReply(await _current(owner_id, found)))
    except (HttpError, TurnRejected, resume.ResumeError) as exc:
        return _error(exc)


def _starting_after(request: HttpRequest) -> int:
    raw = request.GET.get("starting_after")
    if raw is None:
        return -1
    if not raw.isdigit():
        raise HttpError(
            400,
            "invalid_input",
            "starting_after must be a sequence number (0 or more).",
            field="starting_after",
        )
    return int(raw)


async def _current(owner_id: int | None, found: stored.StoredResponse) -> dict[str, Any]:
    """The response object; a running answer's text and calls so far from its events (the row has
    none yet)."""
    if not found.running:
        return response_object(stored_shell(found), stored_state(found))
    try:
        events = await resume.missed_events(owner_id, found.session_key, found.message_id, 0)
    except resume.ResumeError:
        events = []
    return response_object(stored_shell(found), stored_state(found, *running_state(events)))


async def _event_stream(
    owner_id: int | None, found: stored.StoredResponse, starting_after: int
) -> HttpResponse:
    """Every event of the turn re-encoded from its first (the numbers come out the same), those
    numbered ``starting_after`` or less left out; live until the end while it runs."""
    events = resumed_events(owner_id, found.session_key, found.message_id, 0)
    first = await anext(events, None)
    encoder = ResponseEventEncoder(stored_shell(found), starting_after=starting_after)

    async def frames() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield encoder.encode(first)
        async for event in events:
            frame = encoder.encode(event)
            if frame:
                yield frame

    return StreamingHttpResponse(frames(), content_type=CONTENT_TYPE, headers=STREAM_HEADERS)


async def response_cancel(request: HttpRequest, response_id: str) -> HttpResponse:
    """Stop a background response wherever it runs; a finished one is returned as it is."""
    try:
        owner_id, found = await _owned(request, response_id)
        if not found.options.get("background"):
            raise HttpError(
                400, "invalid_request", "Only responses created with background: true can be cancelled."
            )
        if found.running:
            await turn_stop(found.message_id)
            found = await stored.response_settled(owner_id, found.message_id) or found
        return http_response(JsonReply(await _current(owner_id, found)))
    except (HttpError, TurnRejected) as exc:
        return _error(exc)


async def response_input_items(request: HttpRequest, response_id: str) -> HttpResponse:
    try:
        _, found = await _owned(request, response_id)
        order = request.GET.get("order", "desc")
        if order not in ("asc", "desc"):
            raise HttpError(400, "invalid_input", "order must be asc or desc.", field="order")
        limit = request.GET.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise HttpError(400, "invalid_input", "limit must be from 1 to 100.", field="limit")
        return http_response(
            JsonReply(input_items_list(found, order=order, limit=int(limit), after=request.GET.get("after")))
        )
    except HttpError as exc:
        return _error(exc)
