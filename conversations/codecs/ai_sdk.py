"""The Vercel AI SDK chat protocol (``useChat``): its request body, decoded into a turn.

Body (``DefaultChatTransport`` over HTTP, or a ``send`` frame of ``WebSocketChatTransport``):
``{id, messages: UIMessage[], trigger: "submit-message" | "regenerate-message", messageId?}``
plus the app's own ``body`` fields: ``provider``, ``model`` (``provider:model`` too, as
``/v1/models`` lists them), ``system``, ``temperature``, ``max_tokens``, and ``tools``: the
client's tools as the SDK defines them, ``{name: {description?, inputSchema?}}`` (the JSON Schema
of the input), offered to the model; the client runs them.

``id`` (the chat) is the session key, per owner: the history API lists the chat's messages. The
server's stored history is the context (the client's ``messages`` only carry the new message, so
an app may send just the last one). ``submit-message`` sends the text parts of the last user
message (its UI id is the idempotency key: a retried request replays the stored answer); with a
``messageId`` naming a stored user message it is an edit, answered as a new branch.
``regenerate-message`` answers the same user message again, as a new branch: ``messageId`` (our
answer's id, which the stream's ``start`` gave the client) or else the last user message.

**Tool results** (``addToolResult`` / ``addToolOutput``, sent by ``sendAutomaticallyWhen:
lastAssistantMessageIsCompleteWithToolCalls``): ai 5 and ai 7 both send ``submit-message`` with
the assistant message that made the calls last (``messageId`` its id) and the results in its
tool parts (``tool-<name>`` or ``dynamic-tool``): ``state: "output-available"`` with ``output``
(a string as is, other JSON as its text) or ``"output-error"`` with ``errorText``. The parts of
its last step (after its last ``step-start``, the SDK's own rule) are the round's results: the
new message is a ``tool`` message of them (the turn core checks they answer the stored answer's
calls); the earlier steps' parts are stored already. The results make its idempotency key.

**Files** (docs/attachments.md): a user message's ``file`` parts, ``{"type": "file", "mediaType",
"filename"?, "url"}`` with ``url`` a data URL (what ``sendMessage({files})`` makes of a FileList)
or an https URL, are the new message's files, in order (the type sniffed from the bytes must agree
with ``mediaType``; ``image`` or ``image/*`` leave it to the bytes). A ``url`` that is a download
link the history gave (``/api/attachments/{id}/content``) sends that stored file again. ``providerReference`` (a file
uploaded to a provider by ai 7's ``uploadFile``) and ``providerMetadata`` are refused naming them
(``unsupported_parameter``): the server sends the file's bytes itself.

What the server cannot honour is refused with 422 naming it, never dropped: a tool approval or a
provider-executed tool (``tools_not_supported``:
the server runs no tools), a call of the last step still without its result, a body field it
does not know (``unsupported_parameter``). Other parts of a user message (``data-*``, sources,
``step-start``) are the app's: the SDK's own ``convertToModelMessages`` does not send them to a
model either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from conversations.codecs import base
from conversations.codecs.attachments import (
    PartError,
    download_ref,
    inline_file,
    read_attachment_id,
    read_filename,
)
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.request_fields import AI_SDK, TOOLS, TRIGGERS, UI_ID_LENGTH, UNSUPPORTED
from conversations.codecs.tools import output_text
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError
from conversations.errors import InvalidToolResults, TurnRejected
from conversations.turns.request import TurnRequest
from conversations.wire import ui_message
from providers.base import InputFile, ToolResult, ToolSpec
from providers.defaults import split_model

TOOL_KEYS = ("description", "inputSchema")  # what a tool definition may carry (the client runs it)
PENDING_STATES = ("input-streaming", "input-available")
APPROVAL_STATES = ("approval-requested", "approval-responded", "output-denied")
FILE_KEYS = ("type", "mediaType", "filename", "url")
PROVIDER_FILE_KEYS = ("providerReference", "providerMetadata")


@dataclass(frozen=True, slots=True)
class UIChatTurn:
    """A decoded chat request: the turn, and which stored message a UI id names (resolved at start).

    ``target`` is a UI message id: for a regenerate, the answer (our id) or user message to answer
    again; for a submit, a user message the new text replaces (an edit), when it is stored.
    """

    request: TurnRequest
    regenerate: bool = False
    target: str | None = None

    @property
    def session_key(self) -> str:
        return self.request.session_key


def _bad(message: str, field: str = "messages") -> HttpError:
    return HttpError(422, "invalid_input", message, field=field)


def message_text(message: Any, index: int) -> str:
    """The text of a user ``UIMessage`` (its ``text`` parts, in order)."""
    return message_content(message, index)[0]


def message_content(message: Any, index: int) -> tuple[str, tuple[InputFile, ...]]:
    """The text of a user ``UIMessage`` (its ``text`` parts, in order) and its files (its ``file``
    parts, in order)."""
    where = f"messages[{index}]"
    texts = []
    files = []
    for n, part in enumerate(_parts(message, where)):
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise _bad(f"{where}.parts[{n}].text must be a string.")
            texts.append(part["text"])
        elif part["type"] == "file":
            try:
                files.append(ui_file(part, f"{where}.parts[{n}]"))
            except PartError as error:
                raise error.http("messages") from None
        elif is_tool_part(part["type"]):
            raise _bad(
                f"{where}.parts[{n}] is a tool part in a user message: a call and its result belong "
                "to the assistant message that made the call (addToolResult puts them there)."
            )
    return "".join(texts), tuple(files)


def ui_file(part: dict[str, Any], where: str) -> InputFile:
    """A ``file`` UI part as the file it carries (see the module's docstring)."""
    for key in PROVIDER_FILE_KEYS:
        if part.get(key) not in (None, {}):
            raise PartError(
                f"{where}.{key}",
                "is not read: this server sends the file's bytes to the model itself; send the file "
                "as a data URL (or an https URL) in url, without a provider's reference or metadata",
                UNSUPPORTED,
            )
    unknown = [key for key in part if key not in FILE_KEYS + PROVIDER_FILE_KEYS]
    if unknown:
        raise PartError(f"{where}.{unknown[0]}", f"is not read: a file part is {', '.join(FILE_KEYS)}")
    media_type = part.get("mediaType")
    if not isinstance(media_type, str) or not media_type.strip():
        raise PartError(f"{where}.mediaType", "must be the file's media type (image/png, application/pdf…)")
    media_type = media_type.strip().lower()
    filename = read_filename(part.get("filename"), f"{where}.filename")
    stored = download_ref(part.get("url"))
    if stored is not None:  # a file of the chat's history, sent again (an edited message keeps it)
        return read_attachment_id(stored, f"{where}.url")
    full = "/" in media_type and not media_type.endswith("/*")  # "image" and "image/*" name no type
    file = inline_file(
        part.get("url"), f"{where}.url", media_type=media_type if full else "", filename=filename
    )
    if file.data is None and not full:
        top = media_type.split("/")[0]
        return InputFile("image/*" if top == "image" else "", url=file.url, filename=filename)
    return file


def _parts(message: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        raise _bad(f"{where} must be a UI message object.")
    parts = message.get("parts")
    if not isinstance(parts, list):
        raise _bad(f"{where}.parts must be a list of message parts.")
    for n, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(f"{where}.parts[{n}] must be an object with a type.")
    return parts


def is_tool_part(kind: str) -> bool:
    return kind.startswith("tool-") or kind == "dynamic-tool"


def _ui_id(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not (0 < len(value) <= UI_ID_LENGTH):
        raise _bad(f"{field} must be a string of 1 to {UI_ID_LENGTH} characters.", field)
    return value


def read_ui_tools(raw: Any) -> tuple[ToolSpec, ...]:
    """``tools`` as the SDK defines them, ``{name: {description?, inputSchema?}}``, as specs (the
    name from the key, ``parameters`` = ``inputSchema``). The limits (count, names, schema size)
    are the turn's; the shape is checked here, each problem a 422 naming the tool."""
    if raw is None or raw == []:  # an empty list asks for nothing: no tools (a no-op before tools)
        return ()
    if not isinstance(raw, dict):
        raise _bad("tools must be an object: tool name -> {description, inputSchema}.", "tools")
    specs = []
    for name, definition in raw.items():
        where = f"tools.{name}"
        if not isinstance(definition, dict):
            raise _bad(
                f'{where} must be a tool definition such as {{"description": …, "inputSchema": {{…}}}}.',
                "tools",
            )
        unknown = [key for key in definition if key not in TOOL_KEYS]
        if unknown:
            raise _bad(
                f"{where}.{unknown[0]} is not read: a tool is its description and inputSchema (a JSON "
                "Schema); the client runs it (send no execute, no other keys).",
                "tools",
            )
        description, schema = definition.get("description"), definition.get("inputSchema")
        if description is not None and not isinstance(description, str):
            raise _bad(f"{where}.description must be a string.", "tools")
        if schema is not None and not isinstance(schema, dict):
            raise _bad(f"{where}.inputSchema must be a JSON Schema object.", "tools")
        specs.append(ToolSpec(name, description or "", dict(schema or {})))
    return tuple(specs)


def tool_results(message: Any, index: int) -> tuple[ToolResult, ...]:
    """The results the assistant message ``messages[index]`` carries for its last step's calls
    (the parts after its last ``step-start``; earlier steps were answered and stored before)."""
    where = f"messages[{index}]"
    parts = _parts(message, where)
    step = max((n for n, part in enumerate(parts) if part["type"] == "step-start"), default=-1)
    results: list[ToolResult] = []
    pending: list[str] = []
    for n, part in enumerate(parts):
        if n > step and is_tool_part(part["type"]):
            result = _tool_result(part, f"{where}.parts[{n}]")
            if isinstance(result, ToolResult):
                results.append(result)
            else:
                pending.append(result)
    if pending:
        raise HttpError(
            422,
            InvalidToolResults.code,
            f"{where}: the calls {', '.join(pending)} have no result yet: add each one's output or error "
            "(addToolResult) before sending.",
            field="messages",
        )
    if not results:
        raise _bad(
            f"{where} is the assistant's message with no tool results in its last step: send the user's "
            "new message (role user) last, or the results of the answer's calls (addToolResult)."
        )
    return tuple(results)


def _tool_result(part: dict[str, Any], where: str) -> ToolResult | str:
    """One tool part as a result, or its call id when the call has no result yet."""
    call_id = part.get("toolCallId")
    if not isinstance(call_id, str) or not call_id:
        raise _bad(f"{where}.toolCallId must be the id of the call the part answers.")
    if part["type"] == "dynamic-tool" and not isinstance(part.get("toolName"), str):
        raise _bad(f"{where}.toolName must name the tool (a dynamic-tool part).")
    state = part.get("state")
    if part.get("providerExecuted") or state in APPROVAL_STATES:
        what = "a provider-executed tool" if part.get("providerExecuted") else f"a tool approval ({state})"
        raise HttpError(
            422,
            TOOLS,
            f"{where} is {what}: this server runs no tools, so it asks no approval; the tools are the "
            "client's, answered with addToolResult.",
            field="messages",
        )
    if state in PENDING_STATES:
        return call_id
    if state == "output-available":
        if part.get("preliminary"):
            raise _bad(f"{where} is a preliminary output: send the tool's final output.")
        return ToolResult(call_id, output_text(part.get("output", "")))
    if state == "output-error":
        if not isinstance(part.get("errorText"), str):
            raise _bad(f"{where}.errorText must be a string (the tool's error).")
        return ToolResult(call_id, part["errorText"], is_error=True)
    raise _bad(f"{where}.state must be output-available or output-error (the call's result), not {state!r}.")


def results_key(results: Sequence[ToolResult]) -> str:
    """The idempotency key of a round's results (their calls and outputs): the same results sent
    again replay the stored answer; other results for answered calls are refused by the turn core
    (``tool_calls_answered``), never taken for a retry."""
    items = sorted((r.call_id, r.is_error, r.output) for r in results)
    digest = hashlib.sha256(orjson.dumps(items)).hexdigest()
    return f"tool-results:{digest[:48]}"


def continued_message_id(body: dict[str, Any]) -> str | None:
    """The id of the client's assistant message a tool-results request continues (its last
    message), which the answer's ``start`` keeps so the SDK goes on in that message; None for a
    user's message. Read from a body :func:`decode_chat_request` accepted."""
    if body.get("trigger") not in (None, "submit-message"):
        return None  # a regenerate answers anew, in a message of its own
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    if isinstance(last, dict) and last.get("role") == "assistant" and isinstance(last.get("id"), str):
        return last["id"]
    return None


def decode_chat_request(body: dict[str, Any], inbound: Inbound) -> UIChatTurn:
    """The SDK's body as a turn (shared by the HTTP route and the WebSocket ``send`` frame)."""
    AI_SDK.check(body)
    field = Field(body)
    chat_id = field.str("id", required=True) or ""
    if not chat_id.strip() or len(chat_id) > base.SESSION_KEY_LENGTH:
        raise _bad(f"id (the chat id) must be 1 to {base.SESSION_KEY_LENGTH} characters.", "id")
    trigger = field.str("trigger") or "submit-message"
    if trigger not in TRIGGERS:
        raise _bad("trigger must be submit-message or regenerate-message.", "trigger")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _bad("messages must be the chat's list of UI messages.")
    message_id = _ui_id(body.get("messageId"), "messageId")
    provider, model = split_model(field.str("model"), field.str("provider"))
    request = TurnRequest(
        session_key=chat_id,
        content="",
        owner_id=inbound.caller.owner_id,
        provider=provider,
        model=model,
        system=field.str("system"),
        temperature=field.number("temperature"),
        max_tokens=field.int("max_tokens"),
        rate_limit_key=inbound.caller.rate_limit_key,
        api_key_id=inbound.caller.api_key_id,
        tools=read_ui_tools(body.get("tools")),
    )
    last_user = next(
        (
            (i, m)
            for i, m in reversed(list(enumerate(messages)))
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        None,
    )
    if trigger == "regenerate-message":
        target = message_id or (_ui_id(last_user[1].get("id"), "messages[].id") if last_user else None)
        if target is None:
            raise _bad("Nothing to regenerate: send messageId (the answer to regenerate).", "messageId")
        return UIChatTurn(request, regenerate=True, target=target)
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        return _continuation(request, messages, message_id)
    if not messages or last_user is None or last_user[0] != len(messages) - 1:
        raise _bad("The last message must be the user's new message (role user).")
    index, message = last_user
    content, files = message_content(message, index)
    if not content.strip() and not files:
        raise _bad(f"messages[{index}] has no text: send the user's message as a text part (or a file).")
    ui_id = _ui_id(message.get("id"), f"messages[{index}].id")
    request = replace(request, content=content, client_message_id=ui_id, attachments=files)
    return UIChatTurn(request, target=message_id if message_id == ui_id else None)


def _continuation(request: TurnRequest, messages: list[Any], message_id: str | None) -> UIChatTurn:
    """``submit-message`` after ``addToolResult``: the last message is the assistant's, holding the
    results; ``messageId`` is its id (both ai 5 and ai 7 send it), or absent."""
    index = len(messages) - 1
    ui_id = _ui_id(messages[index].get("id"), f"messages[{index}].id")
    if message_id is not None and message_id != ui_id:
        raise _bad(
            f"messageId must be the id of the assistant message whose calls the results answer "
            f"(messages[{index}].id), as addToolResult sends it.",
            "messageId",
        )
    results = tool_results(messages[index], index)
    request = replace(request, tool_results=results, client_message_id=results_key(results))
    return UIChatTurn(request)


class UIMessageStreamCodec:
    """``DefaultChatTransport``: the turn's events as a UI message stream over SSE."""

    async def decode(self, inbound: Inbound) -> UIChatTurn:
        return decode_chat_request(inbound.body, inbound)

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        return base.error_reply(error)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        return ui_stream_reply(started, continued_message_id(inbound.body))


def ui_stream_reply(started: Started, ui_message_id: str | None = None) -> StreamReply:
    """The stream; ``ui_message_id``: the client's message a tool-results turn goes on in."""
    encoder = ui_message.UIMessageSSE(ui_message_id)

    async def frames():
        async for event in started.events:
            yield encoder.encode(event if isinstance(event, dict) else event.to_dict())
        yield ui_message.DONE

    return StreamReply(frames(), ui_message.CONTENT_TYPE, ui_message.HEADERS)
