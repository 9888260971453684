"""Reads the dialects need, scoped to an owner (HackSoft style: entity first, keyword-only).

Kept beside the dialects rather than in :mod:`conversations.selectors` because only they map
their clients' ids back to stored conversations; each async wrapper is one thread hop.
"""

from __future__ import annotations

import uuid

from conversations.db import run_db
from conversations.models import Message


def session_key_for_answer(*, owner_id: int | None, message_id: str, key_prefix: str) -> str | None:
    """The session key of the conversation holding this assistant message, if the owner has it.

    Only conversations whose key starts with ``key_prefix`` count, so an id handed out by one
    dialect never continues a conversation of another.
    """
    try:
        uuid.UUID(message_id)
    except ValueError:
        return None
    return (
        Message.objects.filter(
            pk=message_id,
            role=Message.Role.ASSISTANT,
            conversation__owner_id=owner_id,
            conversation__session_key__startswith=key_prefix,
        )
        .values_list("conversation__session_key", flat=True)
        .first()
    )


async def asession_key_for_answer(*, owner_id: int | None, message_id: str, key_prefix: str) -> str | None:
    return await run_db(
        session_key_for_answer, owner_id=owner_id, message_id=message_id, key_prefix=key_prefix
    )
