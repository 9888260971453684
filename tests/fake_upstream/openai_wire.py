"""OpenAI wire shapes: Chat Completions and the Responses API (as read by openai 3.57).

Images and files in either wire are checked and read by :mod:`.openai_parts` (a malformed part is
OpenAI's 400 naming it) and listed before the reply (:mod:`.attachments`).

Chat stream: first delta ``{"role":"assistant","content":"","refusal":null}``, one chunk per piece,
a ``delta:{}`` chunk with the finish reason, with ``stream_options.include_usage`` every chunk carries
``"usage":null`` plus a final ``"choices":[]`` usage chunk; ends with ``data: [DONE]``.

Chat tool calls (when to call which tool: :mod:`.scenario`), as OpenAI streams them: call ``i``'s
header delta ``{"tool_calls":[{"index":i,"id","type":"function","function":{"name","arguments":""}}]}``
— the response's first chunk merges the role into it, ``{"role":"assistant","content":null,
"tool_calls":[…],"refusal":null}``, unless ``text_first`` sent the role chunk and the text before —
then three ``{"tool_calls":[{"index":i,"function":{"arguments":fragment}}]}`` deltas; calls one after
the other, never interleaved; the finish reason is ``tool_calls``. ``drop:N``/``stall:N`` count
content chunks as for text: each text piece, each call header and each fragment is one (the role
chunk of a text-first reply is not), so ``[[tools=f fault=drop:2]]`` cuts the stream after the
header and the first fragment. Non-streamed: ``message.tool_calls`` whole, ``content`` null (or the
text, with ``text_first``). A request whose last message is a ``tool`` result is answered with
:func:`~.scenario.expected_tool_reply` text.

Responses stream: ``event:``-typed SSE with sequence numbers ``response.created`` →
``response.in_progress`` → ``output_item.added`` → ``content_part.added`` → ``output_text.delta`` (N) →
``output_text.done`` → ``content_part.done`` → ``output_item.done`` → ``response.completed`` (or
``response.incomplete`` when ``max_output_tokens`` truncated it); no ``[DONE]``. Responses with
``store`` not false are remembered with their transcript (and calls) for ``previous_response_id``.
Responses tool calls: ``function_call`` output items, answered by ``function_call_output`` items
(:class:`OpenAIResponsesWire`).

Usage breakdowns (``prompt_tokens_details``/``completion_tokens_details``, Responses
``input_tokens_details``/``output_tokens_details``) are sent only with a ``cached=``/``reasoning=``
directive (real OpenAI always sends them, zeros included; OpenAI-compatible servers often do not).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from .attachments import ATTACHMENT_TOKENS, Received
from .exchange import Plan, Turn, Wire, WireError
from .openai_parts import PartError, chat_received, responses_received
from .scenario import count_words, parse_directives
from .state import StoredResponse, UpstreamState

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}
_ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
    """``{"error":{"message","type","param","code"}}`` as OpenAI sends it."""
    return {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": code if code is not None else _ERROR_CODES.get(status),
        }
    }


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string or a list of text-ish parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def chat_turn(body: dict[str, Any]) -> Turn:
    """Parse an OpenAI-style chat body (shared by OpenAI and Z.AI)."""
    messages = body.get("messages") or []
    texts = [content_text(m.get("content")) for m in messages if isinstance(m, dict)]
    user = next(
        (
            content_text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    fmt = (body.get("response_format") or {}).get("type")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return Turn(
        model=str(body.get("model", "")),
        user_text=user,
        input_words=count_words(*texts),
        stream=body.get("stream") is True,
        json_mode=fmt in ("json_object", "json_schema"),
        max_tokens=int(max_tokens) if max_tokens else None,
        extra={"include_usage": bool((body.get("stream_options") or {}).get("include_usage"))},
    )


def with_attachments(turn: Turn, read: Any, error: Any) -> Turn:
    """``turn`` with the images and files ``read()`` finds (each also counted as input tokens);
    a malformed part is the provider's 400, its body made by ``error(status, message, param, code)``."""
    try:
        received: list[Received] = read()
    except PartError as err:
        raise WireError(400, error(400, err.message, err.param, err.code)) from None
    turn.attachments = received
    turn.input_words += ATTACHMENT_TOKENS * len(received)
    return turn


def _openai_part_error(status: int, message: str, param: str, code: str) -> dict[str, Any]:
    return openai_error(status, message, param=param, code=code)


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _tool_outputs(messages: list[Any]) -> list[str] | None:
    """The contents of the trailing ``tool`` messages, in order; None when the last message is not one."""
    outputs: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        outputs.append(content_text(message.get("content")))
    return outputs[::-1] or None


