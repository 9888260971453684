"""A turn's opening and closing writes on PostgreSQL, natively async (psycopg, no ORM, no thread hop).

The same rows as :func:`conversations.turns.orm_writes.turn_open` / ``turn_finish`` (the
reference, checked against this module by ``tests/test_turn_store.py``), from
the same rules (:mod:`conversations.turns.rules`: the columns the SQL sets are
generated from its field lists), in one round trip each: opening is one batch
of statements that locks (or creates) the session, reads what the turn needs
and stores the two messages unless the session is busy or the client id was
seen; closing is one statement. Each is one simple-protocol message with the
parameters bound client-side by psycopg (cheaper in CPU than psycopg's pipeline
mode, measured), and a connection is held for one round trip only (under a
saturated event loop, each await can take long). The connections come from an
:class:`~psycopg_pool.AsyncConnectionPool` per event loop, held only for those
round trips, never while streaming.
"""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone
from psycopg.types.json import Jsonb

from conversations.models import Artifact, Conversation, Message
from conversations.turns.pg_pool import batch, transaction_connection
from conversations.turns.rules import (
    ARTIFACT_FIELDS,
    CLOSING_FIELDS,
    NEW_SESSION_FIELDS,
    RECENT_FIELDS,
    TREE_WINDOW,
    ExistingAnswer,
    OpenedTurn,
    TurnOpening,
    TurnOutcome,
    artifact_values,
    branch_history,
    busy_cutoff,
    chain_from,
    closing_values,
    new_session_values,
    session_closing_values,
    turn_in_progress,
    turn_model,
)

CONVERSATIONS = Conversation._meta.db_table
MESSAGES = Message._meta.db_table
ARTIFACTS = Artifact._meta.db_table


def _columns(model: type, names: tuple[str, ...] | list[str]) -> list[str]:
    """The database columns of these model fields (the SQL below is generated from the rules' lists)."""
    return [model._meta.get_field(name).column for name in names]


def _owner_condition(owner_id: int | None) -> str:
    return "owner_id = %(owner)s" if owner_id is not None else "owner_id IS NULL"


