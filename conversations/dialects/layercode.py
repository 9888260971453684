"""Seed 003, the Layercode voice agent: ``POST /agent`` answering with SSE for text-to-speech.

The seed's contract: ``{"text", "type": "message"|"session.start", "session_id", "turn_id"}`` in;
``data: {"type":"response.tts","content":…,"turn_id":…}`` frames, then
``data: {"type":"response.end","turn_id":…}``; one history per ``session_id``; friendly replies
on errors. Where the seed is silent:

* **Frames**: compact JSON, keys in the README's order, UTF-8; one ``response.tts`` per piece of
  the answer as it streams (Layercode's voice pipeline does its own sentence chunking).
* **session.start**: a fixed greeting, ``LAYERCODE_GREETING``, with no provider call (empty: just
  ``response.end``). It is not stored: it is not a turn of the model.
* **System prompt**: ``LAYERCODE_SYSTEM_PROMPT``, asking for short replies fit to be spoken, is
  the session's system prompt (a changed setting applies from the next turn).
* **Errors**: when the turn cannot start (provider not configured, …) or fails, a
  ``response.tts`` with ``LAYERCODE_FALLBACK`` and then ``response.end``, always with status 200
  (the voice call goes on); a failed turn is stored as such, a turn that could not start is
  logged. An answer that was stopped ends with
  ``response.end`` alone. Only a malformed request (not JSON, wrong types, an unknown ``type``)
  is a JSON error.
* **Barge-in**: a message for a session whose previous answer is still streaming (the caller
  spoke over it) stops that answer (kept ``interrupted``) and answers the new one.
* **Session**: ``session_id`` names the conversation (``layercode:<session_id>``; without one, a
  conversation per request); ``turn_id`` is echoed in every frame.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations.dialects.edge import dialect_setting, encoded, frames_of, session_key, stream_response
from conversations.errors import TurnInProgress, TurnRejected
from conversations.events import Completed, Delta, Failed, TurnEvent
from conversations.http import Field, HttpError, error_response, read_json_object
from conversations.jobs import follow, request_stop
from conversations.turns import Turn, TurnRequest, start_turn
from conversations.views.auth import request_caller

logger = logging.getLogger(__name__)

NAME = "layercode"
CONTENT_TYPE = "text/event-stream"
TYPES = ("message", "session.start")
DEFAULT_GREETING = "Hi there! How can I help you today?"
DEFAULT_FALLBACK = "Sorry, I'm having trouble answering right now. Could you say that again?"
DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are read aloud by text-to-speech: answer in "
    "short, natural spoken sentences, without markdown, lists, code, links or emoji."
)
BARGE_IN_WAIT = 5.0  # seconds to wait for a stopped answer to be saved


# --- encoding (pure) -----------------------------------------------------------------------------
def tts_frame(content: str, turn_id: str | None) -> bytes:
    payload = {"type": "response.tts", "content": content, "turn_id": turn_id}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def end_frame(turn_id: str | None) -> bytes:
    return b"data: " + orjson.dumps({"type": "response.end", "turn_id": turn_id}) + b"\n\n"


def spoken_frames(text: str, turn_id: str | None) -> list[bytes]:
    """A whole reply known in advance (greeting, fallback): one ``response.tts`` and the end."""
    return ([tts_frame(text, turn_id)] if text else []) + [end_frame(turn_id)]


class LayercodeEncoder:
    """The frames of one turn; a failed turn says ``fallback`` before ending."""

    def __init__(self, turn_id: str | None, fallback: str) -> None:
        self.turn_id, self.fallback = turn_id, fallback

    def encode(self, event: TurnEvent) -> bytes:
        if isinstance(event, Delta):
            return tts_frame(event.text, self.turn_id)
        if isinstance(event, Completed):
            return end_frame(self.turn_id)
        if isinstance(event, Failed):
            spoken = self.fallback if event.status == "failed" else ""
            return b"".join(spoken_frames(spoken, self.turn_id))
        return b""


# --- settings ------------------------------------------------------------------------------------
def greeting() -> str:
    return getattr(settings, "LAYERCODE_GREETING", DEFAULT_GREETING)


def fallback() -> str:
    return getattr(settings, "LAYERCODE_FALLBACK", None) or DEFAULT_FALLBACK


def system_prompt() -> str:
    return getattr(settings, "LAYERCODE_SYSTEM_PROMPT", None) or DEFAULT_SYSTEM_PROMPT


# --- turns ---------------------------------------------------------------------------------------
async def start_over_previous(request: TurnRequest) -> Turn:
    """Start the turn; an answer of the session still streaming is stopped first (barge-in)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BARGE_IN_WAIT
    while True:
        try:
            return await start_turn(request)
        except TurnInProgress as exc:
            busy = exc.details.get("message_id")
            if busy is None or loop.time() > deadline:
                raise
            await request_stop(str(busy))
            await asyncio.sleep(0.05)


# --- views ---------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
async def agent(request: HttpRequest) -> HttpResponse:
    try:
        caller = await request_caller(request)
        field = Field(read_json_object(request))
        kind = field.str("type", default="message")
        turn_id = field.str("turn_id")
        key = session_key(NAME, field.str("session_id"))
        text = field.str("text") or ""
        if kind not in TYPES:
            raise HttpError(422, "invalid_input", "type must be message or session.start.", field="type")
    except HttpError as exc:
        return error_response(exc)
    if kind == "session.start":
        return stream_response(frames_of(spoken_frames(greeting(), turn_id)), CONTENT_TYPE)
    turn_request = TurnRequest(
        session_key=key,
        content=text,
        owner_id=caller.owner_id,
        provider=dialect_setting(NAME, "PROVIDER") or None,
        model=dialect_setting(NAME, "MODEL") or None,
        system=system_prompt(),
        rate_limit_key=caller.rate_limit_key,
    )
    try:
        turn = await start_over_previous(turn_request)
    except TurnRejected as exc:
        logger.warning("layercode turn not started (%s): %s", exc.code, exc.message)
        return stream_response(frames_of(spoken_frames(fallback(), turn_id)), CONTENT_TYPE)
    events = follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)
    return stream_response(encoded(events, LayercodeEncoder(turn_id, fallback()).encode), CONTENT_TYPE)


urlpatterns = [path("agent", agent)]
