"""Where a turn's two writes run: natively async on PostgreSQL, through the ORM otherwise.

On PostgreSQL (unless ``TURN_DB_ASYNC=false``) the opening and closing writes go
through :mod:`conversations.turns.pg_writes`: no thread hop, no ORM, one round trip
each. Edits, regenerations, replies to an earlier answer, SQLite, and ``TURN_DB_ASYNC=false``
use the ORM versions in :mod:`conversations.turns.orm_writes`, which stay the reference. Both take
their rules from :mod:`conversations.turns.rules` and are checked against each other by
``tests/test_turn_store.py``.
"""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.db import connections

from conversations.db import retrying_while_database_down, run_db
from conversations.turns import orm_writes, pg_writes
from conversations.turns.rules import (
    TURN_SAVE_RETRY_SECONDS,
    ExistingAnswer,
    OpenedTurn,
    TurnOpening,
    TurnOutcome,
)


def native_enabled() -> bool:
    return bool(settings.TURN_DB_ASYNC) and connections["default"].vendor == "postgresql"


async def turn_open(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """Store the user message and a ``streaming`` answer (see :func:`orm_writes.turn_open`)."""
    if native_enabled() and not (opening.edit_of or opening.regenerate_of or opening.reply_to):
        return await pg_writes.turn_open(opening)
    return await run_db(orm_writes.turn_open, opening)


async def turn_finish(conversation_id: str, message_id: str, outcome: TurnOutcome) -> bool:
    """The closing write (see :func:`orm_writes.turn_finish`), retried while the database is down;
    whether the answer was closed."""
    if native_enabled():
        return await retrying_while_database_down(
            lambda: pg_writes.turn_finish(conversation_id, message_id, outcome), TURN_SAVE_RETRY_SECONDS
        )
    return await run_db(orm_writes.turn_finish, conversation_id, message_id, outcome)  # run_db retries it


# Closing writes run as tasks kept here, so a cancelled stream cannot cancel its own save.
_pending_closes: set[asyncio.Task] = set()


def turn_finish_detached(conversation_id: str, message_id: str, outcome: TurnOutcome) -> asyncio.Task:
    """The closing write as a task of its own, kept until done: cancelling its caller cannot stop it."""
    task = asyncio.ensure_future(turn_finish(conversation_id, message_id, outcome))
    _pending_closes.add(task)
    task.add_done_callback(_pending_closes.discard)
    return task


async def turn_finish_shielded(conversation_id: str, message_id: str, outcome: TurnOutcome) -> None:
    """Await the closing write; the write goes on if the caller is cancelled meanwhile."""
    await asyncio.shield(turn_finish_detached(conversation_id, message_id, outcome))