def _opening_sql(owner_id: int | None) -> tuple[str, str, str, str, str, str]:
    conflict = (
        "(owner_id, session_key) WHERE owner_id IS NOT NULL"
        if owner_id is not None
        else "(session_key) WHERE owner_id IS NULL"
    )
    session = f"(SELECT id FROM {CONVERSATIONS} WHERE {_owner_condition(owner_id)} AND session_key = %(key)s)"
    new_columns = ", ".join(_columns(Conversation, NEW_SESSION_FIELDS))
    new_values = ", ".join(f"%(new_{name})s" for name in NEW_SESSION_FIELDS)
    lock = (
        f"INSERT INTO {CONVERSATIONS} (id, owner_id, session_key, {new_columns}, last_response_id,"
        f" created_at, updated_at) VALUES (%(id)s, %(owner)s, %(key)s, {new_values}, '', %(now)s, %(now)s)"
        f" ON CONFLICT {conflict} DO UPDATE SET updated_at = {CONVERSATIONS}.updated_at"
        " RETURNING id, system_prompt, provider, model, last_response_id"
    )
    existing = (
        "SELECT coalesce(a.id, u.id), coalesce(a.status, u.status)"
        f" FROM {MESSAGES} u LEFT JOIN LATERAL (SELECT id, status FROM {MESSAGES} c"
        "   WHERE c.parent_id = u.id AND c.role = 'assistant' ORDER BY c.created_at DESC LIMIT 1) a ON true"
        f" WHERE u.conversation_id = {session} AND u.client_message_id = %(client_id)s"
    )
    busy = (
        f"SELECT id FROM {MESSAGES} WHERE conversation_id = {session}"
        " AND role = 'assistant' AND status = 'streaming' AND created_at >= %(stale)s LIMIT 1"
    )
    recent = (
        f"SELECT {', '.join(RECENT_FIELDS)} FROM {MESSAGES} WHERE conversation_id = {session}"
        f" ORDER BY created_at DESC LIMIT {TREE_WINDOW}"
    )

    # rules.turn_model: the session's stored provider and model when the turn names none
    def choose(column: str) -> str:
        return f"CASE WHEN %(session_model)s AND provider <> '' THEN {column} ELSE %({column})s END"

    chosen_provider, chosen_model = (
        f"(SELECT {choose(column)} FROM {CONVERSATIONS} WHERE id = {session})"
        for column in ("provider", "model")
    )
    # Stored only when the session has no answer streaming and the client id is new; the parent
    # is the session's newest message, the first row ``recent`` read.
    insert = (
        f"INSERT INTO {MESSAGES} (id, conversation_id, role, content, status, provider, model,"
        " usage_estimated, finish_reason, response_id, error_code, error_message, client_message_id,"
        " parent_id, created_at, completed_at)"
        " SELECT v.* FROM (VALUES"
        f" (%(user_id)s::uuid, {session}, 'user', %(content)s, 'complete', '', '', false, '', '', '', '',"
        "  %(client_id)s::varchar, "
        f"  (SELECT id FROM {MESSAGES} WHERE conversation_id = {session} ORDER BY created_at DESC LIMIT 1),"
        "  %(user_at)s::timestamptz, %(user_at)s::timestamptz),"
        f" (%(answer_id)s::uuid, {session}, 'assistant', '', 'streaming', {chosen_provider}, {chosen_model}, false,"
        "  '', '', '', '', NULL, %(user_id)s::uuid, %(answer_at)s::timestamptz, NULL)"
        " ) AS v"
        f" WHERE NOT EXISTS ({busy})"
        f" AND NOT EXISTS (SELECT 1 FROM {MESSAGES} WHERE conversation_id = {session}"
        "   AND client_message_id = %(client_id)s)"
    )
    update = (
        f"UPDATE {CONVERSATIONS} SET provider = {choose('provider')}, model = {choose('model')},"
        " system_prompt = CASE WHEN %(system_given)s THEN %(system)s ELSE system_prompt END,"
        f" updated_at = %(answer_at)s WHERE id = {session}"
        f" AND EXISTS (SELECT 1 FROM {MESSAGES} WHERE id = %(answer_id)s::uuid)"
    )
    return lock, existing, busy, recent, insert, update


_OPENING_SQL = {True: _opening_sql(1), False: _opening_sql(None)}


async def turn_open(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """:func:`orm_writes.turn_open` for a new message (not an edit or a regenerate)."""
    assert not (opening.edit_of or opening.regenerate_of), "branching turns use orm_writes.turn_open"
    lock, existing, busy, recent, insert, update = _OPENING_SQL[opening.owner_id is not None]
    now = timezone.now()
    params: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner": opening.owner_id,
        "key": opening.session_key,
        **{
            f"new_{name}": Jsonb(value) if isinstance(value, dict) else value  # metadata is jsonb
            for name, value in new_session_values(opening).items()
        },
        "provider": opening.provider,
        "model": opening.model,
        "session_model": opening.session_model,
        "system": opening.system or "",
        "system_given": opening.system is not None,
        "now": now,
        "client_id": opening.client_message_id or None,
        "stale": busy_cutoff(opening, now),
        "user_id": uuid.uuid4(),
        "answer_id": uuid.uuid4(),
        "content": opening.user_content,
        "user_at": now,
        "answer_at": now + timedelta(microseconds=1),
    }
    # One round trip, one transaction: each statement reads what the ones before it committed
    # (READ COMMITTED takes a snapshot per statement), after the session's row lock.
    statements = ["BEGIN", lock, existing, busy, recent, insert, update, "COMMIT"]
    async with transaction_connection() as conn:
        _, locked, found, streaming, rows, *_ = await batch(conn, statements, params)
    conversation_id, system_prompt, provider, model, last_response_id = locked[0]
    chosen = turn_model(opening, provider, model)
    if found:
        answer_id, status = found[0]
        return ExistingAnswer(str(answer_id), status)
    if streaming:
        raise turn_in_progress(str(streaming[0][0]))
    recent_rows = {str(row[0]): row for row in rows or ()}
    parent_id = next(iter(recent_rows), None)
    if opening.system is not None:
        system_prompt = opening.system
    return OpenedTurn(
        conversation_id=str(conversation_id),
        session_key=opening.session_key,
        user_message_id=str(params["user_id"]),
        assistant_message_id=str(params["answer_id"]),
        system=system_prompt,
        history=branch_history(recent_rows, parent_id, opening.history_limit),
        previous_response_id=chain_from(opening, (provider, model), chosen, last_response_id),
        user_content=opening.user_content,
        provider=chosen[0],
        model=chosen[1],
    )


