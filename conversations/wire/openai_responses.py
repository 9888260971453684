"""OpenAI Responses API shapes for /v1/responses: ids, the ``response`` object and its output items.

Pure functions of a turn's values (from its events, in their dict form, or from a stored answer's
fields). An answer's output is a ``message`` item with its text (when it said any, or when a text
answer ends) and one ``function_call`` item per tool call it made, in the order it made them: there
is no finish reason in this protocol, so ``status: "completed"`` with ``function_call`` items is how
a client knows to run its tools and send ``function_call_output`` items back. Item ids are derived
from the answer's id (``msg_<hex>``, ``fc_<hex>_<index>``), so every read of one answer names its
items alike. The stream's events are :mod:`conversations.wire.openai_response_events`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Our finish reasons that leave an answer ``incomplete``, and OpenAI's reason for it.
INCOMPLETE_FINISH = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(message_id: str) -> str:
    """A response's id: its answer's (the assistant message's) id, as OpenAI spells ids."""
    return "resp_" + message_id.replace("-", "")


def item_id(message_id: str) -> str:
    """The id of a message item (the answer's output, or a turn's input)."""
    return "msg_" + message_id.replace("-", "")


def call_item_id(message_id: str, index: int) -> str:
    """The id of the answer's ``index``-th ``function_call`` item (the events' ``item_id``)."""
    return f"fc_{message_id.replace('-', '')}_{index}"


def message_id_of(response: str) -> str | None:
    """The answer id a response id names, or None when it is not one of ours."""
    prefix, _, hexid = response.partition("_")
    if prefix != "resp" or len(hexid) != 32:
        return None
    try:
        return str(uuid.UUID(hex=hexid))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ResponseShell:
    """What a response shows beside its answer: its id, and what its request asked for."""

    id: str
    created_at: int
    model: str
    instructions: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    max_output_tokens: int | None = None
    background: bool = False
    previous_response_id: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)  # flat function tools, as OpenAI shows them
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True


@dataclass(frozen=True, slots=True)
class CallState:
    """One tool call of an answer as its ``function_call`` item shows it."""

    call_id: str
    name: str
    arguments: str
    status: str = "completed"  # in_progress, completed, incomplete (cut mid-arguments: never to run)


@dataclass(frozen=True, slots=True)
class AnswerState:
    """An answer as a response shows it; ``status`` is OpenAI's."""

    status: str  # queued, in_progress, completed, incomplete, cancelled, failed
    text: str = ""
    usage: dict[str, int] | None = None  # input_tokens, output_tokens, total_tokens
    error: dict[str, str] | None = None  # code, message (OpenAI's codes)
    incomplete_reason: str | None = None
    model: str | None = None  # who answered, when known
    calls: tuple[CallState, ...] = ()


def answer_state(
    status: str,
    text: str,
    *,
    finish_reason: str = "",
    error_code: str = "",
    error_message: str = "",
    usage: dict[str, int] | None = None,
    model: str | None = None,
    calls: tuple[CallState, ...] = (),
) -> AnswerState:
    """OpenAI's view of one of our answer states (``pending``, ``streaming``, ``complete``,
    ``interrupted``, ``failed``): a stop is ``cancelled``, a cut-off answer ``incomplete``
    (``max_output_tokens``, ``content_filter``, or our code: ``disconnected``, ``server_shutdown``).
    An answer that ended with tool calls is ``completed``: its ``function_call`` items say the rest."""
    kwargs: dict[str, Any] = {"text": text, "usage": usage, "model": model, "calls": calls}
    if status == "pending":
        return AnswerState("queued", **kwargs)
    if status == "streaming":
        return AnswerState("in_progress", **kwargs)
    if status == "complete":
        reason = INCOMPLETE_FINISH.get(finish_reason)
        return AnswerState("incomplete" if reason else "completed", incomplete_reason=reason, **kwargs)
    if status == "interrupted":
        if error_code == "stopped":
            return AnswerState("cancelled", **kwargs)
        return AnswerState("incomplete", incomplete_reason=error_code or "interrupted", **kwargs)
    code = "rate_limit_exceeded" if error_code == "rate_limited" else "server_error"
    return AnswerState("failed", error={"code": code, "message": error_message or error_code}, **kwargs)


