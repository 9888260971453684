"""Seed 002, the Z.AI backend: ``POST /api/chat`` and ``GET /health``.

The seed's contract: ``{"messages", "model", "stream", "temperature", "max_tokens"}`` in; with
``stream: true`` SSE frames ``data: {"choices": [{"delta": {"content": …}}], "model": …,
"created": …}`` (Python ``json.dumps`` defaults: ``", "``/``": "`` separators, non-ASCII as
``\\uXXXX``) ending with ``data: {"data": "[DONE]"}``; otherwise one JSON completion; 400 with
validation details for invalid messages; 500 with a clear message when ``ZAI_API_KEY`` is missing;
``GET /health`` → ``{"status": "healthy", "zai_client_initialized", "timestamp"}``.
Where the seed is silent:

* **Provider**: ``zai`` whatever ``LLM_PROVIDER`` says (``COMPAT_ZAI_PROVIDER`` overrides it, e.g.
  ``demo`` offline); ``model`` is passed through (aliases apply), default ``ZAI_MODEL``. The
  frames' ``model`` is the model that answers; ``created`` is the request's Unix time.
* **Context**: the client's ``messages`` (its system messages become the session's system
  prompt). ``X-Session-Id`` groups the turns into one stored conversation; without it each
  request is a conversation of its own.
* **Defaults**: the seed server's, which its client relies on (it sends only ``messages`` and
  reads SSE): ``stream`` true, ``temperature`` 0.7, ``max_tokens`` 2048 when absent or null.
* **Non-streamed**: an OpenAI-style ``chat.completion`` object (``id``, ``created``, ``model``,
  ``choices[0].message``, ``finish_reason``, ``usage``).
* **Errors**: every input error is 400 (``{"error": {"code", "message", "details"?}}``); a turn
  that fails mid-stream sends ``data: {"error": {"code", "message"}}`` then the ``[DONE]`` frame;
  non-streamed, a JSON error (429 with ``Retry-After``, 504, 502).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.callers import Caller
from conversations.dialects.access import mount_caller
from conversations.dialects.edge import (
    collect,
    dialect_setting,
    encoded,
    failed_turn_response,
    session_key,
    stream_response,
)
from conversations.edge.bodies import Field, read_json_object
from conversations.edge.errors import HttpError, json_error
from conversations.errors import TurnRejected
from conversations.events import Completed, Delta, Failed, Started, TurnEvent
from conversations.turns.jobs import follow
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start
from conversations.wire.openai_chat import chat_completion
from conversations.wire.sse import sse_frame
from conversations.wire.summary import summarize_turn
from providers.base import ChatMessage
from providers.registry import UnknownProvider, get_registry

NAME = "zai"
DEFAULT_PROVIDER = "zai"
CONTENT_TYPE = "text/event-stream"
DONE = sse_frame(b'{"data": "[DONE]"}')
ROLES = ("system", "user", "assistant")
MISSING_KEY = "ZAI_API_KEY is required: set it to your Z.AI API key (format id.secret) and restart."
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 2048


# --- encoding (pure) -----------------------------------------------------------------------------
def data_frame(payload: dict[str, Any]) -> bytes:
    return sse_frame(json.dumps(payload))


class ZaiChunkEncoder:
    """One per streamed response; ``model`` is taken from the ``started`` event unless given."""

    def __init__(self, *, created: int, model: str | None = None) -> None:
        self.created, self.model = created, model

    def encode(self, event: TurnEvent) -> bytes:
        if isinstance(event, Started):
            self.model = self.model or event.model
        elif isinstance(event, Delta):
            delta = {"choices": [{"delta": {"content": event.text}}], "model": self.model}
            return data_frame({**delta, "created": self.created})
        elif isinstance(event, Completed):
            return DONE
        elif isinstance(event, Failed):
            return data_frame({"error": {"code": event.code, "message": event.message}}) + DONE
        return b""


def health_timestamp(now: datetime) -> str:
    """``2024-01-01T12:00:00.000Z``: UTC, milliseconds, as the seed's README shows."""
    now = now.astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# --- decoding ------------------------------------------------------------------------------------
