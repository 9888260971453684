"""OpenAI Responses API encoding for /v1/responses: the ``response`` object and its stream events.

Pure functions of a turn's events (in their dict form: live, from a job's record, the replay
buffer or a stored answer's replay) or of a stored answer's fields. The stream's
``sequence_number`` counts this protocol's own events from 0, derived only from the turn's
events, so encoding the same turn again gives the same numbers: a resume (``starting_after``)
re-encodes from the first event and skips what the client has. The official ``openai`` SDK
parses every object and event into its typed classes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from conversations.wire.sse import sse_frame

#: Our finish reasons that leave an answer ``incomplete``, and OpenAI's reason for it.
INCOMPLETE_FINISH = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(message_id: str) -> str:
    """A response's id: its answer's (the assistant message's) id, as OpenAI spells ids."""
    return "resp_" + message_id.replace("-", "")


def item_id(message_id: str) -> str:
    """The id of a message item (the answer's output, or a turn's input)."""
    return "msg_" + message_id.replace("-", "")


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


@dataclass(frozen=True, slots=True)
class AnswerState:
    """An answer as a response shows it; ``status`` is OpenAI's."""

    status: str  # queued, in_progress, completed, incomplete, cancelled, failed
    text: str = ""
    usage: dict[str, int] | None = None  # input_tokens, output_tokens, total_tokens
    error: dict[str, str] | None = None  # code, message (OpenAI's codes)
    incomplete_reason: str | None = None
    model: str | None = None  # who answered, when known


def answer_state(
    status: str,
    text: str,
    *,
    finish_reason: str = "",
    error_code: str = "",
    error_message: str = "",
    usage: dict[str, int] | None = None,
    model: str | None = None,
) -> AnswerState:
    """OpenAI's view of one of our answer states (``pending``, ``streaming``, ``complete``,
    ``interrupted``, ``failed``): a stop is ``cancelled``, a cut-off answer ``incomplete``
    (``max_output_tokens``, ``content_filter``, or our code: ``disconnected``, ``server_shutdown``)."""
    kwargs: dict[str, Any] = {"text": text, "usage": usage, "model": model}
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


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def output_item(message_id: str, status: str, text: str | None) -> dict[str, Any]:
    """The answer as a ``message`` output item; ``text`` None: no content part yet."""
    return {
        "id": item_id(message_id),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [] if text is None else [_text_part(text)],
    }


def _item_status(status: str) -> str:
    return {"completed": "completed", "in_progress": "in_progress", "queued": "in_progress"}.get(
        status, "incomplete"
    )


def response_object(shell: ResponseShell, state: AnswerState) -> dict[str, Any]:
    """A ``response`` object; its single ``message`` item once there is text or an ending."""
    message_id = message_id_of(shell.id) or ""
    show_item = bool(state.text) or state.status in ("completed", "incomplete")
    output = [output_item(message_id, _item_status(state.status), state.text)] if show_item else []
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
        "parallel_tool_calls": True,
        "previous_response_id": shell.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": shell.temperature,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": _usage(state.usage),
        "user": None,
    }


class ResponseEventEncoder:
    """Stateful: one per stream. ``encode`` takes a turn event (dict form) and returns the SSE
    bytes of this protocol's events for it, leaving out those numbered ``starting_after`` or less."""

    def __init__(self, shell: ResponseShell, *, starting_after: int = -1) -> None:
        self.shell, self.starting_after = shell, starting_after
        self._next = 0
        self._parts: list[str] = []
        self._usage: dict[str, int] | None = None
        self._model: str | None = None
        self._message_id = message_id_of(shell.id) or ""

    def _event(self, kind: str, **body: Any) -> bytes:
        number, self._next = self._next, self._next + 1
        if number <= self.starting_after:
            return b""
        return sse_frame(orjson.dumps({"type": kind, "sequence_number": number, **body}), event=kind)

    def _response(self, state: AnswerState) -> dict[str, Any]:
        return response_object(self.shell, state)

    def _where(self) -> dict[str, Any]:
        return {"item_id": item_id(self._message_id), "output_index": 0, "content_index": 0}

    def encode(self, event: dict[str, Any]) -> bytes:
        kind = event["type"]
        if kind == "started":
            self._model = event.get("model") or None
            first = "queued" if self.shell.background else "in_progress"
            return b"".join(
                (
                    self._event("response.created", response=self._response(self._state(first))),
                    self._event("response.in_progress", response=self._response(self._state("in_progress"))),
                    self._event(
                        "response.output_item.added",
                        output_index=0,
                        item=output_item(self._message_id, "in_progress", None),
                    ),
                    self._event("response.content_part.added", **self._where(), part=_text_part("")),
                )
            )
        if kind == "delta":
            self._parts.append(event["text"])
            return self._event(
                "response.output_text.delta", **self._where(), delta=event["text"], logprobs=[]
            )
        if kind == "usage":
            self._usage = {k: event[k] for k in ("input_tokens", "output_tokens", "total_tokens")}
            return b""
        if kind in ("completed", "failed"):
            return self._end(event)
        return b""  # artifacts: the text already holds them

    def _state(self, status: str) -> AnswerState:
        return AnswerState(status, "".join(self._parts), self._usage, model=self._model)

    def _end(self, event: dict[str, Any]) -> bytes:
        text = event.get("content") or "".join(self._parts)
        if event["type"] == "completed":
            state = answer_state(
                "complete",
                text,
                finish_reason=event["finish_reason"],
                usage=self._usage,
                model=event["model"],
            )
        else:
            state = answer_state(
                event["status"],
                text,
                error_code=event["code"],
                error_message=event["message"],
                usage=self._usage,
                model=self._model,
            )
        terminal = {"completed": "response.completed", "failed": "response.failed"}.get(
            state.status, "response.incomplete"
        )
        item = output_item(self._message_id, _item_status(state.status), text)
        return b"".join(
            (
                self._event("response.output_text.done", **self._where(), text=text, logprobs=[]),
                self._event("response.content_part.done", **self._where(), part=_text_part(text)),
                self._event("response.output_item.done", output_index=0, item=item),
                self._event(terminal, response=self._response(state)),
            )
        )
