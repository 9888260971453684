"""Native turn endpoints: POST a message and stream the answer as SSE, NDJSON or one JSON object.

Decode the request, call the turn service, encode its events; nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations.db import run_db
from conversations.edge.bodies import Field, read_json_object
from conversations.edge.errors import HttpError, error_response, failed_turn_status, retry_after_headers
from conversations.errors import TurnRejected
from conversations.events import TurnEvent
from conversations.models import Message
from conversations.namespaces import require_native_key
from conversations.selectors import message_for_owner
from conversations.turns.jobs import follow, turn_stop
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start
from conversations.views.auth import request_caller, request_owner_id
from conversations.wire import ndjson, sse
from conversations.wire.sse import STREAM_HEADERS
from conversations.wire.summary import summarize_turn


def negotiate(request: HttpRequest) -> str:
    accept = request.headers.get("Accept", "")
    if "text/event-stream" in accept:
        return "sse"
    if "application/x-ndjson" in accept or "application/jsonl" in accept:
        return "ndjson"
    return "json"


def turn_request_from_body(body: dict, session_key: str, owner_id: int | None, **branch: str) -> TurnRequest:
    """``branch`` is ``edit_of=<id>`` or ``regenerate_of=<id>`` (which needs no content)."""
    field = Field(body)
    json_schema = field.object("json_schema")
    return TurnRequest(
        session_key=session_key,
        content=field.str("content", required="regenerate_of" not in branch) or "",
        owner_id=owner_id,
        client_message_id=field.str("client_message_id"),
        provider=field.str("provider"),
        model=field.str("model"),
        system=field.str("system"),
        temperature=field.number("temperature"),
        max_tokens=field.int("max_tokens"),
        json_output=field.bool("json") or json_schema is not None,
        json_schema=json_schema,
        **branch,
    )


async def encoded(
    events: AsyncIterator[TurnEvent], encode: Callable[[TurnEvent], bytes]
) -> AsyncIterator[bytes]:
    async for event in events:
        yield encode(event)


def streaming_response(events: AsyncIterator[TurnEvent], fmt: str) -> StreamingHttpResponse:
    module = sse if fmt == "sse" else ndjson
    encode = sse.encode_sse if fmt == "sse" else ndjson.encode_ndjson
    return StreamingHttpResponse(
        encoded(events, encode), content_type=module.CONTENT_TYPE, headers=STREAM_HEADERS
    )


async def whole_turn_response(events: AsyncIterator[TurnEvent]) -> JsonResponse:
    summary = summarize_turn([event async for event in events])
    error = summary.get("error")
    if error is None:
        return JsonResponse(summary)
    headers = retry_after_headers(error.get("retry_after"))
    status = failed_turn_status(error["code"])
    if summary.get("status") == "interrupted":
        status = 499 if error["code"] == "disconnected" else 200
    return JsonResponse(summary, status=status, headers=headers)


async def turn_response(request: HttpRequest, session_key: str, **branch: str) -> HttpResponse:
    """Decode a turn request (a new message, an edit or a regenerate), start it, encode its events."""
    try:
        caller = await request_caller(request)
        require_native_key(caller.owner_id, session_key)
        body = read_json_object(request) if request.body or not branch else {}
        turn_request = turn_request_from_body(body, session_key, caller.owner_id, **branch)
        turn = await turn_start(replace(turn_request, rate_limit_key=caller.rate_limit_key))
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    fmt = negotiate(request)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    if fmt == "json":
        return await whole_turn_response(events)
    return streaming_response(events, fmt)


@csrf_exempt
@require_POST
async def post_message(request: HttpRequest, session_key: str) -> HttpResponse:
    return await turn_response(request, session_key)


@csrf_exempt
@require_POST
async def stop_message(request: HttpRequest, session_key: str, message_id: str) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
    except HttpError as exc:
        return error_response(exc)
    message = await run_db(message_for_owner, owner_id, session_key, str(message_id))
    running = message is not None and message.status == Message.Status.STREAMING
    if not running or not await turn_stop(str(message_id)):
        return error_response(
            HttpError(404, "not_running", "No answer with this id is being generated in this session.")
        )
    return JsonResponse({"message_id": str(message_id), "stopping": True}, status=202)


@csrf_exempt
@require_POST
async def edit_message(request: HttpRequest, session_key: str, message_id: str) -> HttpResponse:
    """A new version of a user message, answered as a new branch (the old branch is kept)."""
    return await turn_response(request, session_key, edit_of=str(message_id))


@csrf_exempt
@require_POST
async def regenerate_message(request: HttpRequest, session_key: str, message_id: str) -> HttpResponse:
    """Another answer to the same user message, as a new branch."""
    return await turn_response(request, session_key, regenerate_of=str(message_id))


@csrf_exempt
async def messages_collection(request: HttpRequest, session_key: str) -> HttpResponse:
    """``GET`` lists the session's messages (history API); ``POST`` sends a message (a turn)."""
    if request.method == "POST":
        return await post_message(request, session_key)
    from asgiref.sync import sync_to_async

    from conversations.api.views import MessageList

    return await sync_to_async(MessageList.as_view())(request, session_key=session_key)
