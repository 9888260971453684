"""The 001 coding agent's protocol (``POST /api/chat/stream``): decoding, NDJSON lines, errors.

``{"session_id", "messages"}`` in; ``{"type":"token","content"}`` lines, then ``{"type":"complete",
"content","artifact"}`` or ``{"type":"error","error","message"}``. The contract and what we chose
where the seed is silent are in :mod:`conversations.dialects.coding_agent`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.messages import read_messages
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.events import ArtifactReady, Completed, Delta, Failed, TurnEvent
from conversations.events import Started as TurnStarted
from conversations.turns.request import TurnRequest

NAME = "coding-agent"
CONTENT_TYPE = "application/x-ndjson"
SESSION_ID_LENGTH = 128 - len(NAME) - 1


def line(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload) + b"\n"


class CodingAgentEncoder:
    """One per response: remembers the provider and the first artifact for the closing line."""

    def __init__(self) -> None:
        self.provider = ""
        self.artifact: dict[str, str | None] | None = None

    def encode(self, event: TurnEvent) -> bytes:
        if isinstance(event, TurnStarted):
            self.provider = event.provider
        elif isinstance(event, Delta):
            return line({"type": "token", "content": event.text})
        elif isinstance(event, ArtifactReady):
            if self.artifact is None:
                self.artifact = {"language": event.language or None, "code": event.content.strip()}
        elif isinstance(event, Completed):
            return line({"type": "complete", "content": event.content, "artifact": self.artifact})
        elif isinstance(event, Failed):
            message = f"{self.provider}: {event.message}" if self.provider else event.message
            return line({"type": "error", "error": message, "message": message})
        return b""


def last_user_message(raw: Any) -> str:
    """The newest ``user`` message of ``messages`` (earlier ones are the client's copy of the history)."""
    parsed = read_messages(raw)
    if parsed.problems:  # a tool result or an image is refused by name, never dropped
        problem = parsed.problems[0]
        raise HttpError(422, problem.code, problem.sentence(), field="messages")
    users = [message.content for message in parsed.messages if message.role == "user"]
    if not users:
        raise HttpError(
            422, "invalid_input", 'messages must contain a message with role "user".', field="messages"
        )
    if not users[-1].strip():
        raise HttpError(
            422, "invalid_input", "the last user message must be a non-empty string.", field="messages"
        )
    return users[-1]


class CodingAgentCodec:
    """``choice()`` gives the mount's ``(provider, model)`` at each request (settings)."""

    def __init__(self, choice: Callable[[], tuple[str | None, str | None]]) -> None:
        self.choice = choice

    async def decode(self, inbound: Inbound) -> TurnRequest:
        field = Field(inbound.body)
        session_id = field.str("session_id")
        if session_id and len(session_id) > SESSION_ID_LENGTH:
            raise HttpError(
                422,
                "invalid_input",
                f"session_id must be at most {SESSION_ID_LENGTH} characters.",
                field="session_id",
            )
        provider, model = self.choice()
        return TurnRequest(
            session_key=f"{NAME}:{session_id or uuid.uuid4().hex}",
            content=last_user_message(inbound.body.get("messages")),
            owner_id=inbound.caller.owner_id,
            provider=provider,
            model=model,
            rate_limit_key=inbound.caller.rate_limit_key,
            api_key_id=inbound.caller.api_key_id,
        )

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        return base.error_reply(error)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        return StreamReply(base.encoded(started.events, CodingAgentEncoder().encode), CONTENT_TYPE)
