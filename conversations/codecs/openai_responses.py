"""The OpenAI Responses protocol (``POST /v1/responses``): the official SDKs work unchanged.

A response is one ordinary stored turn; its id is its answer's (``resp_<answer id hex>``).
Without ``previous_response_id`` it opens a new session (``resp-<hex>``); with one it continues
that answer's session from that answer (``reply_to``: any earlier answer of the caller, a branch
when it is not the newest). ``instructions`` (and system or developer input items) are the
session's system prompt. ``input`` is a string or message items with text; several messages,
without ``previous_response_id``, are the client's own transcript (as with chat completions).
``store: false`` is refused: every response here is stored. Errors are OpenAI's shape. A field
this server cannot honour (``tools``, an ``input_image`` part, ``reasoning``…) is refused with 422
naming it, never ignored (:mod:`conversations.codecs.request_fields`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.openai_metadata import read_metadata
from conversations.codecs.request_fields import ATTACHMENT_PARTS, ATTACHMENTS, RESPONSES, TOOLS, tool_item
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError, retry_after_headers
from conversations.errors import TurnRejected
from conversations.turns.request import TurnRequest
from conversations.wire.openai_response_store import response_shell
from conversations.wire.openai_responses import (
    AnswerState,
    ResponseEventEncoder,
    answer_state,
    message_id_of,
    response_id,
    response_object,
)
from conversations.wire.sse import CONTENT_TYPE
from conversations.wire.summary import summarize_turn
from providers.base import ChatMessage
from providers.defaults import split_model

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TEXT_PARTS = ("input_text", "output_text", "text")


def responses_error(
    status: int, code: str, message: str, param: str | None = None, retry_after: float | None = None
) -> JsonReply:
    """OpenAI's error shape, so the SDKs raise their own class for the status."""
    kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "invalid_request_error")
    body = {
        "message": message,
        "type": kind if status < 500 else "server_error",
        "param": param,
        "code": code,
    }
    return JsonReply({"error": body}, status, retry_after_headers(retry_after))


@dataclass(frozen=True, slots=True)
class ResponsesTurn:
    """A decoded ``POST /v1/responses``: the turn, what its answer keeps of the request, and how it runs."""

    request: TurnRequest
    options: dict[str, Any]
    stream: bool
    background: bool

    @property
    def session_key(self) -> str:  # the pipeline checks the native API may reach it
        return self.request.session_key


def _item_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ATTACHMENT_PARTS:
                raise HttpError(
                    422,
                    ATTACHMENTS,
                    f"{where}.content[{n}] is {kind}: attachments are not supported yet; send input_text only.",
                    field="input",
                )
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") in TEXT_PARTS]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    raise HttpError(
        422, "invalid_input", f"{where}.content must be a string or input_text parts.", field="input"
    )


def read_input(raw: Any) -> list[dict[str, str]]:
    """``input`` as ``[{"role", "text"}]`` (roles as sent): a string is one user message."""
    if isinstance(raw, str):
        if not raw.strip():
            raise HttpError(422, "invalid_input", "input is empty: send a non-empty string.", field="input")
        return [{"role": "user", "text": raw}]
    if not isinstance(raw, list) or not raw:
        raise HttpError(
            422, "invalid_input", "input must be a string or a list of message items.", field="input"
        )
    items = []
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        if isinstance(item, dict) and tool_item(item.get("type")):
            raise HttpError(
                422,
                TOOLS,
                f"{where} is a {item['type']} item: tool calling is not supported yet; send message items only.",
                field="input",
            )
        if (
            not isinstance(item, dict)
            or item.get("type", "message") != "message"
            or item.get("role") not in ROLES
        ):
            raise HttpError(
                422,
                "invalid_input",
                f"{where} must be a message item with role user, assistant, system or developer.",
                field="input",
            )
        items.append({"role": item["role"], "text": _item_text(item.get("content"), where)})
    return items


