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
(``web_search_call``, ``mcp_call``…) is ``tools_not_supported``; a part that is not text
``attachments_not_supported``; never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conversations.codecs.messages import CALL_ID_LENGTH
from conversations.codecs.request_fields import ATTACHMENT_PARTS, ATTACHMENTS, TOOLS, tool_item
from conversations.edge.http_errors import HttpError
from providers.base import ChatMessage, ToolCall, ToolResult

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TEXT_PARTS = ("input_text", "output_text", "text")
TOOL_RESULTS = "invalid_tool_results"
ITEM_KINDS = "a message item (role user, assistant, system or developer), a function_call or a function_call_output item"

Item = dict[str, str]  # as stored for the input items list: {"role", "text"} or a tool item's fields


def _refusal(message: str, code: str = "invalid_input") -> HttpError:
    return HttpError(422, code, message, field="input")


def _parts_text(content: Any, where: str, what: str) -> str:
    """A string, or text parts joined; an attachment part is refused naming it."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ATTACHMENT_PARTS:
                raise _refusal(
                    f"{where}[{n}] is {kind}: attachments are not supported yet; send input_text only.",
                    ATTACHMENTS,
                )
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") in TEXT_PARTS]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    raise _refusal(f"{where} must be {what}.")


def _string(item: dict[str, Any], key: str, where: str, what: str, *, limit: int | None = None) -> str:
    value = item.get(key)
    if not isinstance(value, str) or (limit is not None and not 0 < len(value) <= limit):
        raise _refusal(f"{where}.{key} must be {what}.")
    return value


def read_item(item: Any, where: str) -> Item:
    """One item of ``input`` in its stored shape (see :data:`Item`)."""
    kind = item.get("type", "message") if isinstance(item, dict) else None
    if kind == "function_call":
        return {
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
    if kind == "function_call_output":
        call_id = _string(
            item, "call_id", where, "the id of the call this output answers", limit=CALL_ID_LENGTH
        )
        output = _parts_text(item.get("output"), f"{where}.output", "a string or input_text parts")
        return {"type": "function_call_output", "call_id": call_id, "output": output}
    if tool_item(kind):
        raise _refusal(
            f"{where} is a {kind} item: only function tools are supported (function_call and "
            "function_call_output items); built-in and MCP tools are not.",
            TOOLS,
        )
    if kind != "message" or item.get("role") not in ROLES:
        raise _refusal(f"{where} must be {ITEM_KINDS}.")
    return {
        "role": item["role"],
        "text": _parts_text(item.get("content"), f"{where}.content", "a string or input_text parts"),
    }


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
    items = [read_item(item, f"input[{n}]") for n, item in enumerate(raw)]
    system = [i["text"] for i in items if ROLES.get(i.get("role", "")) == "system"]
    if continued:
        return ResponseInput(items, system, _continued(items))
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
                messages.append(ChatMessage("user", item["text"]))
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


def _continued(items: list[Item]) -> tuple[ChatMessage, ...]:
    """With ``previous_response_id``: the new user message, or the outputs of the stored calls."""
    turn = [i for i in items if ROLES.get(i.get("role", "")) != "system"]
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
    return tuple(ChatMessage(ROLES[i["role"]], i["text"]) for i in turn)  # type: ignore[arg-type]
