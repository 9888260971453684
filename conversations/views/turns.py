"""Native turn endpoints: a message, an edit or a regenerate through the turn pipeline with the
native codec (:mod:`conversations.codecs.native`); stopping an answer."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations.codecs.native import NativeCodec
from conversations.edge.errors import HttpError, error_response
from conversations.edge.pipeline import Route, streaming_route, turn_pipeline
from conversations.turns.jobs import turn_stop_for_owner
from conversations.views.auth import request_owner_id

NEW_MESSAGE = Route(NativeCodec())
EDIT = Route(NativeCodec("edit_of"), body_required=False)
REGENERATE = Route(NativeCodec("regenerate_of"), body_required=False)


@csrf_exempt
@require_POST
async def post_message(request: HttpRequest, session_key: str) -> HttpResponse:
    return await turn_pipeline(request, NEW_MESSAGE, session_key=session_key)


@streaming_route("POST")
@csrf_exempt
@require_POST
async def stop_message(request: HttpRequest, session_key: str, message_id: str) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
    except HttpError as exc:
        return error_response(exc)
    if await turn_stop_for_owner(owner_id, session_key, str(message_id)) is None:
        return error_response(
            HttpError(404, "not_running", "No answer with this id is being generated in this session.")
        )
    return JsonResponse({"message_id": str(message_id), "stopping": True}, status=202)


@streaming_route("POST")
@csrf_exempt
@require_POST
async def edit_message(request: HttpRequest, session_key: str, message_id: str) -> HttpResponse:
    """A new version of a user message, answered as a new branch (the old branch is kept)."""
    return await turn_pipeline(request, EDIT, session_key=session_key, message_id=str(message_id))


@streaming_route("POST")
@csrf_exempt
@require_POST
async def regenerate_message(request: HttpRequest, session_key: str, message_id: str) -> HttpResponse:
    """Another answer to the same user message, as a new branch."""
    return await turn_pipeline(request, REGENERATE, session_key=session_key, message_id=str(message_id))


@streaming_route("POST")
@csrf_exempt
async def messages_collection(request: HttpRequest, session_key: str) -> HttpResponse:
    """``GET`` lists the session's messages (history API); ``POST`` sends a message (a turn)."""
    if request.method == "POST":
        return await post_message(request, session_key)
    from asgiref.sync import sync_to_async

    from conversations.api.views import MessageList

    return await sync_to_async(MessageList.as_view())(request, session_key=session_key)
