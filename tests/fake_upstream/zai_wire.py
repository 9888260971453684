"""Z.AI (GLM) wire shapes for ``POST /api/paas/v4/chat/completions`` (as read by zai-sdk 0.2.3).

Stream: OpenAI-like ``data:`` chunks with ``role`` in every delta, one chunk per piece, then a last chunk
with ``finish_reason`` (``stop`` / ``length``), an empty content delta and ``usage`` (always sent, no
``stream_options`` needed), then ``data: [DONE]``. The usage has ``prompt_tokens_details.cached_tokens``
/ ``completion_tokens_details.reasoning_tokens`` only with a ``cached=`` / ``reasoning=`` directive.
Errors: ``{"error":{"code":"1302","message":...}}`` with the platform's string codes.

Tool calls (when to call which tool: :mod:`.scenario`; tools and results in the Chat Completions
shape), as Z.AI streams them. Ids look like Z.AI's, ``call_-<19 digits>`` (:func:`zai_call_id`).

* Without ``tool_stream``: each call whole in ONE chunk already marked ``finish_reason:
  "tool_calls"``, ``{"delta":{"tool_calls":[{"id","index","type":"function","function":{"name",
  "arguments"}}]}}`` (the arguments whole), one chunk per call; then the closing chunk
  (``finish_reason: "tool_calls"``, empty content, the usage) and ``[DONE]``. A client that stops
  at the first finish reason loses the later calls.
* With ``tool_stream: true`` (and ``stream``): call ``i``'s header ``{"delta":{"role":"assistant",
  "tool_calls":[{"id","index":i,"type":"function","function":{"name","arguments":""}}]}}``, then its
  three argument fragments ``{"tool_calls":[{"index":i,"function":{"arguments":…}}]}``, no finish
  reason until the closing chunk.
* ``tool_choice`` other than ``"auto"`` is a 400 (``1210``): Z.AI documents auto only.
* ``drop:N`` counts each whole call (or each header and fragment) as a chunk. Non-streamed:
  ``message.tool_calls`` whole (with ``index``), ``content`` null (or the text, with ``text_first``).
* A request whose last message is a ``tool`` result is answered with
  :func:`~.scenario.expected_tool_reply` text.

Images: OpenAI's ``image_url`` parts, whose ``url`` may be an http(s) URL, a data URL, or the bare
base64 zai-sdk sends (it strips the data URL's prefix); no ``file`` part (:mod:`.openai_parts`).
A malformed part is a 400 ``1210``. Received images are listed before the reply (:mod:`.attachments`).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import orjson

from .exchange import Plan, Turn, Wire, WireError
from .openai_parts import chat_received
from .openai_wire import chat_turn, content_text, with_attachments
from .scenario import PlannedCall

ZAI_CODES = {400: "1210", 401: "1000", 429: "1302", 500: "500", 503: "1305"}


def zai_error(status: int, message: str) -> dict[str, Any]:
    """Z.AI error body: string ``code`` and ``message`` only."""
    return {"error": {"code": ZAI_CODES.get(status, str(status)), "message": message}}


def zai_call_id(call: PlannedCall) -> str:
    """The Z.AI-looking id (``call_-`` and 19 digits) of a planned call: deterministic."""
    digest = hashlib.sha256(call.id.encode()).hexdigest()
    return f"call_-{int(digest[:16], 16) % 10**19:019d}"


def _tool_outputs(messages: list[Any]) -> list[str] | None:
    """The contents of the trailing ``tool`` messages, in order; None when the last message is not one."""
    outputs: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        outputs.append(content_text(message.get("content")))
    return outputs[::-1] or None


class ZaiWire(Wire):
    """Z.AI chat completions, streaming and not."""

    def parse(self, body: dict[str, Any], path_params: dict[str, str]) -> Turn:
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        turn = with_attachments(
            chat_turn(body), lambda: chat_received(messages, zai=True), lambda s, m, p, c: zai_error(s, m)
        )
        choice = body.get("tool_choice")
        if choice is not None and choice != "auto":
            raise WireError(400, zai_error(400, f"Invalid tool_choice {choice!r}: only auto is supported."))
        turn.tool_outputs = _tool_outputs(messages)
        last = messages[-1] if messages else None
        tools = body.get("tools")
        if isinstance(tools, list) and isinstance(last, dict) and last.get("role") == "user":
            turn.tools, turn.tool_choice = tools, choice
        turn.extra["tool_stream"] = body.get("tool_stream") is True and turn.stream
        return turn

    def error_body(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        return zai_error(status, message)

    @staticmethod
    def _usage(plan: Plan) -> dict[str, Any]:
        """Reasoning tokens count in ``completion_tokens``; each detail only with its directive."""
        output = plan.output_tokens + (plan.reasoning or 0)
        usage: dict[str, Any] = {"prompt_tokens": plan.input_tokens, "completion_tokens": output}
        if plan.cached is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": plan.cached_tokens}
        if plan.reasoning is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": plan.reasoning}
        usage["total_tokens"] = plan.input_tokens + output
        return usage

    @staticmethod
    def _new_id() -> str:
        return time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:16]

    def stream_events(self, plan: Plan) -> tuple[list[bytes], list[bytes], list[bytes]]:
        base: dict[str, Any] = {
            "id": self._new_id(),
            "created": int(time.time()),
            "model": plan.turn.model,
            "choices": None,
        }

        def chunk(content: str) -> bytes:
            base["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": content}}]
            return b"data: " + orjson.dumps(base) + b"\n\n"

        events = [chunk(p) for p in plan.pieces]
        for call in plan.calls:
            events += self._call_events(base, call, plan.turn.extra.get("tool_stream", False))
        final = {
            **base,
            "choices": [
                {"index": 0, "finish_reason": plan.finish, "delta": {"role": "assistant", "content": ""}}
            ],
            "usage": self._usage(plan),
        }
        return [], events, [b"data: " + orjson.dumps(final) + b"\n\n", b"data: [DONE]\n\n"]

    @staticmethod
    def _call_events(base: dict[str, Any], call: PlannedCall, fragments: bool) -> list[bytes]:
        """A whole call in one chunk marked ``tool_calls``; or (``tool_stream``) its header and fragments."""

        def event(choice: dict[str, Any]) -> bytes:
            return b"data: " + orjson.dumps({**base, "choices": [{"index": 0, **choice}]}) + b"\n\n"

        header = {"id": zai_call_id(call), "index": call.index, "type": "function"}
        if not fragments:
            whole = {**header, "function": {"name": call.name, "arguments": call.arguments}}
            return [event({"finish_reason": "tool_calls", "delta": {"tool_calls": [whole]}})]
        opening = {**header, "function": {"name": call.name, "arguments": ""}}
        events = [event({"delta": {"role": "assistant", "tool_calls": [opening]}})]
        for fragment in call.fragments:
            piece = {"index": call.index, "function": {"arguments": fragment}}
            events.append(event({"delta": {"role": "assistant", "tool_calls": [piece]}}))
        return events

    def full_body(self, plan: Plan) -> dict[str, Any]:
        rid = self._new_id()
        return {
            "id": rid,
            "request_id": rid,
            "created": int(time.time()),
            "model": plan.turn.model,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": plan.finish,
                    "message": self._message(plan),
                }
            ],
            "usage": self._usage(plan),
        }

    @staticmethod
    def _message(plan: Plan) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": plan.text if plan.pieces or not plan.calls else None,
        }
        if plan.calls:
            message["tool_calls"] = [
                {
                    "id": zai_call_id(call),
                    "index": call.index,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in plan.calls
            ]
        return message
