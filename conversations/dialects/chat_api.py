"""Seed 004, the extensible AI chat API: ``POST /api/chat/stream`` and ``GET /health``.

The seed's contract: ``{"message", "previous_response_id"?}`` in; SSE ``event: delta`` /
``data: <raw text>`` per piece of the answer, then ``event: done`` / ``data: <response id>``; that
id, sent back as ``previous_response_id``, continues the conversation; OpenAI's Responses API by
default (``LLM_PROVIDER``, ``LLM_MODEL``); ``X-API-Key`` required when ``API_KEY`` is set; 20
requests per 60 s per caller. Its page reads the stream line by line, each line trimmed, and takes
the first ``data:`` line after an ``event:`` line as that event's payload. Where the seed is silent:

* **Deltas as the page shows them**: one ``event: delta`` per line of text, never empty, never
  ending in whitespace. A data line cannot hold a line break and the page trims every line, so
  line breaks are dropped and whitespace moves forward: a delta's trailing whitespace starts the
  next delta (the trim keeps leading whitespace), a line break between two words becomes a space
  there, and whitespace at the very end of the answer is dropped. The page shows the words intact;
  the stored answer (history API) keeps the exact text.
* **Response id**: the id of our stored answer (a UUID). Sent back, it continues that answer's
  conversation: with ``openai-responses`` the turn chains natively with the provider's own
  ``previous_response_id`` (stored on the conversation), with every other provider the stored
  history is the context. Conversations are linear: an older id continues the conversation from
  its latest answer. An id we did not hand out (or another owner's, or another dialect's) is
  ``404 previous_response_not_found``; no id starts a new conversation.
* **Errors**: a turn that fails (or is stopped) ends with ``event: error`` / ``data: <message>``,
  plain text on one line, instead of ``done``. A request that cannot start a turn is a JSON error
  ``{"error": {"code", "message"}}`` with its status (401, 404, 422, 429, 503…).
* **Provider, model, prompt**: ``COMPAT_CHAT_API_PROVIDER`` when set; else, as the seed, the
  Responses API (``openai-responses``) when ``OPENAI_API_KEY`` is set; else ``LLM_PROVIDER``.
  ``COMPAT_CHAT_API_MODEL``, else the seed's ``LLM_MODEL``, else the provider's default model.
  The system prompt is the seed's, "You are a helpful assistant. Be concise."
* **API key and rate limit**: who may call is the mount's access rule (:mod:`.access`; with
  ``API_KEY`` set, ``X-API-Key`` must carry it or a personal key, else ``401``). Turns are rate
  limited per caller (API key, user, else IP) by ``COMPAT_CHAT_API_RATE_LIMIT`` (default the
  seed's ``20/60 seconds``; empty for none) in place of ``RATE_LIMIT_TURNS``, in a window of
  their own: ``429 rate_limited`` with ``Retry-After`` (Redis, failing open; no ``REDIS_URL``, no
  limit). ``GET /health`` (``{"status": "ok"}``) needs no key.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from conversations.dialects.access import mount_caller
from conversations.dialects.edge import (
    dialect_setting,
    encoded,
    required_text,
    session_key,
    session_prefix,
    stream_response,
)
from conversations.dialects.sessions import asession_key_for_answer
from conversations.edge.bodies import Field, read_json_object
from conversations.edge.errors import HttpError, error_response
from conversations.errors import TurnRejected
from conversations.events import Completed, Delta, Failed, TurnEvent
from conversations.turns.jobs import follow
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start
from conversations.wire.sse import sse_frame
from providers.registry import get_registry

NAME = "chat-api"
CONTENT_TYPE = "text/event-stream"
RESPONSES_PROVIDER = "openai-responses"
SYSTEM_PROMPT = "You are a helpful assistant. Be concise."
DEFAULT_RATE_LIMIT = "20/60 seconds"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


# --- encoding (pure) -----------------------------------------------------------------------------
def sse_event(name: bytes, data: str) -> bytes:
    """``event: <name>`` and one ``data:`` line: ``data`` holds no line break."""
    return sse_frame(data, event=name)


class ChatApiEncoder:
    """The frames of one turn, shaped so that a reader trimming each line loses no word.

    Whitespace a trim would eat (a delta's trailing spaces, a line break) is held back and sent at
    the start of the next delta that has text; a line break becomes a space unless whitespace is
    already held, and is dropped before the first text.
    """

    def __init__(self) -> None:
        self.held = ""  # whitespace not sent yet
        self.started = False  # some text was sent

    def encode(self, event: TurnEvent) -> bytes:
        if isinstance(event, Delta):
            return b"".join(self.deltas(event.text))
        if isinstance(event, Completed):
            return sse_event(b"done", event.message_id)
        if isinstance(event, Failed):
            return sse_event(b"error", " ".join(event.message.split()) or event.code)
        return b""

    def deltas(self, text: str) -> list[bytes]:
        frames = []
        for index, line in enumerate(_LINE_BREAK.split(text)):
            if index and self.started and not self.held:
                self.held = " "
            words = line.rstrip()
            if words:
                frames.append(sse_event(b"delta", self.held + words))
                self.held, self.started = "", True
            self.held += line[len(words) :]
        return frames


# --- decoding ------------------------------------------------------------------------------------
async def conversation_of(owner_id: int | None, previous_response_id: str | None) -> str:
    if previous_response_id is None:
        return session_key(NAME, None)
    key = await asession_key_for_answer(
        owner_id=owner_id, message_id=previous_response_id, key_prefix=session_prefix(NAME)
    )
    if key is None:
        raise HttpError(
            404,
            "previous_response_not_found",
            "previous_response_id is not a response of this API: send the response_id of a done event, "
            "or omit it to start a new conversation.",
            field="previous_response_id",
        )
    return key


def provider_name() -> str | None:
    """``COMPAT_CHAT_API_PROVIDER``; else the Responses API when it has a key; else ``LLM_PROVIDER``."""
    chosen = dialect_setting(NAME, "PROVIDER")
    if chosen:
        return chosen
    return RESPONSES_PROVIDER if get_registry().config(RESPONSES_PROVIDER).configured else None


# --- views ---------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
async def chat_stream(request: HttpRequest) -> HttpResponse:
    try:
        caller = await mount_caller(request, NAME)
        field = Field(read_json_object(request))
        message = required_text(field, "message")
        key = await conversation_of(caller.owner_id, field.str("previous_response_id"))
        turn = await turn_start(
            TurnRequest(
                session_key=key,
                content=message,
                owner_id=caller.owner_id,
                provider=provider_name(),
                model=dialect_setting(NAME, "MODEL") or getattr(settings, "LLM_MODEL", "") or None,
                system=SYSTEM_PROMPT,
                rate_limit_key=f"{NAME}:{caller.rate_limit_key}",
                rate_limit=getattr(settings, "COMPAT_CHAT_API_RATE_LIMIT", DEFAULT_RATE_LIMIT),
            )
        )
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    return stream_response(encoded(events, ChatApiEncoder().encode), CONTENT_TYPE)


@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("api/chat/stream", chat_stream),
    path("health", health),
]
