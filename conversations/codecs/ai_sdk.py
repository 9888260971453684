"""The Vercel AI SDK chat protocol (``useChat``): its request body, decoded into a turn.

Body (``DefaultChatTransport`` over HTTP, or a ``send`` frame of ``WebSocketChatTransport``):
``{id, messages: UIMessage[], trigger: "submit-message" | "regenerate-message", messageId?}``
plus the app's own ``body`` fields: ``provider``, ``model`` (``provider:model`` too, as
``/v1/models`` lists them), ``system``, ``temperature``, ``max_tokens``.

``id`` (the chat) is the session key, per owner: the history API lists the chat's messages. The
server's stored history is the context (the client's ``messages`` only carry the new message, so
an app may send just the last one). ``submit-message`` sends the text parts of the last user
message (its UI id is the idempotency key: a retried request replays the stored answer); with a
``messageId`` naming a stored user message it is an edit, answered as a new branch.
``regenerate-message`` answers the same user message again, as a new branch: ``messageId`` (our
answer's id, which the stream's ``start`` gave the client) or else the last user message.

What the server cannot honour is refused with 422 naming it, never dropped: a ``file`` part
(``attachments_not_supported``), a tool part or a tool result to send back
(``tools_not_supported``), a body field it does not know (``unsupported_parameter``). Other parts
of a user message (``data-*``, sources, ``step-start``) are the app's: the SDK's own
``convertToModelMessages`` does not send them to a model either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from conversations.codecs import base
from conversations.codecs.base import Inbound, JsonReply, Reply, Started, StreamReply
from conversations.codecs.request_fields import AI_SDK, ATTACHMENTS, TOOLS, TRIGGERS, UI_ID_LENGTH
from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.turns.request import TurnRequest
from conversations.wire import ui_message
from providers.defaults import split_model


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
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise _bad(f"{where} must be a UI message object.")
    parts = message.get("parts")
    if not isinstance(parts, list):
        raise _bad(f"{where}.parts must be a list of message parts.")
    texts = []
    for n, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(f"{where}.parts[{n}] must be an object with a type.")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise _bad(f"{where}.parts[{n}].text must be a string.")
            texts.append(part["text"])
        elif part["type"] == "file":
            raise HttpError(
                422,
                ATTACHMENTS,
                f"{where}.parts[{n}] is a file: attachments are not supported yet; send text parts only.",
                field="messages",
            )
        elif is_tool_part(part["type"]):
            raise _no_tools(f"{where}.parts[{n}] is a tool part")
    return "".join(texts)


def is_tool_part(kind: str) -> bool:
    return kind.startswith("tool-") or kind == "dynamic-tool"


def _has_tool_part(message: Any) -> bool:
    parts = message.get("parts") if isinstance(message, dict) else None
    return isinstance(parts, list) and any(
        isinstance(p, dict) and is_tool_part(str(p.get("type"))) for p in parts
    )


def _no_tools(what: str) -> HttpError:
    return HttpError(
        422, TOOLS, f"{what}: tool calling is not supported yet; send the user's text only.", field="messages"
    )


def _ui_id(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not (0 < len(value) <= UI_ID_LENGTH):
        raise _bad(f"{field} must be a string of 1 to {UI_ID_LENGTH} characters.", field)
    return value


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
    if messages and _has_tool_part(messages[-1]):  # addToolResult sends the answer back
        raise _no_tools(f"messages[{len(messages) - 1}] sends a tool result back")
    if not messages or last_user is None or last_user[0] != len(messages) - 1:
        raise _bad("The last message must be the user's new message (role user).")
    index, message = last_user
    content = message_text(message, index)
    if not content.strip():
        raise _bad(f"messages[{index}] has no text: send the user's message as a text part.")
    ui_id = _ui_id(message.get("id"), f"messages[{index}].id")
    request = replace(request, content=content, client_message_id=ui_id)
    return UIChatTurn(request, target=message_id if message_id == ui_id else None)


class UIMessageStreamCodec:
    """``DefaultChatTransport``: the turn's events as a UI message stream over SSE."""

    async def decode(self, inbound: Inbound) -> UIChatTurn:
        return decode_chat_request(inbound.body, inbound)

    def reject(self, error: HttpError | TurnRejected, inbound: Inbound | None = None) -> JsonReply:
        return base.error_reply(error)

    async def reply(self, started: Started, inbound: Inbound) -> Reply:
        return ui_stream_reply(started)


def ui_stream_reply(started: Started) -> StreamReply:
    encoder = ui_message.UIMessageSSE()

    async def frames():
        async for event in started.events:
            yield encoder.encode(event if isinstance(event, dict) else event.to_dict())
        yield ui_message.DONE

    return StreamReply(frames(), ui_message.CONTENT_TYPE, ui_message.HEADERS)
