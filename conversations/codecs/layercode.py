"""The Layercode voice agent's protocol (``POST /agent``): decoding, text-to-speech frames, and
errors spoken as the fallback. The contract and what we chose where the seed and the platform are
silent are in :mod:`conversations.dialects.layercode`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from accounts.callers import Caller
from conversations.codecs import base
from conversations.codecs.base import Inbound, Reply, Started, StreamReply
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.events import Completed, Delta, Failed, TurnEvent
from conversations.turns.request import TurnRequest
from conversations.wire.sse import CONTENT_TYPE, sse_frame

logger = logging.getLogger(__name__)

NAME = "layercode"
TYPES = ("message", "session.start")
TURN_ID_LENGTH = 128
REQUEST_ID_PREFIX = "sig-"  # the turn's id (and, without a session_id, its session's) from its signature


@dataclass(frozen=True, slots=True)
class SignedCaller(Caller):
    """The caller of a request whose signature was verified. ``replay_key`` names that exact
    request (a hash of the verified signature: every replay of the request has the same one) and
    ``valid_until`` is when its signature leaves the window (Unix seconds)."""

    replay_key: str = ""
    valid_until: float = 0.0


@dataclass(frozen=True, slots=True)
class SignedTurn(TurnRequest):
    """A message from a signed request: a turn request that also names the exact request (its
    caller's ``replay_key`` and ``valid_until``), so that a replay of it is told apart
    (:mod:`conversations.dialects.replays`)."""

    replay_key: str = ""
    valid_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Greeting:
    """A ``session.start``: no turn, the greeting spoken (and stored as the session's first message)."""

    owner_id: int | None
    session_key: str
    session_id: str | None
    text: str


# --- encoding ------------------------------------------------------------------------------------
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


# --- the codec -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Voice:
    """What the mount says of itself, read at each request: ``(provider, model)``, the system
    prompt, the greeting and the fallback."""

    choice: Callable[[], tuple[str | None, str | None]]
    system_prompt: Callable[[], str]
    greeting: Callable[[], str]
    fallback: Callable[[], str]


class LayercodeCodec:
    def __init__(self, voice: Voice) -> None:
        self.voice = voice

    async def decode(self, inbound: Inbound) -> TurnRequest | Greeting:
        """A message of a signed request without a ``turn_id`` takes its id from the signature
        (and, without a ``session_id``, its session too), so a replay of the exact request is
        the same turn of the same session: answered from storage, never by a second call."""
        field = Field(inbound.body)
        kind = field.str("type", default="message")
        turn_id = field.str("turn_id")
        session_id = field.str("session_id")
        signed = inbound.caller if isinstance(inbound.caller, SignedCaller) else None
        request_id = REQUEST_ID_PREFIX + signed.replay_key[:32] if signed is not None else None
        key = base.mount_session_key(NAME, session_id or request_id)
        text = field.str("text") or ""
        if kind not in TYPES:
            raise HttpError(422, "invalid_input", "type must be message or session.start.", field="type")
        if turn_id is not None and len(turn_id) > TURN_ID_LENGTH:
            raise HttpError(
                422, "invalid_input", f"turn_id must be at most {TURN_ID_LENGTH} characters.", field="turn_id"
            )
        if kind == "session.start":
            return Greeting(inbound.caller.owner_id, key, session_id, self.voice.greeting())
        provider, model = self.voice.choice()
        signature = {"replay_key": signed.replay_key, "valid_until": signed.valid_until} if signed else {}
        return (SignedTurn if signed else TurnRequest)(
            session_key=key,
            content=text,
            owner_id=inbound.caller.owner_id,
            client_message_id=turn_id or request_id,
            provider=provider,
            model=model,
            system=self.voice.system_prompt(),
            rate_limit_key=key if session_id else inbound.caller.rate_limit_key,
            api_key_id=inbound.caller.api_key_id,
            **signature,
        )

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> Reply:
        """A malformed request is a JSON error; a turn that cannot start is the fallback, spoken."""
        if isinstance(error, HttpError):
            return base.error_reply(error)
        logger.warning("layercode turn not started (%s): %s", error.code, error.message)
        turn_id = Field(inbound.body).str("turn_id") if inbound is not None else None
        return StreamReply(base.frames_of(spoken_frames(self.voice.fallback(), turn_id)), CONTENT_TYPE)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        field = Field(inbound.body)
        turn_id = field.str("turn_id")
        if field.str("type", default="message") == "session.start":
            return StreamReply(base.frames_of(spoken_frames(self.voice.greeting(), turn_id)), CONTENT_TYPE)
        encoder = LayercodeEncoder(turn_id, self.voice.fallback())
        return StreamReply(base.encoded(started.events, encoder.encode), CONTENT_TYPE)
