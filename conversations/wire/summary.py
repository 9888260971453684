"""The whole turn as one JSON object (``Accept: application/json``), reduced from its events.

An answer that called tools gets ``tool_calls``: ``[{"id", "name", "arguments", "input"}]`` in the
order the model made them (``arguments`` the JSON text, ``input`` its parsed value or None), from
the ``tool_call_done`` events; the key is absent when it called none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conversations.events import (
    ArtifactReady,
    Completed,
    Delta,
    Failed,
    Started,
    ToolCallDone,
    TurnEvent,
    UsageReported,
)


def summarize_turn(events: Iterable[TurnEvent]) -> dict[str, Any]:
    summary: dict[str, Any] = {"artifacts": [], "usage": None, "error": None}
    parts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for event in events:
        if isinstance(event, Started):
            summary.update(
                message_id=event.message_id,
                user_message_id=event.user_message_id,
                session_key=event.session_key,
                conversation_id=event.conversation_id,
                provider=event.provider,
                model=event.model,
            )
        elif isinstance(event, Delta):
            parts.append(event.text)
        elif isinstance(event, ArtifactReady):
            summary["artifacts"].append(
                {
                    k: v
                    for k, v in event.to_dict().items()
                    if k in ("position", "language", "filename", "content")
                }
            )
        elif isinstance(event, ToolCallDone):
            calls[event.index] = {
                "id": event.call_id,
                "name": event.name,
                "arguments": event.arguments,
                "input": event.input,
            }
        elif isinstance(event, UsageReported):
            summary["usage"] = {
                "input_tokens": event.input_tokens,
                "output_tokens": event.output_tokens,
                "total_tokens": event.total_tokens,
                "estimated": event.estimated,
            }
        elif isinstance(event, Completed):
            summary.update(
                status="complete",
                content=event.content,
                finish_reason=event.finish_reason,
                response_id=event.response_id,
            )
        elif isinstance(event, Failed):
            summary.update(status=event.status, content=event.content, finish_reason="", response_id="")
            summary["error"] = {
                "code": event.code,
                "message": event.message,
                "retry_after": event.retry_after,
            }
    summary.setdefault("content", "".join(parts))
    if calls:
        summary["tool_calls"] = [calls[index] for index in sorted(calls)]
    return summary
