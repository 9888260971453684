"""The Vercel AI SDK's UI message stream (protocol ``v1``): a turn's events as ``UIMessageChunk`` s.

One encoder serves both transports: SSE for ``DefaultChatTransport`` (``data: <chunk>`` frames,
``data: [DONE]`` at the end, the turn's seq on the ``id:`` line) and the WebSocket chat transport
(one chunk per ``chunk`` frame, numbered by the transport). Chunks carry only the keys the SDK
documents, because the 5.0 clients validate them strictly (an extra key fails the whole stream):

- ``start`` (``messageId`` = the UI message the answer is: our answer's id, or for a tool loop's
  continuation the id of the loop's first answer, the message the client already holds; and
  ``messageMetadata``: session key, user message id, provider, model), ``start-step``: one model
  call is one step;
- ``text-start`` / ``text-delta`` (``delta``) / ``text-end``: the text said before the calls;
- ``tool-input-start`` (``toolCallId``, ``toolName``), ``tool-input-delta`` (``inputTextDelta``: a
  fragment of the arguments' JSON text), ``tool-input-available`` (``input``: the parsed arguments,
  or their text when it does not parse) per call, once the model's stream has ended;
- ``data-artifact`` (``id``, ``data``: position, language, filename, content) per code block;
- ``message-metadata`` with ``usage`` (input, output, total tokens, and whether estimated);
- ``finish-step`` and ``finish`` (``messageMetadata``: ``finishReason`` — ``tool-calls`` when the
  client's tools are to run — and ``responseId``) for a complete answer; an ``error``
  (``errorText``: the provider's reason) for a failed one and ``abort`` for one that was stopped,
  each after the text part is closed.

``finish`` carries the finish reason in its metadata, not as ai 7's ``finishReason`` key: 5.0's
strict schema refuses that key, and one stream serves both. A continuation never resends the
results the client just sent (no ``tool-output-available``): the client holds them already
(``addToolResult`` set them), the SDK's own server sends none either, and a reader without the
earlier parts (a resume in another tab) would fail on an output for a call it never saw.

Encoding depends on the events alone, so a replay of the same events gives the same chunks: the
WebSocket transport's ``sequence`` is the chunk's position, exact across processes and resumes.
"""

from __future__ import annotations

from typing import Any

import orjson

from conversations.wire.sse import sse_frame

CONTENT_TYPE = "text/event-stream"
# The header that tells the SDK which stream protocol the body speaks, and the streaming headers.
HEADERS = {"x-vercel-ai-ui-message-stream": "v1", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = sse_frame(b"[DONE]")

# The SDK's finish reasons (``finish`` carries ours in its metadata: 5.0.0 has no finishReason key).
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
}


def text_part_id(message_id: str, n: int = 0) -> str:
    return f"text-{message_id}" if n == 0 else f"text-{message_id}-{n}"


def tool_input(event: dict[str, Any]) -> Any:
    """A whole call's input: its parsed arguments, or their text when they are not JSON (the
    client sees what the model produced and may answer with an error)."""
    if event.get("input") is not None:
        return event["input"]
    try:
        return orjson.loads(event["arguments"]) if event["arguments"] else {}
    except orjson.JSONDecodeError:
        return event["arguments"]


class UIMessageEncoder:
    """Stateful, one per stream: :meth:`chunks` turns one event (dict form) into its chunks.

    ``ui_message_id``: the id the ``start`` chunk gives the client's message, when it is not the
    answer's own (a tool loop's continuation goes on in the message the client already holds).
    """

    def __init__(self, ui_message_id: str | None = None) -> None:
        self.ui_message_id = ui_message_id
        self.text_open: str | None = None
        self.text_parts = 0
        self.calls: set[str] = set()

    def chunks(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event["type"]
        if kind == "started":
            metadata = {
                "sessionKey": event["session_key"],
                "userMessageId": event["user_message_id"],
                "provider": event["provider"],
                "model": event["model"],
            }
            message_id = self.ui_message_id or event["message_id"]
            return [
                {"type": "start", "messageId": message_id, "messageMetadata": metadata},
                {"type": "start-step"},
            ]
        if kind == "delta":
            if not event["text"]:
                return []
            out = []
            if self.text_open is None:
                self.text_open = text_part_id(event["message_id"], self.text_parts)
                self.text_parts += 1
                out.append({"type": "text-start", "id": self.text_open})
            out.append({"type": "text-delta", "id": self.text_open, "delta": event["text"]})
            return out
        if kind == "tool_call_start":
            return [*self._close_text(), *self._call_started(event["call_id"], event["name"])]
        if kind == "tool_call_delta":
            if not event["arguments"]:
                return []
            fragment = event["arguments"]
            return [{"type": "tool-input-delta", "toolCallId": event["call_id"], "inputTextDelta": fragment}]
        if kind == "tool_call_done":
            return [
                *self._close_text(),
                *self._call_started(event["call_id"], event["name"]),
                {
                    "type": "tool-input-available",
                    "toolCallId": event["call_id"],
                    "toolName": event["name"],
                    "input": tool_input(event),
                },
            ]
        if kind == "artifact":
            data = {k: event[k] for k in ("position", "language", "filename", "content")}
            return [
                {
                    "type": "data-artifact",
                    "id": f"artifact-{event['message_id']}-{event['position']}",
                    "data": data,
                }
            ]
        if kind == "usage":
            usage = {
                "inputTokens": event["input_tokens"],
                "outputTokens": event["output_tokens"],
                "totalTokens": event["total_tokens"],
                "estimated": event["estimated"],
            }
            return [{"type": "message-metadata", "messageMetadata": {"usage": usage}}]
        if kind == "completed":
            metadata = {
                "finishReason": FINISH_REASONS.get(event["finish_reason"], "other"),
                "responseId": event["response_id"] or None,
            }
            return [
                *self._close_text(),
                {"type": "finish-step"},
                {"type": "finish", "messageMetadata": metadata},
            ]
        if kind == "failed":
            if event["status"] == "interrupted" and event["code"] in ("stopped", "disconnected"):
                return [*self._close_text(), {"type": "finish-step"}, {"type": "abort"}]
            return [*self._close_text(), {"type": "error", "errorText": event["message"]}]
        return []

    def _call_started(self, call_id: str, name: str) -> list[dict[str, Any]]:
        """``tool-input-start`` the first time a call is seen (a call's start event comes first; a
        call made whole without one still gets its start, which the SDK's parts need)."""
        if call_id in self.calls:
            return []
        self.calls.add(call_id)
        return [{"type": "tool-input-start", "toolCallId": call_id, "toolName": name}]

    def _close_text(self) -> list[dict[str, Any]]:
        if self.text_open is None:
            return []
        part, self.text_open = self.text_open, None
        return [{"type": "text-end", "id": part}]


class UIMessageSSE:
    """The SSE body of ``DefaultChatTransport``: every chunk a ``data:`` frame, the event's seq as ``id:``."""

    def __init__(self, ui_message_id: str | None = None) -> None:
        self.encoder = UIMessageEncoder(ui_message_id)

    def encode(self, event: dict[str, Any]) -> bytes:
        seq = event.get("seq")
        return b"".join(sse_frame(orjson.dumps(chunk), id=seq) for chunk in self.encoder.chunks(event))


def error_stream(message: str) -> list[bytes]:
    """A refusal as a stream the SDK surfaces as its error (for requests already answered 200)."""
    return [sse_frame(orjson.dumps({"type": "error", "errorText": message})), DONE]
