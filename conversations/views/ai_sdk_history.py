"""``GET /api/ai-sdk/chat/{id}/messages``: a chat's stored messages as ``useChat``'s ``UIMessage[]``.

A reloaded page gives ``useChat`` these as its initial ``messages`` (then ``resume: true`` picks up
an answer still being generated): the chat's current branch, the newest message's, oldest first,
folded as :mod:`conversations.wire.ui_history` does. Callers and ownership as the SDK's resume
(``GET …/stream``): the native API's caller rule, and a chat the caller does not own is ``404``
exactly as one that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from conversations.db import run_db
from conversations.edge.http_errors import HttpError, error_response
from conversations.errors import NotFound, TurnRejected
from conversations.models import Message
from conversations.namespaces import require_native_key
from conversations.selectors import conversation_for_owner
from conversations.turns.parts import shown_parts
from conversations.views.auth import request_owner_id
from conversations.wire.ui_history import ui_messages

FIELDS = ("id", "role", "status", "client_message_id", "parent_id", "content", "parts")


def _branch(owner_id: int | None, chat_id: str) -> list[dict[str, Any]] | None:
    """The chat's newest message's branch, oldest first (``None``: no such chat for this caller)."""
    conversation = conversation_for_owner(owner_id, chat_id)
    if conversation is None:
        return None
    rows = list(
        Message.objects.filter(conversation=conversation).order_by("created_at", "id").values(*FIELDS)
    )
    by_id = {row["id"]: row for row in rows}
    branch: list[dict[str, Any]] = []
    seen: set[Any] = set()
    current = rows[-1] if rows else None
    while current is not None and current["id"] not in seen:
        seen.add(current["id"])
        branch.append({**current, "parts": shown_parts(current["content"], current["parts"])})
        current = by_id.get(current["parent_id"])
    branch.reverse()
    return branch


async def chat_messages(request: HttpRequest, chat_id: str) -> HttpResponse:
    try:
        owner_id = await request_owner_id(request)
        require_native_key(owner_id, chat_id)
        branch = await run_db(_branch, owner_id, chat_id)
        if branch is None:
            raise NotFound("No chat with this id: start it with POST /api/ai-sdk/chat.")
    except (HttpError, TurnRejected) as exc:
        return error_response(exc)
    return JsonResponse({"messages": ui_messages(branch)})