class OpenAIResponsesCodec:
    async def decode(self, inbound: Inbound) -> ResponsesTurn:
        body, field, owner_id = inbound.body, Field(inbound.body), inbound.caller.owner_id
        RESPONSES.check(body)
        if not field.bool("store", True):
            raise HttpError(
                400,
                "store_unsupported",
                "store: false is not supported: every response here is stored as a conversation "
                "turn. Send store: true or leave it out.",
                field="store",
            )
        stream, background = field.bool("stream"), field.bool("background")
        instructions = field.str("instructions")
        read_metadata(field)
        items = read_input(body.get("input"))
        system = [i["text"] for i in items if ROLES[i["role"]] == "system"]
        if instructions is not None:
            system.insert(0, instructions)
        messages = tuple(
            ChatMessage(ROLES[i["role"]], i["text"]) for i in items if ROLES[i["role"]] != "system"
        )
        if not messages or messages[-1].role != "user":
            raise HttpError(
                422, "invalid_input", "the last input message must have role user.", field="input"
            )
        previous, reply_to = field.str("previous_response_id"), None
        session_key = f"resp-{uuid.uuid4().hex}"
        if previous:
            reply_to = message_id_of(previous)
            key = reply_to and await inbound.session_for_answer(  # type: ignore[misc]
                owner_id=owner_id, message_id=reply_to, key_prefix=""
            )
            if not key:
                raise HttpError(
                    404, "not_found", f"No response with id {previous!r}.", field="previous_response_id"
                )
            if len(messages) > 1:
                raise HttpError(
                    422,
                    "invalid_input",
                    "With previous_response_id, send only the new user message: the history is the stored one.",
                    field="input",
                )
            session_key = key
        provider, model = split_model(field.str("model"))
        request = TurnRequest(
            session_key=session_key,
            content=messages[-1].content,
            owner_id=owner_id,
            client_message_id=inbound.headers.get("Idempotency-Key"),
            provider=provider,
            model=model,
            system="\n\n".join(system) if system else None,
            temperature=field.number("temperature"),
            max_tokens=field.int("max_output_tokens"),
            context=messages if len(messages) > 1 else None,
            reply_to=reply_to,
            rate_limit_key=inbound.caller.rate_limit_key,
            api_key_id=inbound.caller.api_key_id,
        )
        options = {**shell_options(inbound), "input": items if len(items) > 1 else None}
        return ResponsesTurn(request, options, stream, background)

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        details = error.details
        return responses_error(
            error.status, error.code, error.message, details.get("field"), details.get("retry_after")
        )

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        field = Field(inbound.body)
        shell = response_shell(response_id(started.message_id or ""), shell_options(inbound))
        if field.bool("stream"):
            encoder = ResponseEventEncoder(shell)
            return StreamReply(
                base.encoded(started.events, lambda e: encoder.encode(e.to_dict())), CONTENT_TYPE
            )
        if field.bool("background"):
            return JsonReply(response_object(shell, AnswerState("queued")))
        summary = summarize_turn(await base.collect(started.events))
        error = summary.get("error")
        if error is not None and summary.get("status") == "failed":
            status = base.failed_turn_reply(error).status
            return responses_error(
                status, error["code"], error["message"], retry_after=error.get("retry_after")
            )
        state = answer_state(
            summary.get("status", "failed"),
            summary["content"],
            finish_reason=summary.get("finish_reason") or "",
            error_code=(error or {}).get("code", ""),
            error_message=(error or {}).get("message", ""),
            usage=summary["usage"],
            model=summary.get("model"),
        )
        return JsonReply(response_object(shell, state))


def shell_options(inbound: Inbound) -> dict[str, Any]:
    """What a response shows back of its request (stored with its answer for later reads)."""
    field = Field(inbound.body)
    return {
        "created_at": int(inbound.received_at),
        "model": split_model(field.str("model"))[1],
        "instructions": field.str("instructions"),
        "metadata": field.object("metadata") or {},
        "temperature": field.number("temperature"),
        "max_output_tokens": field.int("max_output_tokens"),
        "background": field.bool("background"),
        "previous_response_id": field.str("previous_response_id"),
    }