class OpenAIChatWire(Wire):
    """``POST /v1/chat/completions``."""

    def parse(self, body: dict[str, Any], path_params: dict[str, str]) -> Turn:
        messages = body.get("messages") or []
        turn = with_attachments(chat_turn(body), lambda: chat_received(messages), _openai_part_error)
        turn.tool_outputs = _tool_outputs(messages) if isinstance(messages, list) else None
        last = messages[-1] if isinstance(messages, list) and messages else None
        tools = body.get("tools")
        if isinstance(tools, list) and isinstance(last, dict) and last.get("role") == "user":
            turn.tools = tools
            turn.tool_choice = body.get("tool_choice")
            turn.parallel_tool_calls = body.get("parallel_tool_calls")
        return turn

    def error_body(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        return openai_error(status, message)

    @staticmethod
    def usage(plan: Plan) -> dict[str, Any]:
        """Reasoning tokens count in ``completion_tokens``; the details only with a breakdown directive."""
        output = plan.output_tokens + (plan.reasoning or 0)
        usage: dict[str, Any] = {
            "prompt_tokens": plan.input_tokens,
            "completion_tokens": output,
            "total_tokens": plan.input_tokens + output,
        }
        if plan.has_breakdown:
            usage["prompt_tokens_details"] = {"cached_tokens": plan.cached_tokens or 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {
                "reasoning_tokens": plan.reasoning or 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        return usage

    def stream_events(self, plan: Plan) -> tuple[list[bytes], list[bytes], list[bytes]]:
        with_usage = plan.turn.extra.get("include_usage", False)
        base: dict[str, Any] = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": plan.turn.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            "choices": None,
        }
        if with_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            base["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            return _sse(base)

        role_first = not plan.calls or bool(plan.pieces)
        prelude = [chunk({"role": "assistant", "content": "", "refusal": None})] if role_first else []
        events = [chunk({"content": p}) for p in plan.pieces]
        for call in plan.calls:
            header = {
                "index": call.index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            if events or prelude:
                events.append(chunk({"tool_calls": [header]}))
            else:
                delta = {"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}
                events.append(chunk(delta))
            events += [
                chunk({"tool_calls": [{"index": call.index, "function": {"arguments": fragment}}]})
                for fragment in call.fragments
            ]
        trailer = [chunk({}, plan.finish)]
        if with_usage:
            base["choices"] = []
            base["usage"] = self.usage(plan)
            trailer.append(_sse(base))
        trailer.append(b"data: [DONE]\n\n")
        return prelude, events, trailer

    def full_body(self, plan: Plan) -> dict[str, Any]:
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": plan.turn.model,
            "choices": [
                {
                    "index": 0,
                    "message": self._message(plan),
                    "logprobs": None,
                    "finish_reason": plan.finish,
                }
            ],
            "usage": self.usage(plan),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    @staticmethod
    def _message(plan: Plan) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": plan.text if plan.pieces or not plan.calls else None,
            "refusal": None,
            "annotations": [],
        }
        if plan.calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in plan.calls
            ]
        return message


MESSAGE_ROLES = ("user", "assistant", "system", "developer")


def _input_items(raw: Any) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """A Responses ``input`` (string or items) as transcript entries — ``(role, text)`` for a
    message, ``("function_call", call_id)``, ``("function_call_output", call_id)`` — and each
    output's text by call id."""
    if isinstance(raw, str):
        return [("user", raw)], {}
    entries: list[tuple[str, str]] = []
    outputs: dict[str, str] = {}
    for item in raw or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" and item.get("role"):
            entries.append((str(item["role"]), content_text(item.get("content"))))
        elif kind in ("function_call", "function_call_output"):
            entries.append((kind, str(item.get("call_id", ""))))
            if kind == "function_call_output":
                outputs[str(item.get("call_id", ""))] = content_text(item.get("output"))
    return entries, outputs


def _unpaired_call(transcript: list[tuple[str, str]]) -> WireError | None:
    """OpenAI's 400 for an output no call before it made, or a call left without its output."""
    open_calls: list[str] = []
    for kind, call_id in transcript:
        if kind == "function_call":
            open_calls.append(call_id)
        elif kind == "function_call_output":
            if call_id not in open_calls:
                message = f"No tool call found for function call output with call_id {call_id}."
                return WireError(400, openai_error(400, message, param="input"))
            open_calls.remove(call_id)
    if open_calls:
        message = f"No tool output found for function call {open_calls[0]}."
        return WireError(400, openai_error(400, message, param="input"))
    return None


def _chat_shaped_tools(tools: Any, choice: Any) -> tuple[list[Any], Any]:
    """Flat Responses tools and choice in the Chat shape :func:`~.scenario.plan_tool_calls` reads."""
    nested = [
        {"type": "function", "function": tool}
        for tool in tools
        if isinstance(tool, dict) and tool.get("type") == "function"
    ]
    if isinstance(choice, dict) and choice.get("type") == "function":
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    return nested, choice


class OpenAIResponsesWire(Wire):
    """``POST /v1/responses`` (+ ``GET /v1/responses/{id}`` via :meth:`lookup`).

    Tool calls as OpenAI streams them (``PROVIDER_WIRE.md`` "OpenAI Responses"): a request whose
    input ends with a user message and that offers flat ``tools`` (``tool_choice`` not ``none``)
    gets ``function_call`` output items, the calls :func:`~.scenario.plan_tool_calls` picks (same
    directives, ids and arguments as the chat wire): ``output_item.added`` (``in_progress``,
    ``arguments: ""``), three ``function_call_arguments.delta`` fragments,
    ``function_call_arguments.done``, ``output_item.done`` (``completed``), one call after the other,
    after the message item when ``text_first``; then ``response.completed``. Each call's added event
    and each fragment is a content chunk for ``drop:N``/``stall:N`` (the other events ride with the
    next chunk, or close the stream). ``[[reasoning_item=1]]`` puts a ``reasoning`` item first
    (output index 0), as reasoning models do. An input ending with ``function_call_output`` items is
    answered with :func:`~.scenario.expected_tool_reply` of their outputs. Every output must answer a
    call made before it in the transcript (the previous responses' and this input), and every call
    must be answered: otherwise OpenAI's 400 (``No tool call found for function call output with
    call_id …`` / ``No tool output found for function call …``).
    """

    def __init__(self, state: UpstreamState) -> None:
        self.state = state

    def error_body(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        return openai_error(status, message)

    def parse(self, body: dict[str, Any], path_params: dict[str, str]) -> Turn:
        prev_id = body.get("previous_response_id")
        history: list[tuple[str, str]] = []
        if prev_id:
            prev = self.state.get_response(str(prev_id))
            if prev is None:
                msg = f"Previous response with id '{prev_id}' not found."
                raise WireError(
                    400,
                    openai_error(400, msg, param="previous_response_id", code="previous_response_not_found"),
                )
            history = list(prev.transcript)
        current, outputs = _input_items(body.get("input"))
        unpaired = _unpaired_call(history + current)
        if unpaired is not None:
            raise unpaired
        instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else None
        messages = [(r, t) for r, t in history + current if r in MESSAGE_ROLES]
        user = next((t for r, t in reversed(messages) if r == "user"), "")
        fmt = ((body.get("text") or {}).get("format") or {}).get("type")
        max_tokens = body.get("max_output_tokens")
        turn = Turn(
            model=str(body.get("model", "")),
            user_text=user,
            input_words=count_words(instructions or "", *(t for _, t in messages), *outputs.values()),
            stream=body.get("stream") is True,
            json_mode=fmt in ("json_object", "json_schema"),
            max_tokens=int(max_tokens) if max_tokens else None,
            extra={"body": body, "transcript": history + current, "instructions": instructions},
        )
        trailing = []
        for kind, call_id in reversed(current):
            if kind != "function_call_output":
                break
            trailing.append(outputs[call_id])
        if trailing:
            turn.tool_outputs = trailing[::-1]
        with_attachments(turn, lambda: responses_received(body.get("input")), _openai_part_error)
        tools = body.get("tools")
        if isinstance(tools, list) and current and current[-1][0] == "user":
            turn.tools, turn.tool_choice = _chat_shaped_tools(tools, body.get("tool_choice"))
            turn.parallel_tool_calls = body.get("parallel_tool_calls")
        return turn

    def lookup(self, resp_id: str) -> dict[str, Any] | None:
        stored = self.state.get_response(resp_id)
        return stored.body if stored is not None else None

    def _response(self, plan: Plan, resp_id: str, status: str, output: list[Any]) -> dict[str, Any]:
        body = plan.turn.extra["body"]
        done = status != "in_progress"
        return {
            "id": resp_id,
            "object": "response",
            "created_at": plan.turn.extra.setdefault("created_at", int(time.time())),
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": plan.turn.extra["instructions"],
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": plan.turn.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True) is not False,
            "temperature": body.get("temperature", 1.0),
            "text": {
                "format": (body.get("text") or {}).get("format") or {"type": "text"},
                "verbosity": "medium",
            },
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self._usage(plan) if done else None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    @staticmethod
    def _usage(plan: Plan) -> dict[str, Any]:
        """Reasoning tokens count in ``output_tokens``; the details only with a breakdown directive."""
        output = plan.output_tokens + (plan.reasoning or 0)
        usage: dict[str, Any] = {"input_tokens": plan.input_tokens}
        if plan.has_breakdown:
            usage["input_tokens_details"] = {
                "cached_tokens": plan.cached_tokens or 0,
                "cache_write_tokens": 0,
            }
        usage["output_tokens"] = output
        if plan.has_breakdown:
            usage["output_tokens_details"] = {"reasoning_tokens": plan.reasoning or 0}
        usage["total_tokens"] = plan.input_tokens + output
        return usage

    @staticmethod
    def _items(plan: Plan) -> dict[str, Any]:
        """The output items, whole: ``reasoning`` (when asked for), ``message`` (unless the reply is
        only calls), ``function_call`` per call."""
        status = "completed" if plan.finish in ("stop", "tool_calls") else "incomplete"
        items: dict[str, Any] = {"status": status, "reasoning": None, "message": None, "calls": []}
        if parse_directives(plan.turn.user_text).extra.get("reasoning_item") not in (None, "0"):
            items["reasoning"] = {"id": "rs_" + uuid.uuid4().hex, "type": "reasoning", "summary": []}
        if plan.pieces or not plan.calls:
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": plan.text}
            items["message"] = {
                "id": "msg_" + uuid.uuid4().hex,
                "type": "message",
                "status": status,
                "content": [part],
                "role": "assistant",
            }
        for call in plan.calls:
            items["calls"].append(
                {
                    "id": "fc_" + uuid.uuid4().hex,
                    "type": "function_call",
                    "status": "completed",
                    "arguments": call.arguments,
                    "call_id": call.id,
                    "name": call.name,
                }
            )
        return items

    def _finalize(self, plan: Plan) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Id, output items and final response; stores it (unless ``store: false``)."""
        resp_id = "resp_" + uuid.uuid4().hex
        items = self._items(plan)
        output = [i for i in (items["reasoning"], items["message"]) if i] + items["calls"]
        final = self._response(plan, resp_id, items["status"], output)
        if final["store"]:
            transcript = [*plan.turn.extra["transcript"]]
            if items["message"]:
                transcript.append(("assistant", plan.text))
            transcript += [("function_call", call.id) for call in plan.calls]
            self.state.store_response(resp_id, StoredResponse(transcript, final))
        return resp_id, items, final

    def full_body(self, plan: Plan) -> dict[str, Any]:
        return self._finalize(plan)[2]

    def stream_events(self, plan: Plan) -> tuple[list[bytes], list[bytes], list[bytes]]:
        resp_id, items, final = self._finalize(plan)
        seq = iter(range(1 << 30))
        ordered: list[tuple[bytes, bool]] = []  # (event, is a content chunk), in stream order

        def ev(kind: str, content: bool = False, **fields: Any) -> None:
            payload = {"type": kind, "sequence_number": next(seq), **fields}
            ordered.append(
                (b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n", content)
            )

        started = self._response(plan, resp_id, "in_progress", [])
        ev("response.created", response=started)
        ev("response.in_progress", response=started)
        index = 0
        if items["reasoning"]:
            ev("response.output_item.added", output_index=index, item=items["reasoning"])
            ev("response.output_item.done", output_index=index, item=items["reasoning"])
            index += 1
        message = items["message"]
        if message:
            loc = {"item_id": message["id"], "output_index": index, "content_index": 0}
            empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            ev(
                "response.output_item.added",
                output_index=index,
                item={**message, "status": "in_progress", "content": []},
            )
            ev("response.content_part.added", **loc, part=empty_part)
            for piece in plan.pieces:
                ev("response.output_text.delta", True, **loc, delta=piece, logprobs=[])
            ev("response.output_text.done", **loc, text=plan.text, logprobs=[])
            ev("response.content_part.done", **loc, part=message["content"][0])
            ev("response.output_item.done", output_index=index, item=message)
            index += 1
        for call, item in zip(plan.calls, items["calls"], strict=True):
            where = {"item_id": item["id"], "output_index": index}
            ev(
                "response.output_item.added",
                True,
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for fragment in call.fragments:
                ev("response.function_call_arguments.delta", True, **where, delta=fragment)
            ev("response.function_call_arguments.done", **where, arguments=call.arguments)
            ev("response.output_item.done", output_index=index, item=item)
            index += 1
        ev("response.completed" if final["status"] == "completed" else "response.incomplete", response=final)
        return _split_chunks(ordered)


def _split_chunks(ordered: list[tuple[bytes, bool]]) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """``(prelude, one entry per content chunk, trailer)``: the events between two content chunks
    ride with the later one; those after the last close the stream."""
    prelude: list[bytes] | None = None
    events: list[bytes] = []
    pending: list[bytes] = []
    for data, content in ordered:
        if not content:
            pending.append(data)
            continue
        if prelude is None:
            prelude, pending = pending, []
        events.append(b"".join(pending) + data)
        pending = []
    return (pending, [], []) if prelude is None else (prelude, events, pending)
