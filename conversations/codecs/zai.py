"""The Z.AI seed's protocol (``POST /api/chat``): decoding, OpenAI-style frames as Python's
``json.dumps`` writes them, errors in the seed's statuses. The contract and what we chose where the
seed is silent are in :mod:`conversations.dialects.zai`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.messages import INVALID, read_messages
from conversations.codecs.request_fields import check_tools
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError, retry_after_headers
from conversations.errors import TurnRejected
from conversations.events import Completed, Delta, Failed, TurnEvent
from conversations.events import Started as TurnStarted
from conversations.turns.request import TurnRequest
from conversations.wire.openai_chat import chat_completion
from conversations.wire.sse import CONTENT_TYPE, sse_frame
from conversations.wire.summary import summarize_turn

NAME = "zai"
DEFAULT_PROVIDER = "zai"
DONE = sse_frame(b'{"data": "[DONE]"}')
MISSING_KEY = "ZAI_API_KEY is required: set it to your Z.AI API key (format id.secret) and restart."
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 2048
ROLES = {"system": "system", "user": "user", "assistant": "assistant"}


# --- encoding ------------------------------------------------------------------------------------
def data_frame(payload: dict[str, Any]) -> bytes:
    return sse_frame(json.dumps(payload))


class ZaiChunkEncoder:
    """One per streamed response; ``model`` is taken from the ``started`` event unless given."""

    def __init__(self, *, created: int, model: str | None = None) -> None:
        self.created, self.model = created, model

    def encode(self, event: TurnEvent) -> bytes:
        if isinstance(event, TurnStarted):
            self.model = self.model or event.model
        elif isinstance(event, Delta):
            delta = {"choices": [{"delta": {"content": event.text}}], "model": self.model}
            return data_frame({**delta, "created": self.created})
        elif isinstance(event, Completed):
            return DONE
        elif isinstance(event, Failed):
            return data_frame({"error": {"code": event.code, "message": event.message}}) + DONE
        return b""


# --- decoding ------------------------------------------------------------------------------------
def invalid(problems: list[dict[str, str]], code: str = "invalid_messages") -> HttpError:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return HttpError(400, code, f"Invalid messages: {summary}.", details=problems)


def parse_messages(raw: Any):
    """The request's messages, or a 400 listing every problem."""
    parsed = read_messages(raw, text_parts=False, roles=ROLES)
    problems = [problem.to_dict() for problem in parsed.problems]
    unsupported = [p.code for p in parsed.problems if p.code != INVALID]
    last = parsed.last
    if not problems and (last is None or last.role != "user" or not last.content.strip()):
        problems.append({"field": "messages", "message": "the last message must be a non-empty user message"})
    if problems:  # a tool or attachment is named by its own code, the list keeps every problem
        raise invalid(problems, unsupported[0] if unsupported else "invalid_messages")
    return parsed


class ZaiCodec:
    """``provider()`` is the mount's provider (``zai`` unless ``COMPAT_ZAI_PROVIDER``); ``model()``
    its default model."""

    def __init__(self, provider: Callable[[], str], model: Callable[[], str | None]) -> None:
        self.provider, self.model = provider, model

    async def decode(self, inbound: Inbound) -> TurnRequest:
        field = Field(inbound.body)
        field.bool("stream", default=True)  # checked now: the reply reads it
        check_tools(inbound.body)  # 400 tools_not_supported: zai-sdk would have called them
        parsed = parse_messages(inbound.body.get("messages"))
        temperature, max_tokens = field.number("temperature"), field.int("max_tokens")
        return TurnRequest(
            session_key=base.mount_session_key(
                NAME, inbound.headers.get("X-Session-Id"), field="X-Session-Id"
            ),
            content=parsed.messages[-1].content,
            owner_id=inbound.caller.owner_id,
            provider=self.provider(),
            model=field.str("model") or self.model(),
            system=parsed.system,
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            context=parsed.messages,
            rate_limit_key=inbound.caller.rate_limit_key,
            api_key_id=inbound.caller.api_key_id,
        )

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        """Our errors in the seed's statuses: any input error is 400, a missing key is 500."""
        status, message = error.status, error.message
        if status == 422:
            status = 400
        if error.code == "provider_not_configured":
            status = 500
            message = MISSING_KEY if self.provider() == DEFAULT_PROVIDER else message
        headers = retry_after_headers(error.details.get("retry_after"))
        return JsonReply(base.error_body(error.code, message, **error.details), status, headers)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        created = int(inbound.received_at)
        if Field(inbound.body).bool("stream", default=True):
            return StreamReply(
                base.encoded(started.events, ZaiChunkEncoder(created=created).encode), CONTENT_TYPE
            )
        summary = summarize_turn(await base.collect(started.events))
        if summary["error"] is not None:
            return base.failed_turn_reply(summary["error"])
        completion_id = f"chatcmpl-{(started.message_id or '').replace('-', '')}"
        return JsonReply(
            chat_completion(summary, completion_id=completion_id, model=summary["model"], created=created)
        )
