"""A message's typed parts, as stored (``Message.parts``, one JSON list) and as shown.

A message is an ordered list of parts; ``Message.content`` stays its plain text (search, previews,
the seed dialects). A message that is only text stores no parts (``[]``): its content is its one
``text`` part, so a turn without tools stores and costs what it did. The kinds:

- ``{"type": "text", "text": …}``
- ``{"type": "tool_call", "id", "name", "arguments"}``: ``arguments`` is the JSON text as the model
  produced it; ``input`` its parsed value when it parses; ``metadata`` what the provider needs back
  next round (opaque), when any; ``incomplete: true`` when the answer ended mid-arguments (never
  presented as a call to run).
- ``{"type": "tool_result", "call_id", "name", "output", "is_error"}``, in a ``tool`` message.
- ``{"type": "file", "id", "media_type", "filename", "size", "sha256"}``, in a user message (after its
  text part): a stored :class:`~conversations.models.Attachment`; ``url`` when it was fetched from
  an https URL, ``detail`` when the client asked an image detail. Shown with its ``download_url``.

A new kind is a new dict shape here, an event if it streams, and one reader per codec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from providers.base import ChatMessage, InputFile, ToolCall, ToolResult

Part = dict[str, Any]


def stored_parts(value: Sequence[Part] | str | None) -> Sequence[Part]:
    """A row's parts as read: a list (the ORM), their JSON text, or None for ``[]`` (the native
    path reads them so: decoding the column of every one of a session's recent rows cost each
    turn about 1 ms, though only a tool round's rows carry any)."""
    if not value:
        return ()
    if isinstance(value, str):
        return orjson.loads(value)
    return value


def parsed_arguments(arguments: str) -> Any:
    """The call's arguments as JSON, or None when the text does not parse."""
    try:
        return orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return None


def text_part(text: str) -> Part:
    return {"type": "text", "text": text}


def tool_call_part(call: ToolCall, *, incomplete: bool = False) -> Part:
    part: Part = {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
    value = parsed_arguments(call.arguments)
    if value is not None:
        part["input"] = value
    if call.metadata:
        part["metadata"] = dict(call.metadata)
    if incomplete:
        part["incomplete"] = True
    return part


def tool_result_part(result: ToolResult) -> Part:
    return {
        "type": "tool_result",
        "call_id": result.call_id,
        "name": result.name,
        "output": result.output,
        "is_error": result.is_error,
    }


def answer_parts(text: str, calls: Sequence[ToolCall], *, complete: bool) -> list[Part]:
    """An answer's parts: ``[]`` when it is only text; else its text (when any), then its calls
    (marked ``incomplete`` when the answer did not end whole)."""
    if not calls:
        return []
    parts = [text_part(text)] if text else []
    return parts + [tool_call_part(call, incomplete=not complete) for call in calls]


def file_part(file: InputFile) -> Part:
    """A stored attachment (``file.ref`` its id) as a message's part."""
    part: Part = {
        "type": "file",
        "id": file.ref,
        "media_type": file.media_type,
        "filename": file.filename,
        "size": file.size,
    }
    if file.sha256:
        part["sha256"] = file.sha256
    if file.url:
        part["url"] = file.url
    if file.detail:
        part["detail"] = file.detail
    return part


def user_parts(content: str, files: Sequence[InputFile]) -> list[Part]:
    """A user message's parts: ``[]`` when it is only text; else its text (when any), then its files."""
    if not files:
        return []
    return ([text_part(content)] if content else []) + [file_part(file) for file in files]


def download_url(attachment_id: str) -> str:
    return f"/api/attachments/{attachment_id}/content"


def shown_parts(content: str, parts: Sequence[Part] | None) -> list[Part]:
    """The parts a client is shown: the stored ones (a file with its ``download_url``, which
    answers to who may read the session), or the content as one text part."""
    if parts:
        return [
            {**part, "download_url": download_url(part["id"])}
            if part.get("type") == "file" and part.get("id")
            else dict(part)
            for part in parts
        ]
    return [text_part(content)] if content else []


def input_files(parts: Iterable[Mapping[str, Any]] | None) -> tuple[InputFile, ...]:
    """The files among ``parts``, as a model is sent them (their bytes loaded later, by ``ref``)."""
    return tuple(
        InputFile(
            p.get("media_type", ""),
            url=p.get("url", ""),
            filename=p.get("filename", ""),
            size=p.get("size", 0),
            detail=p.get("detail"),
            ref=p["id"],
            sha256=p.get("sha256", ""),
        )
        for p in parts or ()
        if p.get("type") == "file"
    )


def tool_calls(parts: Iterable[Mapping[str, Any]] | None) -> tuple[ToolCall, ...]:
    """The whole calls among ``parts`` (an incomplete one is not a call)."""
    return tuple(
        ToolCall(p["id"], p["name"], p.get("arguments", ""), p.get("metadata") or {})
        for p in parts or ()
        if p.get("type") == "tool_call" and not p.get("incomplete")
    )


def tool_results(parts: Iterable[Mapping[str, Any]] | None) -> tuple[ToolResult, ...]:
    return tuple(
        ToolResult(p["call_id"], p.get("output", ""), bool(p.get("is_error")), p.get("name", ""))
        for p in parts or ()
        if p.get("type") == "tool_result"
    )


def chat_message(role: str, content: str, parts: Sequence[Mapping[str, Any]] | None) -> ChatMessage:
    """A stored message as a model is sent it."""
    if not parts:
        return ChatMessage(role, content)  # type: ignore[arg-type]
    return ChatMessage(role, content, tool_calls(parts), tool_results(parts), input_files(parts))  # type: ignore[arg-type]


def named_results(message: ChatMessage, calls: Sequence[ToolCall]) -> ChatMessage:
    """A tool message whose results carry the called tools' names (a client sends only call ids;
    some providers want the name with each result), taken from the ``calls`` they answer."""
    if not message.tool_results or all(result.name for result in message.tool_results):
        return message
    names = {call.id: call.name for call in calls}
    results = tuple(
        result if result.name else replace(result, name=names.get(result.call_id, ""))
        for result in message.tool_results
    )
    return replace(message, tool_results=results)


def results_text(results: Sequence[ToolResult]) -> str:
    """A ``tool`` message's plain text (its ``content``: search and previews): the outputs."""
    return "\n".join(result.output for result in results)
