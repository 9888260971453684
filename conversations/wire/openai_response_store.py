"""A stored answer as the Responses API shows it: the ``response`` object's shell and state, and
the turn's input items. Pure functions of the plain values the turn service reads
(:class:`conversations.turns.responses.StoredResponse`) and of the options the request stored
(:func:`conversations.codecs.openai_responses.shell_options`).

The input items are the turn's transcript as sent (messages, the client's own ``function_call``
items and ``function_call_output`` items), else its new message: a user message, or a tool
message's results as ``function_call_output`` items (a round continued with
``previous_response_id``).

A user message's files are listed after its text, in order, as OpenAI's parts, never with their
bytes again: the new message's files are stored attachments, each an ``input_image`` or
``input_file`` with its ``file_id`` (the attachment's id: its bytes are
``/api/attachments/{file_id}/content``, and the id may be sent again as ``file_id``), or with the
``image_url`` / ``file_url`` it was sent as. An earlier message of a transcript keeps what its parts
named (a URL, a ``file_id``); its inline bytes were sent to the model but are not kept, so such a
part is listed with ``image_url`` null (``input_image``) or its ``filename`` alone (``input_file``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from conversations.wire.openai_responses import (
    AnswerState,
    CallState,
    ResponseShell,
    answer_state,
    response_id,
    stored_calls,
)


class StoredResponse(Protocol):
    """A stored answer as the turn service reads it (:class:`conversations.turns.responses.StoredResponse`)."""

    message_id: str
    status: str
    content: str
    model: str
    finish_reason: str
    error_code: str
    error_message: str
    created_at: float
    options: dict[str, Any]
    user_message_id: str | None
    user_content: str
    parts: Sequence[dict[str, Any]]
    user_role: str
    user_parts: Sequence[dict[str, Any]]

    @property
    def usage(self) -> dict[str, int] | None: ...


def response_shell(
    rid: str, options: dict[str, Any], *, model: str = "", created_at: float = 0
) -> ResponseShell:
    """A response's shell from the options its request stored (see :func:`shell_options`)."""
    return ResponseShell(
        id=rid,
        created_at=int(options.get("created_at") or created_at),
        model=model or options.get("model") or "default",
        instructions=options.get("instructions"),
        metadata=options.get("metadata") or {},
        temperature=options.get("temperature"),
        max_output_tokens=options.get("max_output_tokens"),
        background=bool(options.get("background")),
        previous_response_id=options.get("previous_response_id"),
        tools=options.get("tools") or [],
        tool_choice=options.get("tool_choice") or "auto",
        parallel_tool_calls=options.get("parallel_tool_calls") is not False,
    )


def stored_shell(found: StoredResponse) -> ResponseShell:
    return response_shell(
        response_id(found.message_id), found.options, model=found.model, created_at=found.created_at
    )


def stored_state(
    found: StoredResponse, text: str | None = None, calls: tuple[CallState, ...] | None = None
) -> AnswerState:
    """A stored answer's state; ``text`` and ``calls``: what a running one has said so far."""
    return answer_state(
        found.status,
        found.content if text is None else text,
        finish_reason=found.finish_reason,
        error_code=found.error_code,
        error_message=found.error_message,
        usage=found.usage,
        model=found.model or None,
        calls=stored_calls(found.parts, found.status) if calls is None else calls,
    )


def _input_item(item_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """One stored input item (see :func:`conversations.codecs.openai_responses.read_input`) as listed."""
    kind = item.get("type", "message")
    if kind == "function_call":
        return {
            "id": item_id,
            "type": "function_call",
            "status": "completed",
            "arguments": item["arguments"],
            "call_id": item["call_id"],
            "name": item["name"],
        }
    if kind == "function_call_output":
        return {
            "id": item_id,
            "type": "function_call_output",
            "status": "completed",
            "call_id": item["call_id"],
            "output": item["output"],
        }
    role, text, files = item["role"], item["text"], item.get("files") or []
    part = (
        {"type": "output_text", "text": text, "annotations": []}
        if role == "assistant"
        else {"type": "input_text", "text": text}
    )
    content = [part] if text or not files else []
    content += [dict(file) for file in files]
    return {"id": item_id, "type": "message", "role": role, "status": "completed", "content": content}


def shown_file(part: dict[str, Any]) -> dict[str, Any]:
    """A stored file part (:func:`conversations.turns.parts.file_part`) as a Responses input part."""
    url, file_id = part.get("url") or None, part.get("id") or None
    if str(part.get("media_type", "")).startswith("image/"):
        return {
            "type": "input_image",
            "detail": part.get("detail") or "auto",
            "image_url": url,
            "file_id": None if url else file_id,
        }
    shown: dict[str, Any] = {"type": "input_file"}
    if url:
        shown["file_url"] = url
    elif file_id:
        shown["file_id"] = file_id
    if part.get("filename"):
        shown["filename"] = part["filename"]
    return shown


def _stored_files(found: StoredResponse) -> list[dict[str, Any]]:
    return [shown_file(part) for part in found.user_parts or () if part.get("type") == "file"]


def _new_message_items(found: StoredResponse) -> list[dict[str, Any]]:
    if found.user_role == "tool":
        return [
            {"type": "function_call_output", "call_id": part["call_id"], "output": part.get("output", "")}
            for part in found.user_parts
            if part.get("type") == "tool_result"
        ]
    return [{"role": "user", "text": found.user_content, "files": _stored_files(found)}]


def _with_stored_files(items: list[dict[str, Any]], found: StoredResponse) -> list[dict[str, Any]]:
    """A transcript's items, its last (the new user message) listing the files as stored."""
    files = _stored_files(found)
    if not files or not items or items[-1].get("role") != "user":
        return items
    return [*items[:-1], {**items[-1], "files": files}]


def _item_id(hexid: str, item: dict[str, Any], index: int, last: bool) -> str:
    """``msg_<hex>`` for the new user message, ``msg_<hex>_<i>`` for earlier ones; ``fc_``/``fco_``
    with the item's index for tool items (``<hex>``: the turn's new message's id)."""
    kind = item.get("type", "message")
    if kind == "message":
        return f"msg_{hexid}" if last else f"msg_{hexid}_{index}"
    return f"{'fc' if kind == 'function_call' else 'fco'}_{hexid}_{index}"


def input_items_list(found: StoredResponse, *, order: str, limit: int, after: str | None) -> dict[str, Any]:
    """The turn's input items as OpenAI lists them (see the module's docstring)."""
    stored = found.options.get("input")
    items = _with_stored_files(stored, found) if stored else _new_message_items(found)
    hexid = (found.user_message_id or found.message_id).replace("-", "")
    data = [_input_item(_item_id(hexid, item, i, i == len(items) - 1), item) for i, item in enumerate(items)]
    if order == "desc":
        data.reverse()
    ids = [d["id"] for d in data]
    if after in ids:
        data = data[ids.index(after) + 1 :]
    page = data[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(data) > limit,
    }
