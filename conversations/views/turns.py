"""Native turn endpoints: POST a message and stream the answer as SSE, NDJSON or one JSON object.

Decode the request, call the turn service, encode its events; nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations.db import run_db
from conversations.errors import TurnRejected
from conversations.events import TurnEvent
from conversations.http import (
    STREAM_HEADERS,
    Field,
    HttpError,
    enforce_csrf,
    error_response,
    read_json_object,
)
from conversations.jobs import follow, request_stop
from conversations.models import Message
from conversations.selectors import message_for_owner
from conversations.turns import TurnRequest, start_turn
from conversations.wire import ndjson, sse
from conversations.wire.summary import summarize_turn

ERROR_STATUS = {"rate_limited": 429, "provider_timeout": 504, "provider_auth_failed": 502}


async def request_owner_id(request: HttpRequest) -> int | None:
    """The authenticated user's id, or None for anonymous use. Session users must send the CSRF token."""
    user = await request.auser()
    if not user.is_authenticated:
        return None
    enforce_csrf(request)
    return user.pk


def negotiate(request: HttpRequest) -> str:
    accept = request.headers.get("Accept", "")
    if "text/event-stream" in accept:
        return "sse"
    if "application/x-ndjson" in accept or "application/jsonl" in accept:
        return "ndjson"
    return "json"


def turn_request_from_body(body: dict, session_key: str, owner_id: int | None) -> TurnRequest:
    field = Field(body)
    json_schema = field.object("json_schema")
    return TurnRequest(
        session_key=session_key,
        content=field.str("content", required=True) or "",
        owner_id=owner_id,
        client_message_id=field.str("client_message_id"),
        provider=field.str("provider"),
        model=field.str("model"),
        system=field.str("system"),
        temperature=field.number("temperature"),
        max_tokens=field.int("max_tokens"),
        json_output=field.bool("json") or json_schema is not None,
        json_schema=json_schema,
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
    headers = {"Retry-After": str(max(1, round(error["retry_after"])))} if error.get("retry_after") else {}
    status = ERROR_STATUS.get(error["code"], 502)
    if summary.get("status") == "interrupted":
        status = 499 if error["code"] == "disconnected" else 200
    return JsonResponse(summary, status=status, headers=headers)


@csrf_exempt
@require_POST
async def post_message(request: HttpRequest, session_key: str) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
        turn_request = turn_request_from_body(read_json_object(request), session_key, owner_id)
        turn = await start_turn(turn_request)
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    fmt = negotiate(request)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    if fmt == "json":
        return await whole_turn_response(events)
    return streaming_response(events, fmt)


@csrf_exempt
@require_POST
async def stop_message(request: HttpRequest, session_key: str, message_id: str) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
    except HttpError as exc:
        return error_response(exc)
    message = await run_db(message_for_owner, owner_id, session_key, str(message_id))
    running = message is not None and message.status == Message.Status.STREAMING
    if not running or not await request_stop(str(message_id)):
        return error_response(
            HttpError(404, "not_running", "No answer with this id is being generated in this session.")
        )
    return JsonResponse({"message_id": str(message_id), "stopping": True}, status=202)
