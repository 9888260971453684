"""Starting an AI SDK chat turn: the UI message ids of its request resolved to stored messages.

And the other way: which UI message a stored answer is. The SDK keeps a tool loop in one assistant
message (the call, the client's results, the answer after them: one message of several steps),
so an answer to a ``tool`` message belongs to the UI message of the answer that made the calls;
the loop's first answer (the one answering the user) names it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from conversations.codecs.ai_sdk import UIChatTurn
from conversations.db import run_db
from conversations.errors import NotFound
from conversations.models import Message
from conversations.namespaces import require_native_key
from conversations.selectors import latest_answer_for_owner, streaming_message_for_owner, ui_message_for_owner
from conversations.turns.request import TurnRequest

MAX_LOOP_ROUNDS = 1000  # a bound on the walk up a tool loop (each round: a tool message and an answer)


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
        return turn.request  # a new message, or tool results: nothing to look up
    return await run_db(_resolved, turn)


def ui_message_id(answer: Message) -> str:
    """The UI message ``answer`` is part of: its own id, or, when it answers tool results, the id
    of the first answer of its tool loop (up the chain answer ← tool message ← answer …)."""
    current_id, parent_id = str(answer.pk), answer.parent_id
    for _ in range(MAX_LOOP_ROUNDS):
        tool = Message.objects.filter(pk=parent_id, role=Message.Role.TOOL).values_list("parent_id").first()
        caller = (
            tool
            and Message.objects.filter(pk=tool[0], role=Message.Role.ASSISTANT)
            .values_list("pk", "parent_id")
            .first()
        )
        if not caller:
            break
        current_id, parent_id = str(caller[0]), caller[1]
    return current_id


@dataclass(frozen=True, slots=True)
class RunningAnswer:
    """The answer a chat is generating: its id, and the id of the UI message it is part of."""

    message_id: str
    ui_message_id: str


def _running_answer(owner_id: int | None, chat_id: str) -> RunningAnswer | None:
    message = streaming_message_for_owner(owner_id, chat_id)
    return RunningAnswer(str(message.pk), ui_message_id(message)) if message is not None else None


async def running_answer(owner_id: int | None, chat_id: str) -> RunningAnswer | None:
    """The chat's answer being generated, if any (404 for a key the native API cannot reach)."""
    require_native_key(owner_id, chat_id)
    return await run_db(_running_answer, owner_id, chat_id)
