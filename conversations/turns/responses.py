"""Reads and writes of the Responses API (``/v1/responses``) on stored answers, scoped to an owner.

A response is an answer (an assistant message); what its request asked for is kept in the
answer's ``request_options``. Its parts (the tool calls it made) and its new message's (a tool
message's results) are read with it: the response's ``function_call`` items and its input items. Deleting a response removes its exchange from the tree: the
answer, its user message once no other answer to it remains, and the replies that continued
from it are re-attached to the message before that exchange, so later branches keep the rest
of their history.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from conversations.counters import sessions_recount
from conversations.db import run_db
from conversations.errors import TurnInProgress
from conversations.models import Conversation, Message
from conversations.namespaces import natively_reachable

RUNNING = (Message.Status.STREAMING, Message.Status.PENDING)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An answer as the Responses API reads it (plain values: no ORM object leaves this module)."""

    message_id: str
    session_key: str
    status: str
    content: str
    model: str
    finish_reason: str
    error_code: str
    error_message: str
    input_tokens: int | None
    output_tokens: int | None
    created_at: float
    options: dict[str, Any]
    user_message_id: str | None
    user_content: str
    parts: list[dict[str, Any]] = field(default_factory=list)  # the answer's (its tool calls)
    user_role: str = Message.Role.USER  # or tool: the new message was a round's results
    user_parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def usage(self) -> dict[str, int] | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        inp, out = self.input_tokens or 0, self.output_tokens or 0
        return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}


def _answers(owner_id: int | None):
    return Message.objects.filter(role=Message.Role.ASSISTANT, conversation__owner_id=owner_id)


def response_for_owner(owner_id: int | None, message_id: str) -> StoredResponse | None:
    """The owner's answer with this id, or None (another owner's, a mount's, unknown or malformed)."""
    try:
        answer = _answers(owner_id).select_related("conversation", "parent").filter(pk=message_id).first()
    except Exception:  # a malformed id is an unknown one
        return None
    if answer is None or not natively_reachable(owner_id, answer.conversation.session_key):
        return None
    user = answer.parent
    return StoredResponse(
        message_id=str(answer.pk),
        session_key=answer.conversation.session_key,
        status=answer.status,
        content=answer.content,
        model=answer.model,
        finish_reason=answer.finish_reason,
        error_code=answer.error_code,
        error_message=answer.error_message,
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        created_at=answer.created_at.timestamp(),
        options=answer.request_options or {},
        user_message_id=str(user.pk) if user is not None else None,
        user_content=user.content if user is not None else "",
        parts=list(answer.parts or ()),
        user_role=user.role if user is not None else Message.Role.USER,
        user_parts=list(user.parts or ()) if user is not None else [],
    )


async def aresponse_for_owner(owner_id: int | None, message_id: str) -> StoredResponse | None:
    return await run_db(response_for_owner, owner_id, message_id)


def _store_options(message_id: str, options: dict[str, Any]) -> None:
    Message.objects.filter(pk=message_id).update(request_options=options)


async def response_options_store(message_id: str, options: dict[str, Any]) -> None:
    """Keep what the request asked for with its answer (read back by retrieve, cancel, input items)."""
    await run_db(_store_options, message_id, options)


@transaction.atomic
def response_delete(owner_id: int | None, message_id: str) -> bool:
    """Delete the owner's answer (see the module's docstring); False when there is no such answer.

    Raises :class:`TurnInProgress` while it is being generated (cancel or wait first).
    """
    try:
        answer = (
            _answers(owner_id)
            .select_for_update()
            .select_related("conversation")
            .filter(pk=message_id)
            .first()
        )
    except Exception:
        return False
    if answer is None or not natively_reachable(owner_id, answer.conversation.session_key):
        return False
    if answer.status in RUNNING:
        raise TurnInProgress(
            "This response is still being generated: cancel it (or wait for it) first.", message_id=message_id
        )
    user = Message.objects.filter(pk=answer.parent_id).first()
    before = user.parent_id if user is not None else None
    Message.objects.filter(parent_id=answer.pk).update(parent_id=before)
    if answer.response_id:  # the provider's chain ends at a deleted answer: the next turn sends history
        Conversation.objects.filter(pk=answer.conversation_id, last_response_id=answer.response_id).update(
            last_response_id=""
        )
    answer.delete()
    if user is not None and not Message.objects.filter(parent_id=user.pk).exists():
        user.delete()
    sessions_recount([answer.conversation_id])
    return True


async def aresponse_delete(owner_id: int | None, message_id: str) -> bool:
    return await run_db(response_delete, owner_id, message_id)


#: How long a cancel waits for the stopped answer's closing write before answering with what is stored.
SETTLE_SECONDS = 10.0


async def response_settled(owner_id: int | None, message_id: str) -> StoredResponse | None:
    """The answer once it is no longer being generated (a stop's closing write landed), or as it is
    after :data:`SETTLE_SECONDS`."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        stored = await aresponse_for_owner(owner_id, message_id)
        if stored is None or not stored.running or time.monotonic() >= deadline:
            return stored
        await asyncio.sleep(0.05)
