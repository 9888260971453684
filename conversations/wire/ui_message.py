"""The Vercel AI SDK's UI message stream (protocol ``v1``): a turn's events as ``UIMessageChunk`` s.

One encoder serves both transports: SSE for ``DefaultChatTransport`` (``data: <chunk>`` frames,
``data: [DONE]`` at the end, the turn's seq on the ``id:`` line) and the WebSocket chat transport
(one chunk per ``chunk`` frame, numbered by the transport). Chunks carry only the keys the SDK
documents, because the 5.0 clients validate them strictly (an extra key fails the whole stream):

- ``start`` (``messageId`` = our answer's id, so the client's message is the stored one, and
  ``messageMetadata``: session key, user message id, provider, model), ``start-step``;
- ``text-start`` / ``text-delta`` (``delta``) / ``text-end``, one text part per answer;
- ``data-artifact`` (``id``, ``data``: position, language, filename, content) per code block;
- ``message-metadata`` with ``usage`` (input, output, total tokens, and whether estimated);
- ``finish-step`` and ``finish`` (``messageMetadata``: ``finishReason``, ``responseId``) for a
  complete answer; an ``error`` (``errorText``: the provider's reason) for a failed one and
  ``abort`` for one that was stopped, each after the text part is closed.

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


def text_part_id(message_id: str) -> str:
    return f"text-{message_id}"


class UIMessageEncoder:
    """Stateful, one per stream: :meth:`chunks` turns one event (dict form) into its chunks."""

    def __init__(self) -> None:
        self.text_open: str | None = None

    def chunks(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event["type"]
        if kind == "started":
            metadata = {
                "sessionKey": event["session_key"],
                "userMessageId": event["user_message_id"],
                "provider": event["provider"],
                "model": event["model"],
            }
            return [
                {"type": "start", "messageId": event["message_id"], "messageMetadata": metadata},
                {"type": "start-step"},
            ]
        if kind == "delta":
            if not event["text"]:
                return []
            out = []
            if self.text_open is None:
                self.text_open = text_part_id(event["message_id"])
                out.append({"type": "text-start", "id": self.text_open})
            out.append({"type": "text-delta", "id": self.text_open, "delta": event["text"]})
            return out
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

    def _close_text(self) -> list[dict[str, Any]]:
        if self.text_open is None:
            return []
        part, self.text_open = self.text_open, None
        return [{"type": "text-end", "id": part}]


class UIMessageSSE:
    """The SSE body of ``DefaultChatTransport``: every chunk a ``data:`` frame, the event's seq as ``id:``."""

    def __init__(self) -> None:
        self.encoder = UIMessageEncoder()

    def encode(self, event: dict[str, Any]) -> bytes:
        seq = event.get("seq")
        return b"".join(sse_frame(orjson.dumps(chunk), id=seq) for chunk in self.encoder.chunks(event))


def error_stream(message: str) -> list[bytes]:
    """A refusal as a stream the SDK surfaces as its error (for requests already answered 200)."""
    return [sse_frame(orjson.dumps({"type": "error", "errorText": message})), DONE]
