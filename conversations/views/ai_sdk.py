"""The Vercel AI SDK's ``DefaultChatTransport`` at ``/api/ai-sdk/chat`` (see docs/ai-sdk.md).

``POST /api/ai-sdk/chat`` starts a turn (the turn pipeline, :mod:`conversations.codecs.ai_sdk`,
with :func:`start_ui_chat`) and answers a UI message stream. ``GET /api/ai-sdk/chat/{id}/stream``
is the SDK's resume: ``204`` when the chat has no answer being generated, else that answer's
whole stream from its ``start`` (the SDK rebuilds the message from the replay; the ``start``
names the UI message the answer is part of, a tool loop's first answer, as the live stream did).
``POST /api/ai-sdk/chat/{id}/stop`` stops the chat's running answer wherever it runs (wire
``useChat``'s stop button to it once resume is on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from conversations.codecs.ai_sdk import UIChatTurn
from conversations.codecs.base import Started
from conversations.edge.http_errors import HttpError, error_response
from conversations.errors import TurnRejected
from conversations.namespaces import require_native_key
from conversations.turns import resume
from conversations.turns.jobs import follow, turn_stop_for_owner
from conversations.turns.service import turn_start
from conversations.views.auth import request_owner_id
from conversations.views.streams import resumed_events
from conversations.views.ui_chat import running_answer, ui_chat_request
from conversations.wire import ui_message


async def start_ui_chat(turn: UIChatTurn) -> Started:
    """The turn goes on after the client's fetch ends (a reload resumes it; stop is explicit)."""
    started = await turn_start(await ui_chat_request(turn))
    return Started(started.message_id, follow(started, grace=settings.AI_SDK_DETACH_GRACE_SECONDS))


async def resume_chat_stream(request: HttpRequest, chat_id: str) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
        answer = await running_answer(owner_id, chat_id)
        if answer is None:
            return HttpResponse(status=204)
        events = resumed_events(owner_id, chat_id, answer.message_id, 0)
        first = await anext(events, None)
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    except resume.ResumeError as exc:
        return error_response(HttpError(exc.status, exc.code, exc.message))
    if first is None:
        return HttpResponse(status=204)
    return StreamingHttpResponse(
        _replay(first, events, answer.ui_message_id),
        content_type=ui_message.CONTENT_TYPE,
        headers=ui_message.HEADERS,
    )


async def _replay(
    first: dict[str, Any], events: AsyncIterator[dict[str, Any]], ui_message_id: str
) -> AsyncIterator[bytes]:
    encoder = ui_message.UIMessageSSE(ui_message_id)
    yield encoder.encode(first)
    async for event in events:
        yield encoder.encode(event)
    yield ui_message.DONE


async def stop_chat(request: HttpRequest, chat_id: str) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
        require_native_key(owner_id, chat_id)
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    answer_id = await turn_stop_for_owner(owner_id, chat_id)
    if answer_id is None:
        return error_response(HttpError(404, "not_running", "No answer is being generated in this chat."))
    return JsonResponse({"id": chat_id, "message_id": answer_id, "stopping": True}, status=202)
