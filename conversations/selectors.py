"""Reads, each scoped to an owner: another owner's objects are never reachable by id alone."""

from __future__ import annotations

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from conversations import search
from conversations.models import Artifact, Conversation, Message
from conversations.namespaces import natively_reachable


def conversation_for_owner(owner_id: int | None, session_key: str) -> Conversation | None:
    """For the native edges: a mount's session is not reachable there without an owner."""
    if not natively_reachable(owner_id, session_key):
        return None
    return Conversation.objects.filter(owner_id=owner_id, session_key=session_key).first()


def message_for_owner(owner_id: int | None, session_key: str, message_id: str) -> Message | None:
    if not natively_reachable(owner_id, session_key):
        return None
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, conversation__owner_id=owner_id, conversation__session_key=session_key)
        .first()
    )


def _answers_for_owner(owner_id: int | None, session_key: str):
    """The session's answers, newest first (none for a mount's session without an owner)."""
    if not natively_reachable(owner_id, session_key):
        return Message.objects.none()
    return Message.objects.filter(
        conversation__owner_id=owner_id, conversation__session_key=session_key, role=Message.Role.ASSISTANT
    ).order_by("-created_at")


def streaming_message_for_owner(owner_id: int | None, session_key: str) -> Message | None:
    """The answer of this session still being generated, if any."""
    return _answers_for_owner(owner_id, session_key).filter(status=Message.Status.STREAMING).first()


def ui_message_for_owner(owner_id: int | None, session_key: str, ui_id: str) -> Message | None:
    """A message the AI SDK names by its UI id: our id (answers carry it), or a user message's
    client id (the id the client gave the user message it sent)."""
    if not natively_reachable(owner_id, session_key):
        return None
    messages = Message.objects.filter(conversation__owner_id=owner_id, conversation__session_key=session_key)
    try:
        by_pk = messages.filter(pk=ui_id).first()
    except Exception:  # not a UUID: a client id only
        by_pk = None
    return by_pk or messages.filter(client_message_id=ui_id).first()


def latest_answer_for_owner(owner_id: int | None, session_key: str) -> Message | None:
    return _answers_for_owner(owner_id, session_key).first()


def session_list_for_owner(
    owner_id: int | None,
    *,
    q: str = "",
    provider: str = "",
    model: str = "",
    created_after=None,
    created_before=None,
):
    """The owner's sessions; their counters and last-message preview are columns of their rows.

    ``q`` keeps the list's order (newest activity first, the same cursor): a search is a filter.
    """
    sessions = Conversation.objects.filter(owner_id=owner_id)
    if q:
        sessions = _matching(sessions, q)
    if provider:
        sessions = sessions.filter(provider=provider)
    if model:
        sessions = sessions.filter(model=model)
    if created_after is not None:
        sessions = sessions.filter(created_at__gte=created_after)
    if created_before is not None:
        sessions = sessions.filter(created_at__lt=created_before)
    return sessions


def _matching(sessions, q: str):
    """Sessions whose title contains ``q`` or that hold a message matching it.

    On PostgreSQL a message matches ``websearch_to_tsquery(TEXT_SEARCH_CONFIG, q)`` through the
    expression index of conversations/search.py. The owner filter runs first and the message test
    is an ``EXISTS`` per session, which PostgreSQL plans either way: for a rare word, the matching
    messages' sessions once from the index (a hashed subplan); for a common one, each of the
    owner's newest sessions until the page is full. Elsewhere: a substring match, no index.
    """
    if connection.vendor == "postgresql":
        messages = Message.objects.alias(document=search.content_vector()).filter(
            document=search.websearch_query(q)
        )
    else:
        messages = Message.objects.filter(content__icontains=q)
    return sessions.filter(Q(title__icontains=q) | Exists(messages.filter(conversation_id=OuterRef("pk"))))


def session_for_owner(owner_id: int | None, session_key: str):
    if not natively_reachable(owner_id, session_key):
        return None
    return session_list_for_owner(owner_id).filter(session_key=session_key).first()


def message_list_for_session(conversation: Conversation, *, role: str = "", status: str = ""):
    messages = conversation.messages.prefetch_related("artifacts")
    if role:
        messages = messages.filter(role=role)
    if status:
        messages = messages.filter(status=status)
    return messages


def message_branch(conversation: Conversation, leaf_id: str) -> list[Message]:
    """The messages from the first one down to ``leaf_id`` along parent links, oldest first."""
    by_id = {str(m.pk): m for m in conversation.messages.prefetch_related("artifacts")}
    chain: list[Message] = []
    current = by_id.get(str(leaf_id))
    while current is not None and current not in chain:
        chain.append(current)
        current = by_id.get(str(current.parent_id)) if current.parent_id else None
    return list(reversed(chain))


def artifact_list_for_session(conversation: Conversation, *, message_id: str | None = None):
    artifacts = Artifact.objects.filter(conversation=conversation)
    if message_id is not None:
        artifacts = artifacts.filter(message_id=message_id)
    return artifacts
