"""Seed 000, Gemini behind an AI gateway: ``/api/chat``, ``/api/chat/stream``, ``/api/structured``.

The seed's contract: ``POST /api/chat {"message"}`` → ``{"reply": text}``; ``POST /api/chat/stream
{"message"}`` → ``text/event-stream`` of ``data: <raw text>`` frames; model alias ``fast``; a chatbot
with a system prompt and history; JSON output mode. Where the seed is silent:

* **Conversation**: the ``X-Session-Id`` header or a ``session_id`` body field names it (history and
  system prompt are kept, as the seed's ``Chatbot``); without one each request is a new
  conversation (the seed's endpoints are stateless). ``system_prompt`` in the body sets the
  conversation's system prompt, kept for its later turns; a conversation without one (none given
  yet, or empty) is answered with the seed ``Chatbot``'s default, "You are a helpful assistant"
  (not stored: the history API shows the prompt the client set).
* **Line breaks**: a text piece is framed by the SSE spec, one ``data:`` line per line, so every SSE
  parser rebuilds the exact text (the seed's literal ``f"data: {text}\\n\\n"`` makes SSE parsers
  drop everything after a line break). ``\\r\\n`` and ``\\r`` arrive as ``\\n``.
* **Errors**: a turn that fails ends the stream with ``event: error`` and JSON data
  ``{"code", "message"}`` (the seed cut the connection); ``/api/chat`` answers a JSON error
  (429 with ``Retry-After``, 504, 502).
* **Structured**: ``POST /api/structured {"prompt"}`` → the parsed JSON value, from a turn in JSON
  output mode whose message is ``"Respond with valid JSON only. " + prompt`` (as the seed's
  ``get_structured_response``); a reply that is not JSON → 502 ``invalid_json``.
* **Gateway headers**: the request headers named in ``COMPAT_FORWARD_HEADERS`` (e.g.
  ``Authorization``, ``X-Session-Token``; default none) are forwarded to the provider, plus
  ``X-App-Id: NXCODE_APP_ID`` or, without it, ``X-Workspace-Id: THREAD_ID`` when those are set.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.callers import Caller
from accounts.keys import raw_key_from_headers
from conversations.dialects.access import mount_caller
from conversations.dialects.edge import (
    collect,
    dialect_setting,
    encoded,
    failed_turn_response,
    required_text,
    session_key,
    stream_response,
)
from conversations.edge.bodies import Field, read_json_object
from conversations.edge.errors import HttpError, error_response
from conversations.errors import TurnRejected
from conversations.events import Delta, Failed, TurnEvent
from conversations.turns.jobs import follow
from conversations.turns.live import Turn
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start
from conversations.wire.sse import sse_frame
from conversations.wire.summary import summarize_turn

NAME = "gemini-gateway"
DEFAULT_MODEL = "fast"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant"
STRUCTURED_PREFIX = "Respond with valid JSON only. "
CONTENT_TYPE = "text/event-stream"

# Never forwarded, whatever COMPAT_FORWARD_HEADERS says: they describe this hop, or are our credentials.
UNFORWARDABLE = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "connection",
        "transfer-encoding",
        "accept-encoding",
        "cookie",
        "x-api-key",
        "x-csrftoken",
    }
)


# --- encoding (pure) -----------------------------------------------------------------------------
def text_frame(text: str) -> bytes:
    """``data: <text>`` with one ``data:`` line per line of ``text``, ended by a blank line."""
    return sse_frame(text)


def error_frame(code: str, message: str) -> bytes:
    return sse_frame(orjson.dumps({"code": code, "message": message}), event="error")


def encode_event(event: TurnEvent) -> bytes:
    """The stream's bytes for one turn event: text pieces, and an error event if the turn fails."""
    if isinstance(event, Delta):
        return text_frame(event.text)
    if isinstance(event, Failed):
        return error_frame(event.code, event.message)
    return b""


# --- decoding ------------------------------------------------------------------------------------
def _names(value: object) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    return [str(name).strip() for name in value or () if str(name).strip()]


def forwarded_headers(request: HttpRequest) -> dict[str, str]:
    """The caller's allowlisted headers and the gateway identity, as the seed's ``get_ai_client``."""
    headers: dict[str, str] = {}
    own_key = raw_key_from_headers(request.headers, lenient_bearer=True)  # a key of ours stays here
    for name in _names(getattr(settings, "COMPAT_FORWARD_HEADERS", ())):
        value = request.headers.get(name)
        if value and name.lower() not in UNFORWARDABLE and not (own_key and own_key in value):
            headers[name] = value
    app_id = getattr(settings, "NXCODE_APP_ID", "")
    workspace_id = getattr(settings, "THREAD_ID", "")
    if app_id:
        headers["X-App-Id"] = app_id
    elif workspace_id:
        headers["X-Workspace-Id"] = workspace_id
    return headers


def turn_request(
    request: HttpRequest, body: dict, caller: Caller, content: str, *, json_output: bool = False
) -> TurnRequest:
    field = Field(body)
    client_session = request.headers.get("X-Session-Id") or field.str("session_id")
    return TurnRequest(
        session_key=session_key(NAME, client_session),
        content=content,
        owner_id=caller.owner_id,
        provider=dialect_setting(NAME, "PROVIDER") or None,
        model=dialect_setting(NAME, "MODEL", DEFAULT_MODEL),
        system=field.str("system_prompt"),
        system_default=DEFAULT_SYSTEM_PROMPT,
        json_output=json_output,
        extra_headers=forwarded_headers(request),
        rate_limit_key=caller.rate_limit_key,
    )


async def _start(request: HttpRequest, key: str, *, prefix: str = "", json_output: bool = False) -> Turn:
    caller = await mount_caller(request, NAME)
    body = read_json_object(request)
    content = prefix + required_text(Field(body), key)
    return await turn_start(turn_request(request, body, caller, content, json_output=json_output))


# --- views ---------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
async def chat(request: HttpRequest) -> HttpResponse:
    try:
        turn = await _start(request, "message")
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    summary = summarize_turn(await collect(follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)))
    if summary["error"] is not None:
        return failed_turn_response(summary["error"])
    return JsonResponse({"reply": summary["content"]})


@csrf_exempt
@require_POST
async def chat_stream(request: HttpRequest) -> HttpResponse:
    try:
        turn = await _start(request, "message")
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    return stream_response(encoded(events, encode_event), CONTENT_TYPE)


@csrf_exempt
@require_POST
async def structured(request: HttpRequest) -> HttpResponse:
    try:
        turn = await _start(request, "prompt", prefix=STRUCTURED_PREFIX, json_output=True)
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    summary = summarize_turn(await collect(follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)))
    if summary["error"] is not None:
        return failed_turn_response(summary["error"])
    return JsonResponse(orjson.loads(summary["content"]), safe=False)


urlpatterns = [
    path("api/chat", chat),
    path("api/chat/stream", chat_stream),
    path("api/structured", structured),
]
