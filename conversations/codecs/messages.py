"""The one reader of a chat message list: ``[{"role", "content"}, ...]`` as OpenAI-style clients
send it (the OpenAI chat API, the Z.AI seed, the coding-agent seed).

:func:`read_messages` finds every problem at once (each codec reports them its own way: the
first as a sentence, or all as details), takes system messages apart as the system prompt, and
keeps the rest in order. What a message carries besides text — a tool call or result, an image,
audio or a file — is a problem of its own (``tools_not_supported``, ``attachments_not_supported``),
never dropped: an answer to the text alone would answer a question the client did not ask.

A protocol that takes attachments (the OpenAI chat API) passes ``attachments=True``: a user message's
``image_url`` parts (a data URL or an https URL, ``detail``) and ``file`` parts (``file_data`` as a
data URL with its ``filename``, or ``file_id``: an upload's id) are its files
(:attr:`~providers.base.ChatMessage.attachments`, in order; its text parts are still its content);
``input_audio`` stays ``attachments_not_supported`` (audio is not taken), and a file part on any
other role is refused naming it. The seeds' clients never sent files: their codecs keep the refusal.

A protocol that takes client tools (the OpenAI chat API) passes ``tools=True``: an assistant message
may then carry ``tool_calls`` and ``role: "tool"`` messages are its calls' results, checked as OpenAI
checks them — each answers a call of the assistant message right before it, once, and every call
is answered before the conversation goes on (``invalid_tool_results`` naming the message). The
legacy ``function`` role and ``function_call`` stay refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conversations.codecs.attachments import (
    BAD_DATA_URL,
    PartError,
    inline_file,
    is_data_url,
    read_attachment_id,
    read_detail,
    read_filename,
)
from conversations.codecs.request_fields import ATTACHMENT_PARTS, ATTACHMENTS, TOOLS
from providers.base import ChatMessage, InputFile, ToolCall, ToolResult

# Accepted roles and what each is stored as (OpenAI's newer ``developer`` is a system message).
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
TOOL_ROLES = ("tool", "function")  # a tool's result, sent back for the model to read
TOOL_KEYS = ("tool_calls", "function_call")  # an assistant message that called tools
INVALID = "invalid_input"
TOOL_RESULTS = "invalid_tool_results"  # a tool message that does not answer the calls before it
CALL_ID_LENGTH = 128  # characters of a call id (the turn core's limit on a result's call id)
CALL_SHAPE = '{"id": …, "type": "function", "function": {"name": …, "arguments": "<JSON text>"}}'


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # "messages", "messages[2]", "messages[2].role"
    message: str  # what it must be: "must be system, user or assistant"
    code: str = INVALID  # or tools_not_supported, attachments_not_supported

    def sentence(self) -> str:
        return f"{self.field} {self.message}."

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class MessageList:
    system: str | None  # the system messages, joined by a blank line
    messages: tuple[ChatMessage, ...]  # user and assistant (and, with tools, tool) messages, in order
    problems: tuple[Problem, ...]

    @property
    def last(self) -> ChatMessage | None:
        return self.messages[-1] if self.messages else None


def _text(content: Any, text_parts: bool, where: str, files: str | None = None) -> str | Problem:
    """A content that carries text only (a tool result's); ``files`` as :func:`_content` takes it."""
    read = _content(content, text_parts, where, files)
    return read if isinstance(read, Problem) else read[0]


def _content(
    content: Any, text_parts: bool, where: str, files: str | None = None
) -> tuple[str, tuple[InputFile, ...]] | Problem:
    """A message's text and files. ``files``: None where attachments are not read at all (the
    seeds: any file part is ``attachments_not_supported``), else the message's role (only a user
    message carries files)."""
    if isinstance(content, str):
        return content, ()
    if isinstance(content, list):
        read: list[InputFile] = []
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ATTACHMENT_PARTS:
                continue
            at = f"{where}.content[{n}]"
            problem = _file_part_problem(kind, at, files)
            if problem is not None:
                return problem
            try:
                read.append(_chat_file(part, at))
            except PartError as error:
                return Problem(error.where, error.what, error.code)
        rest = [p for p in content if not (isinstance(p, dict) and p.get("type") in FILE_PARTS)]
        texts = [p.get("text") for p in rest if isinstance(p, dict) and p.get("type") == "text"]
        if text_parts and len(texts) == len(rest) and all(isinstance(t, str) for t in texts):
            return "".join(texts), tuple(read)  # type: ignore[arg-type]
    kind = "a string or text parts" if text_parts else "a string"
    if files == "user":
        kind = "a string, or text, image_url and file parts"
    return Problem(f"{where}.content", f"must be {kind}")


FILE_PARTS = ("image_url", "file")  # the Chat Completions parts that carry a file
IMAGE_URL_KEYS = ("url", "detail")
FILE_KEYS = ("file_data", "file_id", "filename")


def _file_part_problem(kind: str, where: str, files: str | None) -> Problem | None:
    if files is None:
        return Problem(where, f"is {kind}: attachments are not supported yet, send text only", ATTACHMENTS)
    if kind == "input_audio":
        return Problem(
            where,
            "is input_audio: audio is not taken (images, PDF and text files are): send the message "
            "without it",
            ATTACHMENTS,
        )
    if kind not in FILE_PARTS:
        return Problem(
            where,
            f"is {kind}, not a part of this API: send an image as an image_url part and a PDF or text "
            "file as a file part",
        )
    if files != "user":
        article = "an" if files[:1] in ("a", "e", "i", "o", "u") else "a"
        return Problem(
            where,
            f"is {kind} in {article} {files} message: only a user message carries files (images and documents)",
        )
    return None


def _only(part: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = [key for key in part if key not in keys]
    if unknown:
        raise PartError(f"{where}.{unknown[0]}", f"is not read: the keys taken are {', '.join(keys)}")


def _chat_file(part: dict[str, Any], where: str) -> InputFile:
    """One ``image_url`` or ``file`` part as the file it carries (see the module's docstring)."""
    kind = part["type"]
    _only(part, ("type", kind), where)
    inner = part.get(kind)
    at = f"{where}.{kind}"
    if kind == "image_url":
        if not isinstance(inner, dict):
            raise PartError(at, 'must be an object: {"url": <data URL or https URL>, "detail"?}')
        _only(inner, IMAGE_URL_KEYS, at)
        detail = read_detail(inner.get("detail"), f"{at}.detail")
        file = inline_file(inner.get("url"), f"{at}.url", detail=detail)
        if file.data is None:
            return InputFile("image/*", url=file.url, detail=detail)
        if file.media_type and not file.media_type.startswith("image/"):
            raise PartError(
                f"{at}.url",
                f"is a data URL of {file.media_type}: an image_url part carries an image; send a PDF "
                "or text file as a file part",
            )
        return file
    if not isinstance(inner, dict):
        raise PartError(at, 'must be an object: {"file_data": <data URL>, "filename"} or {"file_id"}')
    _only(inner, FILE_KEYS, at)
    if ("file_data" in inner) == ("file_id" in inner):
        raise PartError(
            at, "must carry either file_data (a data URL, with filename) or file_id (an upload's id)"
        )
    if "file_id" in inner:
        if inner.get("filename") is not None:
            raise PartError(
                f"{at}.filename",
                "is not read with file_id: an upload keeps the name it was uploaded with",
            )
        return read_attachment_id(inner["file_id"], f"{at}.file_id")
    filename = read_filename(inner.get("filename"), f"{at}.filename")
    if not is_data_url(inner["file_data"]):
        raise PartError(
            f"{at}.file_data",
            "must be a data URL (data:<media type>;base64,<the file's bytes>)",
            BAD_DATA_URL,
        )
    return inline_file(inner["file_data"], f"{at}.file_data", filename=filename)


def _tool_problem(item: dict[str, Any], where: str, tools: bool) -> Problem | None:
    if tools and item.get("role") == "function":
        return Problem(
            f"{where}.role",
            "is function: the legacy function role is not supported, send the result as a tool message "
            '({"role": "tool", "tool_call_id": …, "content": …})',
            TOOLS,
        )
    if tools and item.get("function_call"):
        return Problem(
            f"{where}.function_call",
            "is a legacy function call: it is not supported, send the calls as tool_calls",
            TOOLS,
        )
    if tools and item.get("tool_calls") and item.get("role") != "assistant":
        return Problem(f"{where}.tool_calls", "may only be sent on an assistant message (the calls it made)")
    if tools:
        return _audio_problem(item, where)
    if item.get("role") in TOOL_ROLES:
        return Problem(
            f"{where}.role",
            f"is {item['role']}: tool calling is not supported yet, send no tool results",
            TOOLS,
        )
    for key in TOOL_KEYS:
        if item.get(key):
            return Problem(
                f"{where}.{key}",
                "is a tool call: tool calling is not supported yet, send no tool calls",
                TOOLS,
            )
    return _audio_problem(item, where)


def _audio_problem(item: dict[str, Any], where: str) -> Problem | None:
    if item.get("audio"):
        return Problem(
            f"{where}.audio", "is audio: attachments are not supported yet, send text", ATTACHMENTS
        )
    return None


def _read_calls(raw: Any, where: str) -> tuple[ToolCall, ...] | Problem:
    """An assistant message's ``tool_calls`` (OpenAI's shape; ``[]`` or absent: no calls)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return Problem(f"{where}.tool_calls", f"must be a list of calls such as {CALL_SHAPE}")
    calls: list[ToolCall] = []
    for n, call in enumerate(raw):
        at = f"{where}.tool_calls[{n}]"
        if not isinstance(call, dict):
            return Problem(at, f"must be a call such as {CALL_SHAPE}")
        kind = call.get("type", "function")
        if kind != "function":
            return Problem(f"{at}.type", f"is {kind!r}: only function calls are supported", TOOLS)
        function = call.get("function")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > CALL_ID_LENGTH:
            return Problem(f"{at}.id", f"must be the call's id (1 to {CALL_ID_LENGTH} characters)")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return Problem(f"{at}.function", f"must name the called function, as in {CALL_SHAPE}")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            return Problem(f"{at}.function.arguments", "must be the arguments' JSON text (a string)")
        if any(earlier.id == call_id for earlier in calls):
            return Problem(f"{at}.id", f"repeats the id {call_id!r}: each call needs an id of its own")
        calls.append(ToolCall(call_id, function["name"], arguments))
    return tuple(calls)


@dataclass(slots=True)
class _OpenCalls:
    """The calls of the newest assistant message that made some, and the results read for them."""

    where: str  # "messages[3]"
    calls: dict[str, str]  # call id -> the tool's name
    results: list[ToolResult] = field(default_factory=list)
    broken: bool = False  # its calls could not be read: its results are not checked either

    def unanswered(self) -> list[str]:
        answered = {result.call_id for result in self.results}
        return [call_id for call_id in self.calls if call_id not in answered]

    def problem(self) -> Problem | None:
        """A call left without its result (OpenAI refuses such a transcript, so do we)."""
        missing = [] if self.broken else self.unanswered()
        if not missing:
            return None
        return Problem(
            f"{self.where}.tool_calls",
            f"has calls without a result ({', '.join(missing)}): follow it with one tool message per "
            'call ({"role": "tool", "tool_call_id": …, "content": …})',
            TOOL_RESULTS,
        )


def _read_result(
    item: dict[str, Any], where: str, text_parts: bool, open_calls: _OpenCalls | None, attachments: bool
) -> ToolResult | Problem:
    """A ``role: "tool"`` message as the result of one call of the assistant message it follows."""
    call_id = item.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        return Problem(f"{where}.tool_call_id", "must be the id of the call this result answers")
    output = _text(item.get("content"), text_parts, where, "tool" if attachments else None)
    if isinstance(output, Problem):
        return output
    if open_calls is None:
        return Problem(
            where,
            f"is the result of the call {call_id!r} but does not follow an assistant message with "
            "tool_calls: send tool messages right after the assistant message whose calls they answer",
            TOOL_RESULTS,
        )
    if open_calls.broken:
        return ToolResult(call_id, output)
    if call_id not in open_calls.calls:
        return Problem(
            where,
            f"answers the call {call_id!r}, which {open_calls.where} did not make (its calls: "
            f"{', '.join(open_calls.calls)})",
            TOOL_RESULTS,
        )
    if any(result.call_id == call_id for result in open_calls.results):
        return Problem(
            where, f"is a second result for the call {call_id!r}: send one result per call"
        )  # invalid_input, as the turn core words two results for one call (docs/tools.md)
    return ToolResult(call_id, output, name=open_calls.calls[call_id])


def read_messages(
    raw: Any,
    *,
    text_parts: bool = True,
    roles: dict[str, str] = ROLES,
    tools: bool = False,
    attachments: bool = False,
) -> MessageList:
    """The messages of ``raw``; entries with a problem are left out and their problems listed.

    ``text_parts``: a content may also be a list of ``{"type": "text", "text"}`` parts (joined).
    ``attachments``: a user message's ``image_url`` and ``file`` parts are its files, not refused.
    ``tools``: assistant ``tool_calls`` and ``tool`` messages are read (consecutive tool messages
    become one :class:`ChatMessage` ``tool`` holding their results in order), not refused.
    """
    if not isinstance(raw, list) or not raw:
        problem = Problem("messages", "must be a non-empty array of {role, content}")
        return MessageList(None, (), (problem,))
    problems: list[Problem] = []
    system: list[str] = []
    messages: list[ChatMessage] = []
    open_calls: _OpenCalls | None = None  # tools: the calls the next tool messages answer
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "must be an object with role and content"))
            continue
        if tools and item.get("role") == "tool":
            result = _read_result(item, where, text_parts, open_calls, attachments)
            if isinstance(result, Problem):
                problems.append(result)
            else:
                open_calls.results.append(result)  # type: ignore[union-attr]
            continue
        if open_calls is not None:  # the results of its calls end here
            messages.extend(_results_message(open_calls))
            problems.extend(p for p in (open_calls.problem(),) if p is not None)
            open_calls = None
        unsupported = _tool_problem(item, where, tools)
        if unsupported is not None:
            problems.append(unsupported)
            continue
        role = roles.get(item.get("role")) if isinstance(item.get("role"), str) else None
        calls = _read_calls(item.get("tool_calls"), where) if tools and role == "assistant" else ()
        content = item.get("content")
        if calls and content is None:
            content = ""  # an assistant message that only called tools (or a problem of its calls)
        files_of = (role or "unknown") if attachments else None
        read = _content(content, text_parts, where, files_of)
        text, files = (read, ()) if isinstance(read, Problem) else read
        if role is None:
            kinds = "system, user, assistant or tool" if tools else "system, user or assistant"
            problems.append(Problem(f"{where}.role", f"must be {kinds}"))
        for problem in (text, calls):
            if isinstance(problem, Problem):
                problems.append(problem)
        if isinstance(calls, Problem):
            open_calls = _OpenCalls(where, {}, broken=True)
        if role is None or isinstance(text, Problem) or isinstance(calls, Problem):
            continue
        if role == "system":
            system.append(text)  # type: ignore[arg-type]
        else:
            messages.append(ChatMessage(role, text, calls, attachments=files))  # type: ignore[arg-type]
        if calls:
            open_calls = _OpenCalls(where, {call.id: call.name for call in calls})
    if open_calls is not None:
        messages.extend(_results_message(open_calls))
        problems.extend(p for p in (open_calls.problem(),) if p is not None)
    return MessageList("\n\n".join(system) if system else None, tuple(messages), tuple(problems))


def _results_message(open_calls: _OpenCalls) -> list[ChatMessage]:
    """The tool messages read after an assistant message's calls, as one ``tool`` message."""
    return [ChatMessage("tool", "", tool_results=tuple(open_calls.results))] if open_calls.results else []
