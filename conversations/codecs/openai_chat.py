"""The OpenAI Chat Completions protocol (``POST /v1/chat/completions``): the official SDKs work unchanged.

The session is named by the ``X-Session-Id`` header or the ``user`` field (a new session per
request otherwise); ``Idempotency-Key`` makes a retried request replay instead of calling the
provider again. ``model`` may be ``provider:model`` (``gemini:gemini-2.5-flash``), a model of the
default provider, or an alias. The client's ``messages`` are the context. Streamed, the reply is
``chat.completion.chunk`` frames ending with ``[DONE]``; otherwise one ``chat.completion``.
Errors are OpenAI's shape (``type``, ``param``) inside ours. A field this server cannot honour
(the legacy ``functions``, an audio part, ``n: 2``…) is refused with 422 naming it, never ignored
(:mod:`conversations.codecs.request_fields`).

Images and files (docs/attachments.md) are a user message's content parts, as OpenAI takes them:
``image_url`` (a data URL or an https URL, ``detail``) and ``file`` (``file_data``, a data URL, with
its ``filename``; or ``file_id``: the id ``POST /api/attachments`` returned). The last user
message's files are the turn's (:attr:`TurnRequest.attachments`: checked, stored and shown with the
message); an earlier message's files stay in the transcript (``context``) the model is sent.

Client tools work as on OpenAI: ``tools``, ``tool_choice`` and ``parallel_tool_calls`` are offered
to the model, an answer may end with ``tool_calls`` (``finish_reason: "tool_calls"``), and the
client runs them and sends the whole transcript again ending with one ``tool`` message per call.
Those trailing results are the turn's new message (a ``tool`` message in the session, answering
the stored calls when ``X-Session-Id``/``user`` names one); the transcript is the context.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.messages import read_messages
from conversations.codecs.openai_metadata import read_metadata
from conversations.codecs.request_fields import CHAT_COMPLETIONS
from conversations.codecs.tools import read_tool_choice, read_tools
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.turns.request import TurnRequest
from conversations.wire.openai_chat import ChatChunkEncoder, chat_completion
from conversations.wire.sse import CONTENT_TYPE
from conversations.wire.summary import summarize_turn
from providers.defaults import split_model

RESPONSE_FORMATS = ("text", "json_object", "json_schema")


def openai_error(status: int, code: str, message: str, param: str | None = None) -> JsonReply:
    kind = "invalid_request_error" if status < 500 else "api_error"
    return JsonReply(base.error_body(code, message, type=kind, param=param), status)


class OpenAIChatCodec:
    async def decode(self, inbound: Inbound) -> TurnRequest:
        body, headers = inbound.body, inbound.headers
        field = Field(body)
        CHAT_COMPLETIONS.check(body)
        read_metadata(field)  # not stored here, but held to OpenAI's limits as OpenAI holds it
        parsed = read_messages(body.get("messages"), tools=True, attachments=True)
        if parsed.problems:
            problem = parsed.problems[0]
            where = "messages" if problem.code == "invalid_input" else problem.field
            raise HttpError(422, problem.code, problem.sentence(), field=where)
        last = parsed.last
        if last is None or last.role not in ("user", "tool"):
            raise HttpError(
                422,
                "invalid_input",
                "the last message must have role user, or be the tool results of the calls before it.",
                field="messages",
            )
        tools = read_tools(body.get("tools"), "nested")
        tool_choice = read_tool_choice(body.get("tool_choice"), "nested")
        parallel_tool_calls = (  # absent: the model's default (parallel), not false
            field.bool("parallel_tool_calls") if body.get("parallel_tool_calls") is not None else None
        )
        if not tools:  # nothing offered: these ask for nothing (required or a named tool is refused)
            parallel_tool_calls = None
            tool_choice = None if tool_choice in ("none", "auto") else tool_choice
        provider, model = split_model(field.str("model"))
        field.bool("stream"), field.object("stream_options")  # checked now: the reply reads them
        response_format = field.object("response_format") or {}
        if response_format and response_format.get("type") not in RESPONSE_FORMATS:
            raise HttpError(
                422,
                "invalid_input",
                "response_format.type must be text, json_object or json_schema.",
                field="response_format",
            )
        json_schema = response_format.get("json_schema")
        schema = json_schema.get("schema") if isinstance(json_schema, dict) else None
        session_key = headers.get("X-Session-Id") or field.str("user") or f"openai-{uuid.uuid4().hex}"
        return TurnRequest(
            session_key=session_key[:128],
            content=last.content,
            owner_id=inbound.caller.owner_id,
            client_message_id=headers.get("Idempotency-Key"),
            provider=provider,
            model=model,
            system=parsed.system,
            temperature=field.number("temperature"),
            max_tokens=field.int("max_completion_tokens") or field.int("max_tokens"),
            json_output=response_format.get("type") in ("json_object", "json_schema"),
            json_schema=schema if isinstance(schema, dict) else None,
            # ending with the new message (the user's, its files given apart; or the tool results)
            context=(*parsed.messages[:-1], replace(last, attachments=())),
            attachments=last.attachments,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            tool_results=last.tool_results,
            rate_limit_key=inbound.caller.rate_limit_key,
            api_key_id=inbound.caller.api_key_id,
        )

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        return openai_error(error.status, error.code, error.message, param=error.details.get("field"))  # type: ignore[arg-type]

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        field = Field(inbound.body)
        completion_id = f"chatcmpl-{(started.message_id or '').replace('-', '')}"
        created = int(inbound.received_at)
        if field.bool("stream"):
            include_usage = bool((field.object("stream_options") or {}).get("include_usage"))
            model = split_model(field.str("model"))[1] or "default"
            encoder = ChatChunkEncoder(
                completion_id=completion_id, model=model, created=created, include_usage=include_usage
            )
            return StreamReply(base.encoded(started.events, encoder.encode), CONTENT_TYPE)
        summary = summarize_turn(await base.collect(started.events))
        error = summary.get("error")
        if error is not None:
            return base.failed_turn_reply(error, type="api_error")
        return JsonReply(
            chat_completion(summary, completion_id=completion_id, model=summary["model"], created=created)
        )
