"""The 004 chat API's protocol (``POST /api/chat/stream``): decoding, frames, errors.

``{"message", "previous_response_id"?}`` in; SSE ``event: delta`` / ``data: <text>`` per line of
the answer as its page shows it, then ``event: done`` / ``data: <response id>`` (or ``event:
error`` / ``data: <message>``). The contract and what we chose where the seed is silent are in
:mod:`conversations.dialects.chat_api`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.events import Completed, Delta, Failed, TurnEvent
from conversations.turns.request import TurnRequest
from conversations.wire.sse import CONTENT_TYPE, sse_frame

NAME = "chat-api"
SYSTEM_PROMPT = "You are a helpful assistant. Be concise."
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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


class ChatApiCodec:
    """``choice()`` gives the mount's ``(provider, model, rate limit)`` at each request (settings)."""

    def __init__(self, choice: Callable[[], tuple[str | None, str | None, str]]) -> None:
        self.choice = choice

    async def decode(self, inbound: Inbound) -> TurnRequest:
        field = Field(inbound.body)
        message = field.str("message", required=True) or ""
        if not message.strip():
            raise HttpError(
                422, "invalid_input", "message is empty: send a non-empty string.", field="message"
            )
        key = await self.conversation_of(inbound, field.str("previous_response_id"))
        provider, model, rate_limit = self.choice()
        return TurnRequest(
            session_key=key,
            content=message,
            owner_id=inbound.caller.owner_id,
            provider=provider,
            model=model,
            system=SYSTEM_PROMPT,
            rate_limit_key=f"{NAME}:{inbound.caller.rate_limit_key}",
            api_key_id=inbound.caller.api_key_id,
            rate_limit=rate_limit,
        )

    async def conversation_of(self, inbound: Inbound, previous_response_id: str | None) -> str:
        """No id: a new conversation; an id we handed out: its conversation; else 404."""
        if previous_response_id is None:
            return f"{NAME}:{uuid.uuid4().hex}"
        assert inbound.session_for_answer is not None
        key = await inbound.session_for_answer(
            owner_id=inbound.caller.owner_id, message_id=previous_response_id, key_prefix=f"{NAME}:"
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

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        return base.error_reply(error)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        return StreamReply(base.encoded(started.events, ChatApiEncoder().encode), CONTENT_TYPE)
