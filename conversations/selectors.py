"""Reads, each scoped to an owner: another owner's objects are never reachable by id alone."""

from __future__ import annotations

from conversations.models import Conversation, Message


def conversation_for_owner(owner_id: int | None, session_key: str) -> Conversation | None:
    return Conversation.objects.filter(owner_id=owner_id, session_key=session_key).first()


def message_for_owner(owner_id: int | None, session_key: str, message_id: str) -> Message | None:
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, conversation__owner_id=owner_id, conversation__session_key=session_key)
        .first()
    )


def streaming_message_for_owner(owner_id: int | None, session_key: str) -> Message | None:
    """The answer of this session still being generated, if any."""
    return (
        Message.objects.filter(
            conversation__owner_id=owner_id,
            conversation__session_key=session_key,
            role=Message.Role.ASSISTANT,
            status=Message.Status.STREAMING,
        )
        .order_by("-created_at")
        .first()
    )