def invalid(problems: list[dict[str, str]]) -> HttpError:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return HttpError(400, "invalid_messages", f"Invalid messages: {summary}.", details=problems)


def parse_messages(raw: Any) -> tuple[str | None, tuple[ChatMessage, ...]]:
    """``(system prompt, transcript)`` from the request's messages, or a 400 listing every problem."""
    if not isinstance(raw, list) or not raw:
        raise invalid([{"field": "messages", "message": "must be a non-empty array of {role, content}"}])
    problems: list[dict[str, str]] = []
    system: list[str] = []
    messages: list[ChatMessage] = []
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            problems.append({"field": where, "message": "must be an object with role and content"})
            continue
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            problems.append({"field": f"{where}.role", "message": "must be system, user or assistant"})
        if not isinstance(content, str):
            problems.append({"field": f"{where}.content", "message": "must be a string"})
        if role not in ROLES or not isinstance(content, str):
            continue
        if role == "system":
            system.append(content)
        else:
            messages.append(ChatMessage(role, content))
    if not problems and (not messages or messages[-1].role != "user" or not messages[-1].content.strip()):
        problems.append({"field": "messages", "message": "the last message must be a non-empty user message"})
    if problems:
        raise invalid(problems)
    return ("\n\n".join(system) if system else None), tuple(messages)


def turn_request(request: HttpRequest, body: dict, caller: Caller) -> TurnRequest:
    field = Field(body)
    system, messages = parse_messages(body.get("messages"))
    temperature, max_tokens = field.number("temperature"), field.int("max_tokens")
    return TurnRequest(
        session_key=session_key(NAME, request.headers.get("X-Session-Id"), field="X-Session-Id"),
        content=messages[-1].content,
        owner_id=caller.owner_id,
        provider=provider_name(),
        model=field.str("model") or dialect_setting(NAME, "MODEL") or None,
        system=system,
        temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        context=messages,
        rate_limit_key=caller.rate_limit_key,
    )


def provider_name() -> str:
    return dialect_setting(NAME, "PROVIDER", DEFAULT_PROVIDER)


def provider_configured(name: str) -> bool:
    """Whether the provider has its key: the seed's ``zai_client_initialized`` (no call is made)."""
    try:
        return get_registry().config(name).configured
    except UnknownProvider:
        return False


def rejected(exc: HttpError | TurnRejected) -> JsonResponse:
    """Our errors in the seed's statuses: any input error is 400, a missing key is 500."""
    status, message = exc.status, exc.message
    if status == 422:
        status = 400
    if exc.code == "provider_not_configured":
        status = 500
        message = MISSING_KEY if provider_name() == DEFAULT_PROVIDER else message
    return json_error(status, exc.code, message, **exc.details)


# --- views ---------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
async def chat(request: HttpRequest) -> HttpResponse:
    created = int(time.time())
    try:
        caller = await mount_caller(request, NAME)
        body = read_json_object(request)
        stream = Field(body).bool("stream", default=True)
        turn = await turn_start(turn_request(request, body, caller))
    except (HttpError, TurnRejected) as exc:
        return rejected(exc)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    if stream:
        return stream_response(encoded(events, ZaiChunkEncoder(created=created).encode), CONTENT_TYPE)
    summary = summarize_turn(await collect(events))
    if summary["error"] is not None:
        return failed_turn_response(summary["error"])
    completion_id = f"chatcmpl-{turn.message_id.replace('-', '')}"
    return JsonResponse(
        chat_completion(summary, completion_id=completion_id, model=summary["model"], created=created)
    )


@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "status": "healthy",
            "zai_client_initialized": provider_configured(provider_name()),
            "timestamp": health_timestamp(datetime.now(UTC)),
        }
    )


urlpatterns = [
    path("api/chat", chat),
    path("health", health),
]
