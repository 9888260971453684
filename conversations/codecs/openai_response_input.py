"""The ``input`` of ``POST /v1/responses``: a string, or items — messages, the client's own
``function_call`` items and the ``function_call_output`` items that answer them.

Read into the session's system prompt (system and developer messages) and the
:class:`~providers.base.ChatMessage` transcript the turn is built from: an assistant message and
the ``function_call`` items after it are one assistant message with its calls, and the
``function_call_output`` items after them one ``tool`` message with their results, each answering
one of those calls, once, every call answered before the conversation goes on (as OpenAI checks
them: ``invalid_tool_results`` naming the item). With ``previous_response_id`` (``continued``) the
calls are the stored response's: only ``function_call_output`` items (or one user message) may be
sent, and the turn core checks they answer that response's calls. Every other tool item
(``web_search_call``, ``mcp_call``…) is ``tools_not_supported``; never dropped.

A user message's files (docs/attachments.md): ``input_image`` (``image_url``: a data URL or an https
URL; or ``file_id``, the id ``POST /api/attachments`` returned; ``detail``) and ``input_file``
(``file_data``, a data URL, with its ``filename``; or ``file_url``, https; or ``file_id``). The last
user message's files are the turn's; an earlier message's stay in the transcript the model is sent.
A file part in another role's message is refused naming it, and so is one in a
``function_call_output`` (``attachments_not_supported``: a tool's result is text here).

Each message item is kept (the input items list) as ``{"role", "text", "files"?}``: ``files`` the
parts as the list shows them back, without the bytes — an image sent by URL keeps its URL, one sent
by id its ``file_id``; inline bytes are not kept twice (the new message's files are stored
attachments, listed by their ids: :mod:`conversations.wire.openai_response_store`).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from conversations.codecs.attachments import (
    BAD_DATA_URL,
    PartError,
    inline_file,
    is_data_url,
    read_attachment_id,
    read_detail,
    read_filename,
    read_remote_url,
)
from conversations.codecs.messages import CALL_ID_LENGTH
from conversations.codecs.request_fields import ATTACHMENT_PARTS, ATTACHMENTS, TOOLS, tool_item
from conversations.edge.http_errors import HttpError
from providers.base import ATTACHMENT_TYPES, ChatMessage, InputFile, ToolCall, ToolResult

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TEXT_PARTS = ("input_text", "output_text", "text")
TOOL_RESULTS = "invalid_tool_results"
ITEM_KINDS = "a message item (role user, assistant, system or developer), a function_call or a function_call_output item"

Item = dict[
    str, Any
]  # as stored for the input items list: {"role", "text", "files"?} or a tool item's fields
FILE_PARTS = ("input_image", "input_file")
IMAGE_KEYS = ("type", "image_url", "file_id", "detail")
FILE_KEYS = ("type", "file_data", "file_url", "file_id", "filename", "detail")


def _refusal(message: str, code: str = "invalid_input") -> HttpError:
    return HttpError(422, code, message, field="input")


def _parts_text(content: Any, where: str, what: str) -> str:
    """A string, or text parts joined; a file part is refused naming it (a tool's output)."""
    if isinstance(content, list):
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ATTACHMENT_PARTS:
                raise _refusal(
                    f"{where}[{n}] is {kind}: a function_call_output carries text only here; send "
                    "input_text (a file goes in a user message).",
                    ATTACHMENTS,
                )
    return _content(content, where, what, None)[0]


def _content(
    content: Any, where: str, what: str, role: str | None
) -> tuple[str, tuple[InputFile, ...], list[Item]]:
    """A message's text (its text parts joined), its files and their kept form (see the module's
    docstring). ``role``: whose message (only a user's carries files)."""
    if isinstance(content, str):
        return content, (), []
    if isinstance(content, list) and content:
        files: list[InputFile] = []
        kept: list[Item] = []
        texts: list[Any] = []
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            at = f"{where}[{n}]"
            if kind in FILE_PARTS and role == "user":
                try:
                    file, shown = _file(part, at)
                except PartError as error:
                    raise error.http("input") from None
                files.append(file)
                kept.append(shown)
            elif kind == "input_audio":
                raise _refusal(
                    f"{at} is input_audio: audio is not taken (images, PDF and text files are): send "
                    "the message without it.",
                    ATTACHMENTS,
                )
            elif kind in ATTACHMENT_PARTS:
                fix = "an image or file goes in a user message" if kind in FILE_PARTS else _FILE_FIX
                raise _refusal(f"{at} is {kind}: {fix}.")
            elif kind in TEXT_PARTS:
                texts.append(part.get("text"))
            else:
                texts.append(None)
        if all(isinstance(t, str) for t in texts):
            return "".join(texts), tuple(files), kept
    raise _refusal(f"{where} must be {what}.")


_FILE_FIX = "send an image as an input_image part and a PDF or text file as an input_file part"


def _one_of(part: dict[str, Any], keys: tuple[str, ...], where: str) -> str:
    given = [key for key in keys if part.get(key) is not None]
    if len(given) != 1:
        raise PartError(where, f"must carry exactly one of {', '.join(keys)}")
    return given[0]


def _only(part: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = [key for key in part if key not in keys]
    if unknown:
        raise PartError(f"{where}.{unknown[0]}", f"is not read: the keys taken are {', '.join(keys)}")


def _file(part: dict[str, Any], where: str) -> tuple[InputFile, Item]:
    """One ``input_image`` or ``input_file`` part: the file, and the part as it is kept."""
    kind = part["type"]
    if kind == "input_image":
        _only(part, IMAGE_KEYS, where)
        detail = read_detail(part.get("detail"), f"{where}.detail")
        shown: Item = {"type": "input_image", "detail": detail or "auto", "image_url": None, "file_id": None}
        if _one_of(part, ("image_url", "file_id"), where) == "file_id":
            file = read_attachment_id(part["file_id"], f"{where}.file_id")
            return replace(file, detail=detail), {**shown, "file_id": file.ref}
        file = inline_file(part["image_url"], f"{where}.image_url", detail=detail)
        if file.data is None:
            return replace(file, media_type="image/*"), {**shown, "image_url": file.url}
        if file.media_type and not file.media_type.startswith("image/"):
            raise PartError(
                f"{where}.image_url",
                f"is a data URL of {file.media_type}: an input_image carries an image; send a PDF or "
                "text file as an input_file part",
            )
        return file, shown
    _only(part, FILE_KEYS, where)
    detail = read_detail(part.get("detail"), f"{where}.detail")
    given = _one_of(part, ("file_data", "file_url", "file_id"), where)
    shown = {"type": "input_file"}
    if given == "file_id":
        if part.get("filename") is not None:
            raise PartError(
                f"{where}.filename", "is not read with file_id: an upload keeps the name it was uploaded with"
            )
        file = read_attachment_id(part["file_id"], f"{where}.file_id")
        return replace(file, detail=detail), {**shown, "file_id": file.ref}
    filename = read_filename(part.get("filename"), f"{where}.filename")
    if filename:
        shown["filename"] = filename
    if given == "file_url":
        url = read_remote_url(part["file_url"], f"{where}.file_url")
        file = InputFile(_url_type(url), url=url, filename=filename, detail=detail)
        return file, {**shown, "file_url": url}
    if not is_data_url(part["file_data"]):
        raise PartError(
            f"{where}.file_data",
            "must be a data URL (data:<media type>;base64,<the file's bytes>)",
            BAD_DATA_URL,
        )
    return inline_file(part["file_data"], f"{where}.file_data", filename=filename, detail=detail), shown


def _url_type(url: str) -> str:
    """The type a remote file's URL names by its extension (``.pdf``), when it is one taken; else
    "" (the type is then read from the bytes, fetched by the server)."""
    guessed = mimetypes.guess_type(urlsplit(url).path)[0] or ""
    return guessed if guessed in ATTACHMENT_TYPES else ""


def _string(item: dict[str, Any], key: str, where: str, what: str, *, limit: int | None = None) -> str:
    value = item.get(key)
    if not isinstance(value, str) or (limit is not None and not 0 < len(value) <= limit):
        raise _refusal(f"{where}.{key} must be {what}.")
    return value


def read_item(item: Any, where: str) -> Item:
    """One item of ``input`` in its stored shape (see :data:`Item`)."""
    return _read_item(item, where)[0]


def _read_item(item: Any, where: str) -> tuple[Item, tuple[InputFile, ...]]:
    """One item of ``input`` in its stored shape, and the files a message item carries."""
    kind = item.get("type", "message") if isinstance(item, dict) else None
    if kind == "function_call":
        call = {
            "type": "function_call",
            "call_id": _string(
                item,
                "call_id",
                where,
                f"the call's id (1 to {CALL_ID_LENGTH} characters)",
                limit=CALL_ID_LENGTH,
            ),
            "name": _string(item, "name", where, "the called function's name"),
            "arguments": _string(item, "arguments", where, "the arguments' JSON text (a string)"),
        }
        return call, ()
    if kind == "function_call_output":
        call_id = _string(
            item, "call_id", where, "the id of the call this output answers", limit=CALL_ID_LENGTH
        )
        output = _parts_text(item.get("output"), f"{where}.output", "a string or input_text parts")
        return {"type": "function_call_output", "call_id": call_id, "output": output}, ()
    if tool_item(kind):
        raise _refusal(
            f"{where} is a {kind} item: only function tools are supported (function_call and "
            "function_call_output items); built-in and MCP tools are not.",
            TOOLS,
        )
    if kind != "message" or item.get("role") not in ROLES:
        raise _refusal(f"{where} must be {ITEM_KINDS}.")
    role = ROLES[item["role"]]
    what = (
        "a string, or input_text, input_image and input_file parts"
        if role == "user"
        else "a string or text parts"
    )
    text, files, kept = _content(item.get("content"), f"{where}.content", what, role)
    read: Item = {"role": item["role"], "text": text}
    if kept:
        read["files"] = kept
    return read, files


@dataclass(slots=True)
class _Round:
    """An assistant message being read: its text, the calls after it, and the outputs after those."""

    where: str  # the item that opened it
    text: str = ""
    calls: dict[str, ToolCall] = field(default_factory=dict)
    results: list[ToolResult] = field(default_factory=list)

    def messages(self) -> list[ChatMessage]:
        missing = [call_id for call_id in self.calls if call_id not in {r.call_id for r in self.results}]
        if missing:
            raise _refusal(
                f"the calls {', '.join(missing)} (from {self.where}) have no function_call_output: send "
                "one function_call_output item per call right after the calls.",
                TOOL_RESULTS,
            )
        out = [ChatMessage("assistant", self.text, tuple(self.calls.values()))]
        if self.results:
            out.append(ChatMessage("tool", "", tool_results=tuple(self.results)))
        return out


@dataclass(frozen=True, slots=True)
class ResponseInput:
    items: list[Item]  # every item as read (stored with the answer: the input items list)
    system: list[str]  # the system and developer messages' texts, in order
    messages: tuple[ChatMessage, ...]  # the rest: user, assistant (with calls) and tool messages


def read_input(raw: Any, *, continued: bool = False) -> ResponseInput:
    """``input`` read and checked (see the module's docstring); ``continued``: with
    ``previous_response_id``."""
    if isinstance(raw, str):
        if not raw.strip():
            raise _refusal("input is empty: send a non-empty string.")
        return ResponseInput([{"role": "user", "text": raw}], [], (ChatMessage("user", raw),))
    if not isinstance(raw, list) or not raw:
        raise _refusal("input must be a string or a list of items.")
    read = [_read_item(item, f"input[{n}]") for n, item in enumerate(raw)]
    items, files = [item for item, _ in read], [files for _, files in read]
    system = [i["text"] for i in items if ROLES.get(i.get("role", "")) == "system"]
    if continued:
        return ResponseInput(items, system, _continued(items, files))
    messages: list[ChatMessage] = []
    current: _Round | None = None  # the assistant message whose calls the next outputs answer
    for n, item in enumerate(items):
        where, kind = f"input[{n}]", item.get("type", "message")
        if kind == "function_call":
            if current is None or current.results:
                messages += current.messages() if current else []
                current = _Round(where)
            if item["call_id"] in current.calls:
                raise _refusal(f"{where} repeats the call id {item['call_id']!r}: each call needs its own.")
            current.calls[item["call_id"]] = ToolCall(item["call_id"], item["name"], item["arguments"])
        elif kind == "function_call_output":
            _answer(current, item, where)
        elif ROLES[item["role"]] != "system":
            messages += current.messages() if current else []
            current = None
            if item["role"] == "assistant":
                current = _Round(where, item["text"])
            else:
                messages.append(ChatMessage("user", item["text"], attachments=files[n]))
    messages += current.messages() if current else []
    return ResponseInput(items, system, tuple(messages))


def _answer(current: _Round | None, item: Item, where: str) -> None:
    call_id = item["call_id"]
    if current is None or not current.calls:
        raise _refusal(
            f"{where} answers the call {call_id!r} but follows no function_call items: send the "
            "function_call items before their outputs, or continue with previous_response_id.",
            TOOL_RESULTS,
        )
    call = current.calls.get(call_id)
    if call is None:
        raise _refusal(
            f"{where} answers the call {call_id!r}, which the function_call items before it did not "
            f"make (their calls: {', '.join(current.calls)}).",
            TOOL_RESULTS,
        )
    if any(result.call_id == call_id for result in current.results):
        raise _refusal(
            f"{where} is a second function_call_output for the call {call_id!r}: send one per call."
        )
    current.results.append(ToolResult(call_id, item["output"], name=call.name))


def _continued(items: list[Item], files: list[tuple[InputFile, ...]]) -> tuple[ChatMessage, ...]:
    """With ``previous_response_id``: the new user message, or the outputs of the stored calls."""
    pairs = [(i, f) for i, f in zip(items, files, strict=True) if ROLES.get(i.get("role", "")) != "system"]
    turn = [i for i, _ in pairs]
    kinds = {i.get("type", "message") for i in turn}
    if "function_call" in kinds:
        raise _refusal(
            "With previous_response_id, send only the function_call_output items: the calls are the "
            "stored response's (leave its function_call items out)."
        )
    if "function_call_output" in kinds and len(kinds) > 1:
        raise _refusal(
            "With previous_response_id, send either the new user message or the function_call_output "
            "items of the response's calls, not both: the results are the turn's new message."
        )
    if kinds == {"function_call_output"}:
        results: list[ToolResult] = []
        for item in turn:
            if any(r.call_id == item["call_id"] for r in results):
                raise _refusal(
                    f"Two function_call_output items answer the call {item['call_id']!r}: send one per call."
                )
            results.append(ToolResult(item["call_id"], item["output"]))
        return (ChatMessage("tool", "", tool_results=tuple(results)),)
    if len(turn) > 1:
        raise _refusal(
            "With previous_response_id, send only the new user message, or the function_call_output "
            "items of the response's calls: the history is the stored one."
        )
    return tuple(ChatMessage(ROLES[i["role"]], i["text"], attachments=f) for i, f in pairs)  # type: ignore[arg-type]
