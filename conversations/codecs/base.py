"""What a codec is handed and what it answers: the contract between a protocol and the pipeline.

A codec (one module per protocol) (1) decodes an :class:`Inbound` into a ``TurnRequest`` or
raises :class:`~conversations.edge.http_errors.HttpError` naming the problem, (2) renders a rejection
the way its clients expect, (3) encodes a started turn's events into a :data:`Reply`. It holds
no database, provider, Redis or framework objects: what it needs from elsewhere (a lookup) it
is handed in the :class:`Inbound`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from accounts.callers import Caller
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError, error_body, failed_turn_status, retry_after_headers
from conversations.errors import TurnRejected
from conversations.events import TurnEvent
from conversations.turns.request import SESSION_KEY_LENGTH

__all__ = ["SESSION_KEY_LENGTH"]  # read here by the codecs


def mount_session_key(mount: str, client_id: str | None, *, field: str = "session_id") -> str:
    """A seed mount's stored key for its client's conversation id: ``<mount>:<id>``, so one
    mount's ids never reach another's (or the native API's) conversations; no id, a new one."""
    if not client_id:
        return f"{mount}:{uuid.uuid4().hex}"
    limit = SESSION_KEY_LENGTH - len(mount) - 1
    if len(client_id) > limit:
        raise HttpError(422, "invalid_input", f"{field} must be at most {limit} characters.", field=field)
    return f"{mount}:{client_id}"


def required_text(field: Field, name: str) -> str:
    """A required string field that is not blank (422 naming the protocol's own field otherwise)."""
    value = field.str(name, required=True) or ""
    if not value.strip():
        raise HttpError(422, "invalid_input", f"{name} is empty: send a non-empty string.", field=name)
    return value


class SessionForAnswer(Protocol):
    def __call__(
        self, *, owner_id: int | None, message_id: str, key_prefix: str
    ) -> Awaitable[str | None]: ...


@dataclass(frozen=True, slots=True)
class Inbound:
    """A request as a codec sees it: headers (case-insensitive), the JSON body, path parameters,
    the authenticated caller, when it arrived (Unix seconds), and the lookups it may need."""

    headers: Mapping[str, str]
    body: dict[str, Any]
    caller: Caller
    params: Mapping[str, str]
    received_at: float
    session_for_answer: SessionForAnswer | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """A started turn as the pipeline hands it to the codec: its answer's id and its events."""

    message_id: str | None
    events: AsyncIterator[TurnEvent]


@dataclass(frozen=True, slots=True)
class JsonReply:
    body: Any
    status: int = 200
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class StreamReply:
    """Frames written as they come (empty ones skipped), with no caching or proxy buffering."""

    frames: AsyncIterator[bytes]
    content_type: str
    headers: Mapping[str, str] | None = None  # beside the streaming headers (a protocol's own)


Reply = JsonReply | StreamReply


class Codec(Protocol):
    async def decode(self, inbound: Inbound) -> Any:
        """A ``TurnRequest`` (or what the route's ``start`` takes instead); ``HttpError`` when bad."""

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> Reply:
        """The refusal as the protocol's clients expect it (``inbound`` is ``None`` when the request
        was refused before it could be decoded)."""

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        """The started turn's reply: its events encoded, or collected into one JSON answer."""


def error_reply(error: HttpError | TurnRejected) -> JsonReply:
    """The native JSON error of a refused request, with ``Retry-After`` when there is a wait."""
    headers = retry_after_headers(error.details.get("retry_after"))
    return JsonReply(error_body(error.code, error.message, **error.details), error.status, headers)


def failed_turn_reply(error: Mapping[str, Any], **extra: Any) -> JsonReply:
    """A turn that ended without an answer, for the JSON (non-streamed) endpoints."""
    status = failed_turn_status(error["code"])
    headers = retry_after_headers(error.get("retry_after"))
    return JsonReply(error_body(error["code"], error["message"], **extra), status, headers)


async def encoded(
    events: AsyncIterator[TurnEvent], encode: Callable[[TurnEvent], bytes]
) -> AsyncIterator[bytes]:
    """The encoder's bytes for each event (an empty result writes nothing)."""
    async for event in events:
        yield encode(event)


async def frames_of(frames: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Frames known in advance (a greeting, a fallback) as a stream."""
    for frame in frames:
        yield frame


async def collect(events: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in events]
