"""Seed 003, the Layercode voice agent: ``POST /agent`` answering with SSE for text-to-speech.

The seed's contract: ``{"text", "type": "message"|"session.start", "session_id", "turn_id"}`` in;
``data: {"type":"response.tts","content":…,"turn_id":…}`` frames, then
``data: {"type":"response.end","turn_id":…}``; one history per ``session_id``; friendly replies
on errors. Where the seed is silent, the Layercode platform is the contract:

* **Signed webhooks** (:mod:`.signature`): every request must carry a valid
  ``layercode-signature`` (HMAC-SHA256 of ``<t>.<raw body>`` with ``LAYERCODE_WEBHOOK_SECRET``,
  ``t`` within 300 s); otherwise 401 ``signature_missing`` / ``signature_malformed`` /
  ``signature_invalid`` / ``signature_expired``, before the body is read as JSON. The signature
  is the credential: no API key, no ``ALLOW_ANONYMOUS``. Without the secret the mount answers
  401 ``webhook_secret_not_set``, unless ``DEBUG`` (local development: unsigned accepted, with a
  warning). Turns are rate limited per session (per IP without a ``session_id``).
* **Retries**: ``turn_id`` is the turn's idempotency key within its session. The same turn again
  (the platform retrying a webhook) makes no second provider call: a finished answer is replayed
  from storage (its whole text in one ``response.tts``, then ``response.end``; a failed one as the
  fallback, a stopped one as ``response.end`` alone); one still being answered in this process is
  joined (what was said so far, then the rest as it comes). One being answered by another server
  process cannot be told from another turn's answer, and is stopped as in a barge-in.
* **Frames**: compact JSON, keys in the README's order, UTF-8; one ``response.tts`` per piece of
  the answer as it streams (Layercode's voice pipeline does its own sentence chunking).
* **session.start**: a fixed greeting, ``LAYERCODE_GREETING`` (default Layercode's own, "Welcome
  to Layercode. How can I help you today?"), with no provider call; it is stored as the session's
  first (assistant) message, so the model sees it as context (once: a repeated start of a session
  with messages stores nothing). Empty: no greeting, just ``response.end``.
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
* **Session**: ``session_id`` names the conversation (``layercode:<session_id>``, no owner;
  without one, a conversation per request); ``turn_id`` is echoed in every frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import fields

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations.db import run_db
from conversations.db_errors import DATABASE_DOWN, database_problem
from conversations.dialects.access import mount_caller
from conversations.dialects.edge import dialect_setting, encoded, frames_of, session_key, stream_response
from conversations.edge.bodies import Field, read_json_object
from conversations.edge.errors import HttpError, error_response
from conversations.errors import RepeatedTurnInProgress, TurnInProgress, TurnRejected
from conversations.events import (
    TERMINAL_EVENTS,
    ArtifactReady,
    Completed,
    Delta,
    Failed,
    Started,
    TurnEvent,
    UsageReported,
)
from conversations.request_end import on_request_end
from conversations.services import conversation_greeting_store
from conversations.turns.jobs import TurnJob, follow, listen, turn_stop
from conversations.turns.request import TurnRequest
from conversations.turns.running import running_jobs
from conversations.turns.service import turn_start
from conversations.wire.sse import sse_frame

logger = logging.getLogger(__name__)

NAME = "layercode"
CONTENT_TYPE = "text/event-stream"
TYPES = ("message", "session.start")
TURN_ID_LENGTH = 128
DEFAULT_GREETING = "Welcome to Layercode. How can I help you today?"
DEFAULT_FALLBACK = "Sorry, I'm having trouble answering right now. Could you say that again?"
DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are read aloud by text-to-speech: answer in "
    "short, natural spoken sentences, without markdown, lists, code, links or emoji."
)
BARGE_IN_WAIT = 5.0  # seconds to wait for a stopped answer to be saved


# --- encoding (pure) -----------------------------------------------------------------------------
def tts_frame(content: str, turn_id: str | None) -> bytes:
    payload = {"type": "response.tts", "content": content, "turn_id": turn_id}
    return sse_frame(orjson.dumps(payload))


def end_frame(turn_id: str | None) -> bytes:
    return sse_frame(orjson.dumps({"type": "response.end", "turn_id": turn_id}))


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
EVENT_TYPES = {cls.type: cls for cls in (Started, Delta, ArtifactReady, UsageReported, Completed, Failed)}


def event_from_dict(data: dict) -> TurnEvent:
    cls = EVENT_TYPES[data["type"]]
    return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


async def _chain(past: list[TurnEvent], rest: AsyncIterator[TurnEvent] | None) -> AsyncIterator[TurnEvent]:
    for event in past:
        yield event
    if rest is not None:
        async for event in rest:
            yield event


def rejoin(job: TurnJob) -> AsyncIterator[TurnEvent]:
    """A retried turn still running in this process: its events so far, then the rest live."""
    past = [event_from_dict(data) for data in job.events]
    if any(isinstance(event, TERMINAL_EVENTS) for event in past):
        return _chain(past, None)
    queue = job.attach()  # no await since reading ``job.events``: no event is missed or repeated
    on_request_end(lambda: job.detach(queue))
    return _chain(past, listen(job, queue))


def running_same_turn(request: TurnRequest, message_id: str) -> TurnJob | None:
    """The job answering this very turn (same session and ``turn_id``), if it runs in this process."""
    job = running_jobs.get(message_id)
    if job is None or request.client_message_id is None:
        return None
    asked = job.turn.request
    same = (asked.session_key, asked.owner_id, asked.client_message_id) == (
        request.session_key,
        request.owner_id,
        request.client_message_id,
    )
    return job if same else None


async def answer(request: TurnRequest) -> AsyncIterator[TurnEvent]:
    """The turn's events: started (or replayed, or joined when retried); an answer of the session
    still streaming for another turn is stopped first (barge-in). Raises TurnRejected."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        try:
            turn = await turn_start(request)
        except TurnInProgress as exc:
            busy = exc.details.get("message_id")
            if busy is None:
                raise
            job = running_same_turn(request, str(busy))
            if job is not None:
                return rejoin(job)
            waited = loop.time() - started
            if isinstance(exc, RepeatedTurnInProgress):
                # This very turn, answered by another process (or by a request still starting its
                # job): wait for the answer and replay it, never stop it.
                if waited > settings.LLM_READ_TIMEOUT:
                    raise
                await asyncio.sleep(0.1)
                continue
            if waited > BARGE_IN_WAIT:
                raise
            await turn_stop(str(busy))
            await asyncio.sleep(0.05)
            continue
        return follow(turn, grace=settings.HTTP_DETACH_GRACE_SECONDS)


