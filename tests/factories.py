"""Small builders for test data."""

from __future__ import annotations

import itertools

from conversations.counters import sessions_recount
from conversations.models import Artifact, Conversation, Message

_seq = itertools.count(1)


def make_conversation(owner=None, **fields) -> Conversation:
    fields.setdefault("session_key", f"sess-{next(_seq)}")
    fields.setdefault("title", "A conversation")
    return Conversation.objects.create(owner=owner, **fields)


def make_message(conversation: Conversation, **fields) -> Message:
    fields.setdefault("role", Message.Role.USER)
    fields.setdefault("content", f"message {next(_seq)}")
    message = Message.objects.create(conversation=conversation, **fields)
    sessions_recount([conversation.pk])  # as every write that stores messages keeps the session's counters
    return message


def make_artifact(message: Message, **fields) -> Artifact:
    fields.setdefault("language", "python")
    fields.setdefault("content", "print('hi')\n")
    fields.setdefault("position", 0)
    return Artifact.objects.create(message=message, conversation=message.conversation, **fields)
