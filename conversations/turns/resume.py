"""Resume: the events of a turn a client missed, from the replay buffer or, once it expired, the stored answer."""

from __future__ import annotations

from typing import Any

from conversations.db import run_db
from conversations.models import Message
from conversations.selectors import message_for_owner
from conversations.turns.replay_buffer import BufferUnavailable, get_replay_buffer
from conversations.turns.running import running_jobs
from conversations.turns.stored_replay import stored_turn_events


class ResumeError(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


async def owned_message(owner_id: int | None, session_key: str, message_id: str) -> Message:
    try:
        message = await run_db(message_for_owner, owner_id, session_key, message_id)
    except Exception:  # a malformed id is the same as an unknown one
        message = None
    if message is None or message.role != Message.Role.ASSISTANT:
        raise ResumeError("not_found", "No answer with this id in this session.", 404)
    return message


async def missed_events(
    owner_id: int | None, session_key: str, message_id: str, after_seq: int, *, message: Message | None = None
) -> list[dict[str, Any]]:
    """Events with seq > ``after_seq``; a stored snapshot (``snapshot: true``) when the buffer has expired.

    An empty list for a running turn whose first events are not buffered yet: they arrive live.
    """
    message = message or await owned_message(owner_id, session_key, message_id)
    job = running_jobs.get(message_id)
    if job is not None:
        # Running in this process: its own record is exact and current (the replay buffer lags by
        # up to a publishing interval); no await between this read and the caller's next step.
        return job.events[max(0, after_seq) :]
    finished = message.status not in (Message.Status.STREAMING, Message.Status.PENDING)
    try:
        buffered = await get_replay_buffer().read_after(message_id, after_seq)
    except BufferUnavailable:
        if not finished:
            raise ResumeError(
                "resume_unavailable",
                "The resume buffer (Redis) is unreachable: retry in a moment, or read the answer from history "
                "when it completes.",
                503,
            ) from None
        buffered = None
    if buffered is not None:
        return buffered
    if not finished:
        return []
    stored = await run_db(stored_turn_events, message_id)
    return [{**event.to_dict(), "snapshot": True} for event in stored]
