"""POST /v1/chat/completions: the OpenAI Chat Completions API, so the official SDKs work unchanged.

The session is named by the ``X-Session-Id`` header or the ``user`` field (a new
session per request otherwise); ``Idempotency-Key`` makes a retried request
replay instead of calling the provider again. ``model`` may be ``provider:model``
(``gemini:gemini-2.5-flash``), a model of the default provider, or an alias.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations.edge.bodies import Field, read_json_object
from conversations.edge.errors import HttpError, failed_turn_status, json_error, retry_after_headers
from conversations.errors import TurnRejected
from conversations.events import TurnEvent
from conversations.namespaces import require_native_key
from conversations.turns.jobs import follow
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start
from conversations.views.auth import request_caller
from conversations.wire.openai_chat import ChatChunkEncoder, chat_completion
from conversations.wire.sse import STREAM_HEADERS
from conversations.wire.summary import summarize_turn
from providers.base import ChatMessage
from providers.defaults import PROVIDERS

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def openai_error(status: int, code: str, message: str, param: str | None = None) -> JsonResponse:
    kind = "invalid_request_error" if status < 500 else "api_error"
    return json_error(status, code, message, type=kind, param=param)


def _text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)  # type: ignore[arg-type]
    raise HttpError(422, "invalid_input", f"messages[{index}].content must be a string or text parts.")


def parse_messages(raw: Any) -> tuple[str | None, tuple[ChatMessage, ...]]:
    if not isinstance(raw, list) or not raw:
        raise HttpError(422, "invalid_input", "messages must be a non-empty array.", field="messages")
    system: list[str] = []
    messages: list[ChatMessage] = []
    for index, item in enumerate(raw):
        role = item.get("role") if isinstance(item, dict) else None
        if role not in ROLES:
            raise HttpError(
                422,
                "invalid_input",
                f"messages[{index}].role must be system, user or assistant.",
                field="messages",
            )
        text = _text(item.get("content"), index)
        if ROLES[role] == "system":
            system.append(text)
        else:
            messages.append(ChatMessage(ROLES[role], text))  # type: ignore[arg-type]
    if not messages or messages[-1].role != "user":
        raise HttpError(422, "invalid_input", "the last message must have role user.", field="messages")
    return ("\n\n".join(system) if system else None), tuple(messages)


def split_model(model: str | None) -> tuple[str | None, str | None]:
    if model and ":" in model:
        prefix, _, rest = model.partition(":")
        if prefix in PROVIDERS:
            return prefix, rest or None
    return None, model


def parse_request(request: HttpRequest, body: dict, owner_id: int | None) -> tuple[TurnRequest, bool, bool]:
    field = Field(body)
    system, messages = parse_messages(body.get("messages"))
    provider, model = split_model(field.str("model"))
    response_format = field.object("response_format") or {}
    schema = (
        (response_format.get("json_schema") or {}).get("schema")
        if isinstance(response_format, dict)
        else None
    )
    session_key = request.headers.get("X-Session-Id") or field.str("user") or f"openai-{uuid.uuid4().hex}"
    stream_options = field.object("stream_options") or {}
    turn = TurnRequest(
        session_key=session_key[:128],
        content=messages[-1].content,
        owner_id=owner_id,
        client_message_id=request.headers.get("Idempotency-Key"),
        provider=provider,
        model=model,
        system=system,
        temperature=field.number("temperature"),
        max_tokens=field.int("max_completion_tokens") or field.int("max_tokens"),
        json_output=response_format.get("type") in ("json_object", "json_schema"),
        json_schema=schema if isinstance(schema, dict) else None,
        context=messages,
    )
    return turn, field.bool("stream"), bool(stream_options.get("include_usage"))


async def _chunks(events: AsyncIterator[TurnEvent], encoder: ChatChunkEncoder) -> AsyncIterator[bytes]:
    async for event in events:
        data = encoder.encode(event)
        if data:
            yield data


@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    try:
        caller = await request_caller(request)
        turn_request, stream, include_usage = parse_request(
            request, read_json_object(request), caller.owner_id
        )
        require_native_key(caller.owner_id, turn_request.session_key)
        turn = await turn_start(replace(turn_request, rate_limit_key=caller.rate_limit_key))
    except (HttpError, TurnRejected) as exc:
        return openai_error(exc.status, exc.code, exc.message, param=exc.details.get("field"))  # type: ignore[arg-type]
    completion_id = f"chatcmpl-{turn.message_id.replace('-', '')}"
    created = int(time.time())
    model = turn_request.model or "default"
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    if stream:
        encoder = ChatChunkEncoder(
            completion_id=completion_id, model=model, created=created, include_usage=include_usage
        )
        return StreamingHttpResponse(
            _chunks(events, encoder), content_type="text/event-stream", headers=STREAM_HEADERS
        )
    summary = summarize_turn([event async for event in events])
    error = summary.get("error")
    if error is not None:
        status, headers = failed_turn_status(error["code"]), retry_after_headers(error.get("retry_after"))
        return json_error(status, error["code"], error["message"], type="api_error", headers=headers)
    return JsonResponse(
        chat_completion(summary, completion_id=completion_id, model=summary["model"], created=created)
    )
