"""OpenAI ``chat.completion.chunk`` / ``chat.completion`` encoding for /v1/chat/completions.

The official ``openai`` SDK pointed at this server parses these unchanged. A tool call streams as
OpenAI streams one (``/work/shared/PROVIDER_WIRE.md``, "OpenAI Chat Completions"): a header delta
with the call's ``index``, ``id``, ``type`` and ``function.name`` (``arguments: ""``), then
``arguments`` fragments under the same ``index``, and ``finish_reason: "tool_calls"``; clients
(the SDK's stream helpers, LangChain, the AI SDK) accumulate the calls by ``index``.
"""

from __future__ import annotations

from typing import Any

import orjson

from conversations.events import (
    Completed,
    Delta,
    Failed,
    Started,
    ToolCallDelta,
    ToolCallStarted,
    TurnEvent,
    UsageReported,
)
from conversations.wire.sse import sse_frame

DONE = sse_frame(b"[DONE]")

FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls", "function_call"}


def _finish(reason: str) -> str:
    return reason if reason in FINISH_REASONS else "stop"


def _usage(event: UsageReported) -> dict[str, int]:
    return {
        "prompt_tokens": event.input_tokens,
        "completion_tokens": event.output_tokens,
        "total_tokens": event.total_tokens,
    }


def error_object(code: str, message: str) -> dict[str, Any]:
    kind = "rate_limit_error" if code == "rate_limited" else "api_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class ChatChunkEncoder:
    """Stateful: one per streamed response. ``encode`` returns the SSE bytes for an event (maybe none)."""

    def __init__(self, *, completion_id: str, model: str, created: int, include_usage: bool) -> None:
        self.completion_id, self.model, self.created = completion_id, model, created
        self.include_usage = include_usage
        self._usage: dict[str, int] | None = None
        self._role_sent = False  # the role is said once, on the first delta

    def _chunk(self, choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        body: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            body["usage"] = usage
        return sse_frame(orjson.dumps(body))

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    def encode(self, event: TurnEvent) -> bytes:
        if isinstance(event, Started):
            self._role_sent = True
            return self._chunk(self._choice({"role": "assistant", "content": ""}))
        if isinstance(event, Delta):
            return self._chunk(self._choice({"content": event.text}))
        if isinstance(event, ToolCallStarted):
            header = {
                "index": event.index,
                "id": event.call_id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            delta: dict[str, Any] = {} if self._role_sent else {"role": "assistant"}
            self._role_sent = True
            return self._chunk(self._choice({**delta, "content": None, "tool_calls": [header]}))
        if isinstance(event, ToolCallDelta):
            fragment = {"index": event.index, "function": {"arguments": event.arguments}}
            return self._chunk(self._choice({"tool_calls": [fragment]}))
        if isinstance(event, UsageReported):
            self._usage = _usage(event)
            return b""
        if isinstance(event, Completed):
            out = self._chunk(self._choice({}, _finish(event.finish_reason)))
            if self.include_usage:
                out += self._chunk([], self._usage)
            return out + DONE
        if isinstance(event, Failed):
            return sse_frame(orjson.dumps(error_object(event.code, event.message))) + DONE
        return b""


def chat_completion(
    summary: dict[str, Any], *, completion_id: str, model: str, created: int
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` from :func:`summarize_turn`'s result."""
    usage = summary.get("usage") or {}
    calls = summary.get("tool_calls") or []
    message: dict[str, Any] = {"role": "assistant", "content": summary["content"], "refusal": None}
    if calls:
        message["content"] = summary["content"] or None  # as OpenAI: null when it only called tools
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for call in calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(summary.get("finish_reason") or "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": usage.get("input_tokens", 0),
            "completion_tokens": usage.get("output_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        },
    }
