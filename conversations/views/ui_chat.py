"""Starting an AI SDK chat turn: the UI message ids of its request resolved to stored messages."""

from __future__ import annotations

from dataclasses import replace

from conversations.codecs.ai_sdk import UIChatTurn
from conversations.db import run_db
from conversations.errors import NotFound
from conversations.selectors import latest_answer_for_owner, ui_message_for_owner
from conversations.turns.request import TurnRequest


def _resolved(turn: UIChatTurn) -> TurnRequest:
    request = turn.request
    owner_id, key = request.owner_id, request.session_key
    if turn.regenerate:
        target = ui_message_for_owner(owner_id, key, turn.target) if turn.target else None
        target = target or latest_answer_for_owner(owner_id, key)
        if target is None:
            raise NotFound("No answer to regenerate in this chat: send a message first.")
        return replace(request, regenerate_of=str(target.pk))
    if turn.target is not None:
        edited = ui_message_for_owner(owner_id, key, turn.target)
        if edited is not None and edited.role == "user":
            # the client replaced this message: a new version beside it, not a retry of it
            return replace(request, edit_of=str(edited.pk), client_message_id=None)
    return request


async def ui_chat_request(turn: UIChatTurn) -> TurnRequest:
    """The turn request to start (404 ``not_found`` when a regenerate names nothing stored)."""
    if not turn.regenerate and turn.target is None:
        return turn.request  # a new message: nothing to look up
    return await run_db(_resolved, turn)
