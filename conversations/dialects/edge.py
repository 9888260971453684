"""What every dialect edge shares: namespaced session keys, per-dialect settings, responses.

* Session keys are ``<dialect>:<client id>``, so a ``session_id`` of one seed's client never
  continues another seed's (or the native API's) conversation; no client id → a fresh
  conversation for this request, as the stateless seeds behave.
* ``COMPAT_<DIALECT>_PROVIDER`` / ``COMPAT_<DIALECT>_MODEL`` (``<DIALECT>`` is the name in upper
  case with ``_`` for ``-``) pick the provider and model of a dialect's turns; empty means the
  dialect's default (``LLM_PROVIDER`` and the provider's default model unless the dialect says).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse

from conversations.edge.bodies import Field
from conversations.edge.errors import HttpError, failed_turn_status, json_error, retry_after_headers
from conversations.events import TurnEvent
from conversations.wire.sse import STREAM_HEADERS

SESSION_KEY_LENGTH = 128


def dialect_variable(dialect: str, name: str) -> str:
    """The name of a dialect's setting: ``COMPAT_<DIALECT>_<NAME>`` (``-`` as ``_``)."""
    return f"COMPAT_{dialect.upper().replace('-', '_')}_{name}"


def dialect_setting(dialect: str, name: str, default: str = "") -> str:
    """``COMPAT_<DIALECT>_<NAME>`` from settings, or ``default`` when unset or empty."""
    value = getattr(settings, dialect_variable(dialect, name), None)
    return default if value is None or value == "" else str(value)


def session_key(dialect: str, client_id: str | None, *, field: str = "session_id") -> str:
    """The stored session key for a client's conversation id (``None``/empty: a new conversation)."""
    if not client_id:
        return f"{dialect}:{uuid.uuid4().hex}"
    limit = SESSION_KEY_LENGTH - len(dialect) - 1
    if len(client_id) > limit:
        raise HttpError(422, "invalid_input", f"{field} must be at most {limit} characters.", field=field)
    return f"{dialect}:{client_id}"


def required_text(field: Field, name: str) -> str:
    """A required string field that is not blank (422 naming the dialect's own field otherwise)."""
    value = field.str(name, required=True) or ""
    if not value.strip():
        raise HttpError(422, "invalid_input", f"{name} is empty: send a non-empty string.", field=name)
    return value


def session_prefix(dialect: str) -> str:
    return f"{dialect}:"


async def collect(events: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in events]


async def encoded(
    events: AsyncIterator[TurnEvent], encode: Callable[[TurnEvent], bytes]
) -> AsyncIterator[bytes]:
    """The encoder's bytes for each event, skipping events the wire format does not show."""
    async for event in events:
        data = encode(event)
        if data:
            yield data


async def frames_of(frames: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Frames known in advance (a greeting, a fallback) as an async stream."""
    for frame in frames:
        yield frame


def stream_response(frames: AsyncIterator[bytes], content_type: str) -> StreamingHttpResponse:
    return StreamingHttpResponse(frames, content_type=content_type, headers=STREAM_HEADERS)


def failed_turn_response(error: dict[str, Any]) -> JsonResponse:
    """A turn that ended without an answer, for the JSON (non-streamed) endpoints."""
    headers = retry_after_headers(error.get("retry_after"))
    return json_error(failed_turn_status(error["code"]), error["code"], error["message"], headers=headers)
