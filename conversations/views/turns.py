"""Native turn endpoints beside the turn pipeline: stopping an answer, and the history a session's
messages path lists on ``GET`` (a message, an edit or a regenerate is a turn route of the native
codec, :mod:`conversations.codecs.native`, declared in ``conversations/urls.py``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from conversations.edge.http_errors import HttpError, error_response
from conversations.turns.jobs import turn_stop_for_owner
from conversations.views.auth import request_owner_id


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


async def message_list(request: HttpRequest, session_key: str) -> HttpResponse:
    """The session's messages (history API), for every method but the ``POST`` that sends one."""
    from asgiref.sync import sync_to_async

    from conversations.api.views import MessageList

    return await sync_to_async(MessageList.as_view())(request, session_key=session_key)