_ANSWER_SET = ", ".join(
    f"{column} = %(m_{name})s"
    for column, name in zip(_columns(Message, CLOSING_FIELDS), CLOSING_FIELDS, strict=True)
)


@functools.lru_cache(maxsize=64)
def _closing_sql(only_if_streaming: bool, session_fields: tuple[str, ...], artifacts: int) -> str:
    """The closing write as one statement: the answer (unless the guard finds it no longer
    ``streaming``), then, only if it was closed, its artifacts and the session; the count closed."""
    guard = " AND status = %(streaming)s" if only_if_streaming else ""
    session_set = ", ".join(
        f"{column} = %(s_{name})s"
        for column, name in zip(_columns(Conversation, session_fields), session_fields, strict=True)
    )
    parts = [
        f"closed AS (UPDATE {MESSAGES} SET {_ANSWER_SET} WHERE id = %(message)s{guard} RETURNING id)",
        f"session AS (UPDATE {CONVERSATIONS} SET {session_set}"
        " WHERE id = %(conversation)s AND EXISTS (SELECT 1 FROM closed))",
    ]
    if artifacts:
        rows = ", ".join(
            "(" + ", ".join(f"%(a{i}_{name})s" for name in ARTIFACT_FIELDS) + ")" for i in range(artifacts)
        )
        parts.append(
            f"stored AS (INSERT INTO {ARTIFACTS} (message_id, conversation_id, created_at,"
            f" {', '.join(_columns(Artifact, ARTIFACT_FIELDS))})"
            f" SELECT closed.id, %(conversation)s, %(now)s, v.* FROM closed, (VALUES {rows}) AS v"
            " ON CONFLICT DO NOTHING)"  # a repeated save (see services)
        )
    return "WITH " + ", ".join(parts) + " SELECT count(*) FROM closed"


async def turn_finish(
    conversation_id: str, message_id: str, outcome: TurnOutcome, *, only_if_streaming: bool = False
) -> bool:
    """:func:`orm_writes.turn_finish`: the answer's terminal state, its artifacts, the session's chain id;
    whether the answer was closed."""
    now = timezone.now()
    session = session_closing_values(outcome, now)
    params: dict[str, Any] = {
        **{f"m_{name}": value for name, value in closing_values(outcome, now).items()},
        **{f"s_{name}": value for name, value in session.items()},
        "streaming": Message.Status.STREAMING.value,
        "now": now,
        "message": uuid.UUID(message_id),
        "conversation": uuid.UUID(conversation_id),
    }
    for i, block in enumerate(outcome.artifacts):
        params.update({f"a{i}_{name}": value for name, value in artifact_values(block).items()})
    sql = _closing_sql(only_if_streaming, tuple(session), len(outcome.artifacts))
    async with transaction_connection() as conn:
        [[(closed,)]] = await batch(conn, [sql], params)
    return bool(closed)
