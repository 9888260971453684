"""The OpenAI Responses protocol (``POST /v1/responses``): the official SDKs work unchanged.

A response is one ordinary stored turn; its id is its answer's (``resp_<answer id hex>``).
Without ``previous_response_id`` it opens a new session (``resp-<hex>``); with one it continues
that answer's session from that answer (``reply_to``: any earlier answer of the caller, a branch
when it is not the newest). ``instructions`` (and system or developer input items) are the
session's system prompt. ``input`` is a string or items (:mod:`conversations.codecs.openai_response_input`);
several, without ``previous_response_id``, are the client's own transcript (as with chat
completions). ``store: false`` is refused: every response here is stored. Errors are OpenAI's
shape. A field this server cannot honour (a non-function tool, an ``input_audio`` part,
``reasoning``…) is refused with 422 naming it, never ignored (:mod:`conversations.codecs.request_fields`).
A user message's ``input_image`` and ``input_file`` parts are its files: the last user message's
are the turn's (:attr:`TurnRequest.attachments`), an earlier one's stay in the transcript.

Client tools as OpenAI does them: ``tools`` (flat function tools), ``tool_choice`` and
``parallel_tool_calls`` are offered to the model; an answer that calls tools is ``completed`` with
``function_call`` output items (:mod:`conversations.wire.openai_responses`). The client runs them
and sends ``function_call_output`` items: with ``previous_response_id`` only those (a ``tool``
message continuing that answer, checked against its calls by the turn core), or without it its
whole transcript with the ``function_call`` items before them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.openai_metadata import read_metadata
from conversations.codecs.openai_response_input import read_input
from conversations.codecs.request_fields import RESPONSES
from conversations.codecs.tools import read_tool_choice, read_tools
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError, retry_after_headers
from conversations.errors import TurnRejected
from conversations.turns.request import TurnRequest
from conversations.wire.openai_response_events import ResponseEventEncoder
from conversations.wire.openai_response_store import response_shell
from conversations.wire.openai_responses import (
    AnswerState,
    answer_state,
    message_id_of,
    response_id,
    response_object,
    summary_calls,
)
from conversations.wire.sse import CONTENT_TYPE
from conversations.wire.summary import summarize_turn
from providers.base import ToolSpec
from providers.defaults import split_model


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
        previous, reply_to = field.str("previous_response_id"), None
        parsed = read_input(body.get("input"), continued=bool(previous))
        tools, tool_choice, parallel = read_tool_fields(body, field)
        system = list(parsed.system)
        if instructions is not None:
            system.insert(0, instructions)
        messages = parsed.messages
        if not messages or messages[-1].role not in ("user", "tool"):
            raise HttpError(
                422,
                "invalid_input",
                "the last input item must be a user message, or the function_call_output items of the "
                "calls before them.",
                field="input",
            )
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
            session_key = key
        last = messages[-1]
        provider, model = split_model(field.str("model"))
        request = TurnRequest(
            session_key=session_key,
            content=last.content,
            owner_id=owner_id,
            client_message_id=inbound.headers.get("Idempotency-Key"),
            provider=provider,
            model=model,
            system="\n\n".join(system) if system else None,
            temperature=field.number("temperature"),
            max_tokens=field.int("max_output_tokens"),
            # the new message's files are given apart (checked, stored and shown with it)
            context=(*messages[:-1], replace(last, attachments=())) if len(messages) > 1 else None,
            attachments=last.attachments,
            reply_to=reply_to,
            rate_limit_key=inbound.caller.rate_limit_key,
            api_key_id=inbound.caller.api_key_id,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel,
            tool_results=last.tool_results,
        )
        items = parsed.items
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
            calls=summary_calls(summary.get("tool_calls")),
        )
        return JsonReply(response_object(shell, state))


def read_tool_fields(
    body: dict[str, Any], field: Field
) -> tuple[tuple[ToolSpec, ...], str | dict[str, str] | None, bool | None]:
    """``tools`` (flat), ``tool_choice`` and ``parallel_tool_calls``; without tools the choice
    ``none``/``auto`` and the flag ask for nothing (``required`` or a named tool is refused by the
    turn core: there is nothing to call)."""
    tools = read_tools(body.get("tools"), "flat")
    tool_choice = read_tool_choice(body.get("tool_choice"), "flat")
    parallel = field.bool("parallel_tool_calls") if body.get("parallel_tool_calls") is not None else None
    if not tools:
        return (), None if tool_choice in ("none", "auto") else tool_choice, None
    return tools, tool_choice, parallel


def _shown_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": spec.name,
        "description": spec.description or None,
        "parameters": dict(spec.parameters) or None,
        "strict": spec.strict,
    }


def shell_options(inbound: Inbound) -> dict[str, Any]:
    """What a response shows back of its request (stored with its answer for later reads)."""
    body, field = inbound.body, Field(inbound.body)
    tools, tool_choice, parallel = read_tool_fields(body, field)
    return {
        "created_at": int(inbound.received_at),
        "model": split_model(field.str("model"))[1],
        "instructions": field.str("instructions"),
        "metadata": field.object("metadata") or {},
        "temperature": field.number("temperature"),
        "max_output_tokens": field.int("max_output_tokens"),
        "background": field.bool("background"),
        "previous_response_id": field.str("previous_response_id"),
        "tools": [_shown_tool(spec) for spec in tools],
        "tool_choice": {"type": "function", **tool_choice}
        if isinstance(tool_choice, dict)
        else tool_choice or "auto",
        "parallel_tool_calls": parallel is not False,
    }
