"""A stored answer as the event stream it produced, for idempotent retries and expired resume buffers."""

from __future__ import annotations

from conversations.events import (
    ArtifactReady,
    Completed,
    Delta,
    Failed,
    Started,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStarted,
    TurnEvent,
    UsageReported,
)
from conversations.models import Message


def stored_turn_events(message_id: str) -> list[TurnEvent]:
    """Started, one Delta with the stored text, each tool call whole (started, its arguments in
    one delta, done; a call cut mid-arguments is never done), artifacts, usage, and the terminal event."""
    message = Message.objects.select_related("conversation").get(pk=message_id)
    conversation = message.conversation
    mid = str(message.pk)
    seq = iter(range(1, 1_000_000))
    events: list[TurnEvent] = [
        Started(
            next(seq),
            mid,
            session_key=conversation.session_key,
            conversation_id=str(conversation.pk),
            user_message_id=str(message.parent_id or ""),
            provider=message.provider,
            model=message.model,
        )
    ]
    if message.role != Message.Role.ASSISTANT:
        return events
    if message.content:
        events.append(Delta(next(seq), mid, message.content))
    calls = [part for part in message.parts or () if part.get("type") == "tool_call"]
    for index, call in enumerate(calls):
        events.append(ToolCallStarted(next(seq), mid, index, call["id"], call["name"]))
        if call.get("arguments"):
            events.append(ToolCallDelta(next(seq), mid, index, call["id"], call["arguments"]))
    for index, call in enumerate(calls):
        if not call.get("incomplete"):
            events.append(
                ToolCallDone(
                    next(seq),
                    mid,
                    index,
                    call["id"],
                    call["name"],
                    call.get("arguments", ""),
                    call.get("input"),
                )
            )
    for artifact in message.artifacts.order_by("position"):
        events.append(
            ArtifactReady(
                next(seq), mid, artifact.position, artifact.language, artifact.filename, artifact.content
            )
        )
    inp, out = message.input_tokens or 0, message.output_tokens or 0
    events.append(UsageReported(next(seq), mid, inp, out, inp + out, message.usage_estimated))
    if message.status == Message.Status.COMPLETE:
        events.append(
            Completed(
                next(seq),
                mid,
                message.content,
                message.finish_reason,
                message.response_id,
                message.provider,
                message.model,
            )
        )
    else:
        events.append(
            Failed(next(seq), mid, message.status, message.error_code, message.error_message, message.content)
        )
    return events