def stored_calls(parts: Iterable[Mapping[str, Any]] | None, status: str) -> tuple[CallState, ...]:
    """The ``tool_call`` parts of a stored answer whose state is ``status`` (ours); a call cut
    mid-arguments is ``incomplete`` whatever the answer's state."""
    running = status in ("pending", "streaming")
    return tuple(
        CallState(
            part.get("id", ""),
            part.get("name", ""),
            part.get("arguments", ""),
            "incomplete" if part.get("incomplete") else "in_progress" if running else "completed",
        )
        for part in parts or ()
        if part.get("type") == "tool_call"
    )


def summary_calls(calls: Iterable[Mapping[str, Any]] | None) -> tuple[CallState, ...]:
    """The whole calls of a turn's summary (:func:`conversations.wire.summary.summarize_turn`)."""
    return tuple(CallState(c["id"], c["name"], c["arguments"]) for c in calls or ())


def running_state(events: Iterable[Mapping[str, Any]]) -> tuple[str, tuple[CallState, ...]]:
    """What a running answer has said so far, from its events: its text and its calls (in progress)."""
    text: list[str] = []
    calls: dict[int, list[Any]] = {}
    for event in events:
        kind = event["type"]
        if kind == "delta":
            text.append(event["text"])
        elif kind == "tool_call_start":
            calls[event["index"]] = [event["call_id"], event["name"], []]
        elif kind == "tool_call_delta" and event["index"] in calls:
            calls[event["index"]][2].append(event["arguments"])
    states = (CallState(c[0], c[1], "".join(c[2]), "in_progress") for _, c in sorted(calls.items()))
    return "".join(text), tuple(states)


def _usage(usage: dict[str, int] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage["input_tokens"],
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage["total_tokens"],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def output_item(message_id: str, status: str, text: str | None) -> dict[str, Any]:
    """The answer's text as a ``message`` output item; ``text`` None: no content part yet."""
    return {
        "id": item_id(message_id),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [] if text is None else [text_part(text)],
    }


def call_item(message_id: str, index: int, call: CallState) -> dict[str, Any]:
    """The answer's ``index``-th call as a ``function_call`` output item."""
    return {
        "id": call_item_id(message_id, index),
        "type": "function_call",
        "status": call.status,
        "arguments": call.arguments,
        "call_id": call.call_id,
        "name": call.name,
    }


def item_status(status: str) -> str:
    """A message item's status for a response's (OpenAI's) status."""
    return {"completed": "completed", "in_progress": "in_progress", "queued": "in_progress"}.get(
        status, "incomplete"
    )


def response_object(shell: ResponseShell, state: AnswerState) -> dict[str, Any]:
    """A ``response`` object: its ``message`` item once there is text (or a text answer ended),
    then its ``function_call`` items."""
    message_id = message_id_of(shell.id) or ""
    ended = state.status in ("completed", "incomplete") and not state.calls
    output = [output_item(message_id, item_status(state.status), state.text)] if state.text or ended else []
    output += [call_item(message_id, index, call) for index, call in enumerate(state.calls)]
    return {
        "id": shell.id,
        "object": "response",
        "created_at": shell.created_at,
        "status": state.status,
        "background": shell.background,
        "error": state.error,
        "incomplete_details": {"reason": state.incomplete_reason} if state.incomplete_reason else None,
        "instructions": shell.instructions,
        "max_output_tokens": shell.max_output_tokens,
        "metadata": shell.metadata,
        "model": state.model or shell.model,
        "output": output,
        "output_text": state.text,
        "parallel_tool_calls": shell.parallel_tool_calls,
        "previous_response_id": shell.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": shell.temperature,
        "text": {"format": {"type": "text"}},
        "tool_choice": shell.tool_choice,
        "tools": shell.tools,
        "top_p": None,
        "truncation": "disabled",
        "usage": _usage(state.usage),
        "user": None,
    }
