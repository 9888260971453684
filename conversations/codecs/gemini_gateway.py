"""The 000 gateway's protocol: ``/api/chat`` (JSON), ``/api/chat/stream`` (SSE text pieces),
``/api/structured`` (a JSON value). The contract and what we chose where the seed is silent are in
:mod:`conversations.dialects.gemini_gateway`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.events import Delta, Failed, TurnEvent
from conversations.turns.request import TurnRequest
from conversations.wire.sse import CONTENT_TYPE, sse_frame
from conversations.wire.summary import summarize_turn

NAME = "gemini-gateway"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant"
STRUCTURED_PREFIX = "Respond with valid JSON only. "


# --- encoding ------------------------------------------------------------------------------------
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


class GeminiGatewayCodec:
    """``endpoint``: ``chat``, ``stream`` or ``structured``. ``choice()`` gives the mount's
    ``(provider, model)``; ``forwarded(headers)`` the headers passed on to the provider."""

    def __init__(
        self,
        endpoint: str,
        choice: Callable[[], tuple[str | None, str]],
        forwarded: Callable[[Mapping[str, str]], dict[str, str]],
    ) -> None:
        self.endpoint, self.choice, self.forwarded = endpoint, choice, forwarded

    async def decode(self, inbound: Inbound) -> TurnRequest:
        field = Field(inbound.body)
        structured = self.endpoint == "structured"
        content = base.required_text(field, "prompt") if structured else base.required_text(field, "message")
        client_session = inbound.headers.get("X-Session-Id") or field.str("session_id")
        provider, model = self.choice()
        return TurnRequest(
            session_key=base.mount_session_key(NAME, client_session),
            content=STRUCTURED_PREFIX + content if structured else content,
            owner_id=inbound.caller.owner_id,
            provider=provider,
            model=model,
            system=field.str("system_prompt"),
            system_default=DEFAULT_SYSTEM_PROMPT,
            json_output=structured,
            extra_headers=self.forwarded(inbound.headers),
            rate_limit_key=inbound.caller.rate_limit_key,
            api_key_id=inbound.caller.api_key_id,
        )

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        return base.error_reply(error)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        if self.endpoint == "stream":
            return StreamReply(base.encoded(started.events, encode_event), CONTENT_TYPE)
        summary = summarize_turn(await base.collect(started.events))
        if summary["error"] is not None:
            return base.failed_turn_reply(summary["error"])
        if self.endpoint == "structured":
            return JsonReply(orjson.loads(summary["content"]))
        return JsonReply({"reply": summary["content"]})