async def store_greeting(owner_id: int | None, key: str, text: str) -> None:
    """The greeting as the session's first message; the call goes on if the database is down."""
    try:
        await run_db(
            conversation_greeting_store,
            owner_id=owner_id,
            session_key=key,
            greeting=text,
            system=system_prompt(),
        )
    except DATABASE_DOWN as exc:
        logger.warning("layercode greeting of %s not stored (%s)", key, database_problem(exc)[0])


# --- views ---------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
async def agent(request: HttpRequest) -> HttpResponse:
    try:
        caller = await mount_caller(request, NAME)
        field = Field(read_json_object(request))
        kind = field.str("type", default="message")
        turn_id = field.str("turn_id")
        session_id = field.str("session_id")
        key = session_key(NAME, session_id)
        text = field.str("text") or ""
        if kind not in TYPES:
            raise HttpError(422, "invalid_input", "type must be message or session.start.", field="type")
        if turn_id is not None and len(turn_id) > TURN_ID_LENGTH:
            raise HttpError(
                422, "invalid_input", f"turn_id must be at most {TURN_ID_LENGTH} characters.", field="turn_id"
            )
    except HttpError as exc:
        return error_response(exc)
    if kind == "session.start":
        spoken = greeting()
        if spoken and session_id:
            await store_greeting(caller.owner_id, key, spoken)
        return stream_response(frames_of(spoken_frames(spoken, turn_id)), CONTENT_TYPE)
    turn_request = TurnRequest(
        session_key=key,
        content=text,
        owner_id=caller.owner_id,
        client_message_id=turn_id or None,
        provider=dialect_setting(NAME, "PROVIDER") or None,
        model=dialect_setting(NAME, "MODEL") or None,
        system=system_prompt(),
        rate_limit_key=key if session_id else caller.rate_limit_key,
    )
    try:
        events = await answer(turn_request)
    except TurnRejected as exc:
        logger.warning("layercode turn not started (%s): %s", exc.code, exc.message)
        return stream_response(frames_of(spoken_frames(fallback(), turn_id)), CONTENT_TYPE)
    return stream_response(encoded(events, LayercodeEncoder(turn_id, fallback()).encode), CONTENT_TYPE)


urlpatterns = [path("agent", agent)]
