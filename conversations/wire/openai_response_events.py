"""The Responses API stream (``POST /v1/responses`` with ``stream: true``, and ``GET …?stream=true``).

Pure functions of a turn's events in their dict form (live, from a job's record, the replay buffer
or a stored answer's replay). ``sequence_number`` counts this protocol's own events from 0, derived
only from the turn's events, so encoding the same turn again gives the same numbers: a resume
(``starting_after``) re-encodes from the first event and skips what the client has, wherever N
falls (inside a call's arguments too). The official ``openai`` SDK parses every event into its
typed classes, and its stream helper (``responses.stream``) accumulates them.

Items come one after the other, as OpenAI streams them: the ``message`` item opens at the answer's
first text (output index 0) and closes when the first call begins; each call is a
``function_call`` item at the next output index — ``output_item.added`` (``in_progress``,
``arguments: ""``), its ``function_call_arguments.delta`` fragments, then, once the model's stream
has ended whole (the turn's ``tool_call_done``), ``function_call_arguments.done`` and
``output_item.done`` (``completed``). A call cut mid-arguments gets no done events: the terminal
response shows it ``incomplete``, never a call to run. A text answer, or an answer that said
nothing, has its message item opened and closed as before (the numbers of a text turn are those
it always had).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from conversations.wire.openai_responses import (
    AnswerState,
    CallState,
    ResponseShell,
    answer_state,
    call_item,
    call_item_id,
    item_id,
    item_status,
    message_id_of,
    output_item,
    response_object,
    text_part,
)
from conversations.wire.sse import sse_frame


@dataclass(slots=True)
class _Call:
    """A call being streamed: what its item shows, where it is in the output, whether it is whole."""

    call_id: str
    name: str
    output_index: int
    arguments: list[str] = field(default_factory=list)
    done: bool = False

    def state(self, status: str) -> CallState:
        return CallState(self.call_id, self.name, "".join(self.arguments), status)


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
        self._outputs = 0  # output indexes handed out
        self._message_index: int | None = None  # the message item's, once opened
        self._message_closed = False
        self._calls: dict[int, _Call] = {}  # by the call's index in the answer

    def _event(self, kind: str, **body: Any) -> bytes:
        number, self._next = self._next, self._next + 1
        if number <= self.starting_after:
            return b""
        return sse_frame(orjson.dumps({"type": kind, "sequence_number": number, **body}), event=kind)

    def _response(self, state: AnswerState) -> dict[str, Any]:
        return response_object(self.shell, state)

    def _where(self) -> dict[str, Any]:
        return {"item_id": item_id(self._message_id), "output_index": self._message_index, "content_index": 0}

    def encode(self, event: dict[str, Any]) -> bytes:
        kind = event["type"]
        if kind == "started":
            self._model = event.get("model") or None
            first = "queued" if self.shell.background else "in_progress"
            return self._event("response.created", response=self._response(self._state(first))) + self._event(
                "response.in_progress", response=self._response(self._state("in_progress"))
            )
        if kind == "delta":
            opened = self._open_message() if self._message_index is None else b""
            self._parts.append(event["text"])
            return opened + self._event(
                "response.output_text.delta", **self._where(), delta=event["text"], logprobs=[]
            )
        if kind == "tool_call_start":
            return self._close_message("completed") + self._start_call(event)
        if kind == "tool_call_delta":
            return self._call_fragment(event)
        if kind == "tool_call_done":
            return self._end_call(event)
        if kind == "usage":
            self._usage = {k: event[k] for k in ("input_tokens", "output_tokens", "total_tokens")}
            return b""
        if kind in ("completed", "failed"):
            return self._end(event)
        return b""  # artifacts: the text already holds them

    def _open_message(self) -> bytes:
        self._message_index, self._outputs = self._outputs, self._outputs + 1
        return self._event(
            "response.output_item.added",
            output_index=self._message_index,
            item=output_item(self._message_id, "in_progress", None),
        ) + self._event("response.content_part.added", **self._where(), part=text_part(""))

    def _close_message(self, status: str, text: str | None = None) -> bytes:
        if self._message_index is None or self._message_closed:
            return b""
        self._message_closed = True
        text = "".join(self._parts) if text is None else text
        item = output_item(self._message_id, status, text)
        return b"".join(
            (
                self._event("response.output_text.done", **self._where(), text=text, logprobs=[]),
                self._event("response.content_part.done", **self._where(), part=text_part(text)),
                self._event("response.output_item.done", output_index=self._message_index, item=item),
            )
        )

    def _call(self, event: dict[str, Any]) -> _Call:
        call = self._calls.get(event["index"])
        if call is None:  # its start is always first; a fragment without one still gets an item
            call = self._calls[event["index"]] = _Call(event["call_id"], event.get("name", ""), self._outputs)
            self._outputs += 1
        return call

    def _call_item(self, index: int, status: str) -> dict[str, Any]:
        return call_item(self._message_id, index, self._calls[index].state(status))

    def _start_call(self, event: dict[str, Any]) -> bytes:
        call = self._call(event)
        return self._event(
            "response.output_item.added",
            output_index=call.output_index,
            item=self._call_item(event["index"], "in_progress"),
        )

    def _call_fragment(self, event: dict[str, Any]) -> bytes:
        started = b"" if event["index"] in self._calls else self._start_call(event)
        call = self._calls[event["index"]]
        call.arguments.append(event["arguments"])
        return started + self._event(
            "response.function_call_arguments.delta",
            item_id=call_item_id(self._message_id, event["index"]),
            output_index=call.output_index,
            delta=event["arguments"],
        )

    def _end_call(self, event: dict[str, Any]) -> bytes:
        started = b"" if event["index"] in self._calls else self._start_call(event)
        call = self._calls[event["index"]]
        call.arguments, call.done = [event["arguments"]], True
        return (
            started
            + self._event(
                "response.function_call_arguments.done",
                item_id=call_item_id(self._message_id, event["index"]),
                output_index=call.output_index,
                arguments=event["arguments"],
            )
            + self._event(
                "response.output_item.done",
                output_index=call.output_index,
                item=self._call_item(event["index"], "completed"),
            )
        )

    def _calls_state(self) -> tuple[CallState, ...]:
        return tuple(
            self._calls[index].state("completed" if self._calls[index].done else "incomplete")
            for index in sorted(self._calls)
        )

    def _state(self, status: str) -> AnswerState:
        return AnswerState(status, "".join(self._parts), self._usage, model=self._model)

    def _end(self, event: dict[str, Any]) -> bytes:
        text = event.get("content") or "".join(self._parts)
        calls = self._calls_state()
        if event["type"] == "completed":
            state = answer_state(
                "complete",
                text,
                finish_reason=event["finish_reason"],
                usage=self._usage,
                model=event["model"],
                calls=calls,
            )
        else:
            state = answer_state(
                event["status"],
                text,
                error_code=event["code"],
                error_message=event["message"],
                usage=self._usage,
                model=self._model,
                calls=calls,
            )
        terminal = {"completed": "response.completed", "failed": "response.failed"}.get(
            state.status, "response.incomplete"
        )
        opened = self._open_message() if self._message_index is None and not self._calls else b""
        closed = self._close_message(item_status(state.status), text)
        return opened + closed + self._event(terminal, response=self._response(state))
