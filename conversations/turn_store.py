"""Where a turn's two writes run: natively async on PostgreSQL, through the ORM otherwise.

On PostgreSQL (unless ``TURN_DB_ASYNC=false``) the opening and closing writes go
through :mod:`conversations.pg_turns`: no thread hop, no ORM, one round trip
each. Edits and regenerations, SQLite, and ``TURN_DB_ASYNC=false`` use the ORM
versions in :mod:`conversations.services`, which stay the reference. Both take their
rules from :mod:`conversations.turn_rules` and are checked against each other by
``tests/test_turn_store.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections

from conversations import pg_turns
from conversations.db import retrying_while_database_down, run_db
from conversations.services import turn_finish, turn_open
from conversations.turn_rules import (
    TURN_SAVE_RETRY_SECONDS,
    ExistingAnswer,
    OpenedTurn,
    TurnOpening,
    TurnOutcome,
)


def native_enabled() -> bool:
    return bool(settings.TURN_DB_ASYNC) and connections["default"].vendor == "postgresql"


async def open_turn(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """Store the user message and a ``streaming`` answer (see :func:`services.turn_open`)."""
    if native_enabled() and not (opening.edit_of or opening.regenerate_of):
        return await pg_turns.turn_open(opening)
    return await run_db(turn_open, opening)


async def finish_turn(conversation_id: str, message_id: str, outcome: TurnOutcome) -> bool:
    """The closing write (see :func:`services.turn_finish`), retried while the database is down;
    whether the answer was closed."""
    if native_enabled():
        return await retrying_while_database_down(
            lambda: pg_turns.turn_finish(conversation_id, message_id, outcome), TURN_SAVE_RETRY_SECONDS
        )
    return await run_db(turn_finish, conversation_id, message_id, outcome)  # run_db retries it
