"""The native turn protocol: ``POST /api/sessions/{key}/messages`` (and its edit and regenerate)
answered as SSE, NDJSON or one JSON object, as ``Accept`` asks.

Body: ``content`` (not needed to regenerate), ``client_message_id``, ``provider``, ``model``,
``system``, ``temperature``, ``max_tokens``, ``json`` / ``json_schema``, and client tools:
``tools`` (the flat shape ``{name, description?, parameters?, strict?}``), ``tool_choice``,
``parallel_tool_calls``. A ``role: "tool"`` message carries ``parts`` (``tool_result`` parts, one
per call of the answer it follows) instead of ``content``. Every event is one SSE
frame (``id:`` seq, ``event:`` type, ``data:`` its JSON) or one NDJSON line; the JSON reply is the
turn's summary, with the status of its ending (see docs/api.md). Any other field is refused with
422 naming it (:mod:`conversations.codecs.request_fields`): nothing a client sends is ignored.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.request_fields import NATIVE, UNSUPPORTED
from conversations.codecs.tools import read_tool_choice, read_tool_result, read_tools
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError, failed_turn_status, retry_after_headers
from conversations.errors import TurnRejected
from conversations.turns.request import TurnRequest
from conversations.wire import ndjson, sse
from conversations.wire.summary import summarize_turn
from providers.base import InputFile, ToolResult
from providers.defaults import split_model

ROLES = ("user", "tool")


def negotiate(accept: str) -> str:
    if "text/event-stream" in accept:
        return "sse"
    if "application/x-ndjson" in accept or "application/jsonl" in accept:
        return "ndjson"
    return "json"


def turn_request_from_body(body: dict, session_key: str, owner_id: int | None, **branch: str) -> TurnRequest:
    """``branch`` is ``edit_of=<id>`` or ``regenerate_of=<id>`` (which needs no content)."""
    NATIVE.check(body)
    if "regenerate_of" in branch and body.get("content") is not None:
        raise HttpError(
            422,
            UNSUPPORTED,
            "content is not read by regenerate (the same message is answered again): leave it out, "
            "or edit the message to send new text.",
            field="content",
        )
    field = Field(body)
    json_schema = field.object("json_schema")
    provider, model = split_model(field.str("model"), field.str("provider"))  # GET /v1/models' ids too
    results = tool_results_from_body(body)
    files = attachments_from_body(body)
    required = "regenerate_of" not in branch and not files
    return TurnRequest(
        session_key=session_key,
        content="" if results else field.str("content", required=required) or "",
        owner_id=owner_id,
        client_message_id=field.str("client_message_id"),
        provider=provider,
        model=model,
        system=field.str("system"),
        temperature=field.number("temperature"),
        max_tokens=field.int("max_tokens"),
        json_output=field.bool("json") or json_schema is not None,
        json_schema=json_schema,
        tools=read_tools(body.get("tools"), "flat"),
        tool_choice=read_tool_choice(body.get("tool_choice"), "flat"),
        parallel_tool_calls=body.get("parallel_tool_calls"),  # None: the provider's default
        tool_results=results,
        attachments=files,
        **branch,
    )


def attachments_from_body(body: dict) -> tuple[InputFile, ...]:
    """A user message's ``attachments``: the ids of uploads (``POST /api/attachments``), in order;
    what each is, and whether the caller may send it, the turn service checks."""
    raw = body.get("attachments")
    if raw is None:
        return ()
    if body.get("role") == "tool":
        raise HttpError(
            422,
            "invalid_input",
            "A tool message carries only tool results: send attachments with a user message.",
            field="attachments",
        )
    if not isinstance(raw, list) or not raw:
        raise HttpError(
            422,
            "invalid_input",
            "attachments must be a non-empty list of attachment ids.",
            field="attachments",
        )
    files = []
    for n, item in enumerate(raw):
        try:
            files.append(InputFile("", ref=str(uuid.UUID(item))) if isinstance(item, str) else None)
        except ValueError:
            files.append(None)
        if files[-1] is None:
            raise HttpError(
                422,
                "invalid_input",
                f"attachments[{n}] must be an attachment id (a UUID from POST /api/attachments).",
                field=f"attachments[{n}]",
            )
    if len({file.ref for file in files}) != len(files):
        raise HttpError(422, "invalid_input", "attachments names one attachment twice.", field="attachments")
    return tuple(files)


def tool_results_from_body(body: dict) -> tuple[ToolResult, ...]:
    """A ``role: "tool"`` message's results, read from its ``parts``; ``()`` for a user message.

    A tool message is its parts: ``content`` beside them would be dropped, so it is refused; a user
    message takes text only, so ``parts`` on it is refused (each a 422 naming the field)."""
    role = "user" if body.get("role") is None else body["role"]  # JSON null is an absent field
    if role not in ROLES:
        raise HttpError(
            422,
            "invalid_input",
            f"role must be user (a message, the default) or tool (the results of the answer's tool "
            f"calls), not {role!r}.",
            field="role",
        )
    parts = body.get("parts")
    if role == "user":
        if parts is not None:
            raise HttpError(
                422,
                "invalid_input",
                'parts are read only from a tool message: send role "tool" with tool_result parts, '
                "or send a user message as content.",
                field="parts",
            )
        return ()
    if body.get("content") is not None:
        raise HttpError(
            422,
            "invalid_input",
            "A tool message carries its results in parts, not content: leave content out and send "
            '[{"type": "tool_result", "call_id": …, "output": …}] in parts.',
            field="content",
        )
    if not isinstance(parts, list) or not parts:
        raise HttpError(
            422,
            "invalid_input",
            'A tool message needs parts: one {"type": "tool_result", "call_id": …, "output": …} for '
            "each call of the answer it follows.",
            field="parts",
        )
    return tuple(read_tool_result(item, f"parts[{n}]", "parts") for n, item in enumerate(parts))


def whole_turn_reply(summary: dict) -> JsonReply:
    """The summary, with the status of the turn's ending (499 when the client went away)."""
    error = summary.get("error")
    if error is None:
        return JsonReply(summary)
    status = failed_turn_status(error["code"])
    if summary.get("status") == "interrupted":
        status = 499 if error["code"] == "disconnected" else 200
    return JsonReply(summary, status, retry_after_headers(error.get("retry_after")))


class NativeCodec:
    """``branch``: ``None`` for a new message, ``"edit_of"`` or ``"regenerate_of"`` (the path's
    ``message_id`` names the message)."""

    def __init__(self, branch: str | None = None) -> None:
        self.branch = branch

    async def decode(self, inbound: Inbound) -> TurnRequest:
        branch = {self.branch: inbound.params["message_id"]} if self.branch else {}
        request = turn_request_from_body(
            inbound.body, inbound.params["session_key"], inbound.caller.owner_id, **branch
        )
        caller = inbound.caller
        return replace(request, rate_limit_key=caller.rate_limit_key, api_key_id=caller.api_key_id)

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        return base.error_reply(error)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        fmt = negotiate(inbound.headers.get("Accept", ""))
        if fmt == "sse":
            return StreamReply(base.encoded(started.events, sse.encode_sse), sse.CONTENT_TYPE)
        if fmt == "ndjson":
            return StreamReply(base.encoded(started.events, ndjson.encode_ndjson), ndjson.CONTENT_TYPE)
        return whole_turn_reply(summarize_turn(await base.collect(started.events)))
