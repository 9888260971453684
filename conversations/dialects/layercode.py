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
  joined (what was said so far, then the rest as it comes), one answered by another process is
  awaited and then replayed, never stopped.
* **Replays**: the exact signed request again (within the signature's window) is the same turn
  even without a ``turn_id`` (its id, and without a ``session_id`` its session, come from the
  signature), answered as a retry; the replay of a request that was refused is refused too
  (:mod:`.replays`: Redis, or this process's memory without it).
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

from django.conf import settings

from conversations.codecs.base import Started as StartedTurn
from conversations.codecs.base import frames_of
from conversations.codecs.layercode import NAME, Greeting, SignedTurn
from conversations.db import run_db
from conversations.db_errors import DATABASE_DOWN, database_problem
from conversations.dialects.mount_settings import dialect_setting
from conversations.dialects.replays import (
    OPENED,
    OPENING,
    REFUSED,
    request_first_seen,
    request_settle,
    request_state,
)
from conversations.errors import RepeatedTurnInProgress, TurnInProgress, TurnRejected
from conversations.events import (
    EVENT_TYPES,
    TERMINAL_EVENTS,
    TurnEvent,
)
from conversations.request_end import on_request_end
from conversations.session_writes import conversation_greeting_store
from conversations.turns.jobs import TurnJob, follow, listen, turn_stop
from conversations.turns.request import TurnRequest
from conversations.turns.running import running_jobs
from conversations.turns.service import turn_start

logger = logging.getLogger(__name__)

DEFAULT_GREETING = "Welcome to Layercode. How can I help you today?"
DEFAULT_FALLBACK = "Sorry, I'm having trouble answering right now. Could you say that again?"
DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are read aloud by text-to-speech: answer in "
    "short, natural spoken sentences, without markdown, lists, code, links or emoji."
)
BARGE_IN_WAIT = 5.0  # seconds to wait for a stopped answer to be saved
REPLAY_WAIT = BARGE_IN_WAIT + 1.0  # seconds a replay waits for its original to open (or be refused)
REPLAY_POLL = 0.1


# --- settings ------------------------------------------------------------------------------------
def greeting() -> str:
    return getattr(settings, "LAYERCODE_GREETING", DEFAULT_GREETING)


def fallback() -> str:
    return getattr(settings, "LAYERCODE_FALLBACK", None) or DEFAULT_FALLBACK


def system_prompt() -> str:
    return getattr(settings, "LAYERCODE_SYSTEM_PROMPT", None) or DEFAULT_SYSTEM_PROMPT


# --- turns ---------------------------------------------------------------------------------------
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


async def answer_signed(signed: SignedTurn) -> AsyncIterator[TurnEvent]:
    """A signed message: the first sight of the request is answered (:func:`answer`) and its
    outcome recorded; a replay follows its original's answer, or is refused when it was."""
    key = signed.replay_key
    if await request_first_seen(key, signed.valid_until):
        try:
            events = await answer(signed)
        except TurnRejected:
            await request_settle(key, REFUSED)
            raise
        await request_settle(key, OPENED)
        return events
    state: str | None = OPENING
    for _ in range(round(REPLAY_WAIT / REPLAY_POLL)):
        state = await request_state(key)
        if state != OPENING:
            break
        await asyncio.sleep(REPLAY_POLL)
    if state == REFUSED:
        raise TurnRejected(
            "A replay of a signed request that was refused: it starts no turn. Sign each new "
            "request when sending it.",
            code="replay_refused",
            status=409,
        )
    # Its answer, through the turn's idempotency (the same turn id): replayed, joined or awaited.
    return await answer(signed)


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


async def start(decoded: TurnRequest | Greeting) -> StartedTurn:
    """A greeting is stored (when the session is named); a message is answered (see :func:`answer`
    and, for a signed request, :func:`answer_signed`)."""
    if isinstance(decoded, Greeting):
        if decoded.text and decoded.session_id:
            await store_greeting(decoded.owner_id, decoded.session_key, decoded.text)
        return StartedTurn(None, frames_of(()))
    if isinstance(decoded, SignedTurn):
        return StartedTurn(None, await answer_signed(decoded))
    return StartedTurn(None, await answer(decoded))


def choice() -> tuple[str | None, str | None]:
    return dialect_setting(NAME, "PROVIDER") or None, dialect_setting(NAME, "MODEL") or None
