"""A turn's opening and closing writes on PostgreSQL, natively async (psycopg, no ORM, no thread hop).

The same rows as :func:`conversations.services.turn_open` / ``turn_finish`` (the
reference, checked against this module by ``tests/test_turn_store.py``), in
one round trip each: opening is one batch of statements that locks (or
creates) the session, reads what the turn needs and stores the two messages
unless the session is busy or the client id was seen; closing is another. Each
batch is one simple-protocol message with the parameters bound client-side by
psycopg (cheaper in CPU than psycopg's pipeline mode, measured), and a
connection is held for one round trip only (under a saturated event loop, each
await can take long). The connections come from an
:class:`~psycopg_pool.AsyncConnectionPool` per event loop, held only for those
batches, never while streaming.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from django.utils import timezone
from psycopg_pool import AsyncConnectionPool

from conversations.db import check_pooled_connection
from conversations.errors import TurnInProgress
from conversations.models import Artifact, Conversation, Message
from conversations.services import (
    TREE_WINDOW,
    ExistingAnswer,
    OpenedTurn,
    TurnOpening,
    TurnOutcome,
    branch_history,
    chain_from,
    session_title,
)

CONVERSATIONS = Conversation._meta.db_table
MESSAGES = Message._meta.db_table
ARTIFACTS = Artifact._meta.db_table

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[AsyncConnectionPool]] = (
    weakref.WeakKeyDictionary()
)
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

_SKIPPED_OPTIONS = {
    "pool",
    "isolation_level",
    "server_side_binding",
    "assume_role",
    "cursor_factory",
    "context",
}


def connection_kwargs() -> dict[str, Any]:
    """psycopg connection arguments for Django's default database (its test name under the test runner)."""
    s = connections["default"].settings_dict
    kwargs: dict[str, Any] = {
        "dbname": s["NAME"],
        "user": s.get("USER") or None,
        "password": s.get("PASSWORD") or None,
        "host": s.get("HOST") or None,
        "port": str(s["PORT"]) if s.get("PORT") else None,
        "autocommit": True,
    }
    kwargs.update({k: v for k, v in (s.get("OPTIONS") or {}).items() if k not in _SKIPPED_OPTIONS})
    return {k: v for k, v in kwargs.items() if v is not None}


async def _close_with_loop(pool: AsyncConnectionPool) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await pool.close()


async def _open_pool() -> AsyncConnectionPool:
    async def check(conn: psycopg.AsyncConnection) -> None:
        await check_pooled_connection(conn, pool)

    pool = AsyncConnectionPool(
        kwargs=connection_kwargs(),
        min_size=1,
        max_size=settings.TURN_DB_POOL_SIZE,
        timeout=settings.TURN_DB_POOL_TIMEOUT,
        check=check,  # no stale connections after a PostgreSQL restart
        open=False,
        name="turns",
    )
    await pool.open(wait=False)
    # A started async generator is finalized by the loop's shutdown_asyncgens() (asyncio.run,
    # asyncio.Runner, uvicorn): the pool's connections close with their loop, not at garbage collection.
    closer = _close_with_loop(pool)
    await anext(closer)
    _closers[asyncio.get_running_loop()] = closer
    return pool


async def pool() -> AsyncConnectionPool:
    loop = asyncio.get_running_loop()
    future = _pools.get(loop)
    if future is None:
        future = _pools[loop] = asyncio.ensure_future(_open_pool())
    return await future


async def close_pool() -> None:
    """Close this event loop's pool (lifespan shutdown, end of a test)."""
    loop = asyncio.get_running_loop()
    future = _pools.pop(loop, None)
    closer = _closers.pop(loop, None)
    if closer is not None:
        await closer.aclose()
    elif future is not None:
        await (await future).close()


def _owner_condition(owner_id: int | None) -> str:
    return "owner_id = %(owner)s" if owner_id is not None else "owner_id IS NULL"


def _opening_sql(owner_id: int | None) -> tuple[str, str, str, str, str, str]:
    conflict = (
        "(owner_id, session_key) WHERE owner_id IS NOT NULL"
        if owner_id is not None
        else "(session_key) WHERE owner_id IS NULL"
    )
    session = f"(SELECT id FROM {CONVERSATIONS} WHERE {_owner_condition(owner_id)} AND session_key = %(key)s)"
    lock = (
        f"INSERT INTO {CONVERSATIONS} (id, owner_id, session_key, title, provider, model, system_prompt,"
        " metadata, last_response_id, created_at, updated_at)"
        " VALUES (%(id)s, %(owner)s, %(key)s, %(title)s, %(provider)s, %(model)s, %(system)s, '{}', '',"
        " %(now)s, %(now)s)"
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
        f"SELECT id, parent_id, role, status, content FROM {MESSAGES} WHERE conversation_id = {session}"
        f" ORDER BY created_at DESC LIMIT {TREE_WINDOW}"
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
        f" (%(answer_id)s::uuid, {session}, 'assistant', '', 'streaming', %(provider)s, %(model)s, false,"
        "  '', '', '', '', NULL, %(user_id)s::uuid, %(answer_at)s::timestamptz, NULL)"
        " ) AS v"
        f" WHERE NOT EXISTS ({busy})"
        f" AND NOT EXISTS (SELECT 1 FROM {MESSAGES} WHERE conversation_id = {session}"
        "   AND client_message_id = %(client_id)s)"
    )
    update = (
        f"UPDATE {CONVERSATIONS} SET provider = %(provider)s, model = %(model)s,"
        " system_prompt = CASE WHEN %(system_given)s THEN %(system)s ELSE system_prompt END,"
        f" updated_at = %(answer_at)s WHERE id = {session}"
        f" AND EXISTS (SELECT 1 FROM {MESSAGES} WHERE id = %(answer_id)s::uuid)"
    )
    return lock, existing, busy, recent, insert, update


_OPENING_SQL = {True: _opening_sql(1), False: _opening_sql(None)}


async def _batch(
    conn: psycopg.AsyncConnection, statements: list[str], params: Any
) -> list[list[tuple] | None]:
    """Several statements in one simple-protocol message (one round trip), parameters bound client-side
    (psycopg escapes them); the rows of each, ``None`` for a statement without a result."""
    cursor = psycopg.AsyncClientCursor(conn)
    await cursor.execute("; ".join(statements), params)
    results: list[list[tuple] | None] = []
    while True:
        results.append(await cursor.fetchall() if cursor.description is not None else None)
        if not cursor.nextset():
            return results


@asynccontextmanager
async def _transaction_connection() -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection; a transaction left open by an error (or an early return) is rolled back."""
    async with (await pool()).connection() as conn:
        try:
            yield conn
        finally:
            if not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.rollback()


async def turn_open(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """:func:`services.turn_open` for a new message (not an edit or a regenerate)."""
    assert not (opening.edit_of or opening.regenerate_of), "branching turns use services.turn_open"
    lock, existing, busy, recent, insert, update = _OPENING_SQL[opening.owner_id is not None]
    now = timezone.now()
    params: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner": opening.owner_id,
        "key": opening.session_key,
        "title": session_title(opening.user_content),
        "provider": opening.provider,
        "model": opening.model,
        "system": opening.system or "",
        "system_given": opening.system is not None,
        "now": now,
        "client_id": opening.client_message_id or None,
        "stale": now - opening.stale_after,
        "user_id": uuid.uuid4(),
        "answer_id": uuid.uuid4(),
        "content": opening.user_content,
        "user_at": now,
        "answer_at": now + timedelta(microseconds=1),
    }
    # One round trip, one transaction: each statement reads what the ones before it committed
    # (READ COMMITTED takes a snapshot per statement), after the session's row lock.
    statements = ["BEGIN", lock, existing, busy, recent, insert, update, "COMMIT"]
    async with _transaction_connection() as conn:
        _, locked, found, streaming, rows, *_ = await _batch(conn, statements, params)
    conversation_id, system_prompt, provider, model, last_response_id = locked[0]
    if found:
        answer_id, status = found[0]
        return ExistingAnswer(str(answer_id), status)
    if streaming:
        raise TurnInProgress(
            "Another answer in this session is still streaming: wait for it, stop it, or use another session.",
            message_id=str(streaming[0][0]),
        )
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
        previous_response_id=chain_from(opening, provider, model, last_response_id),
        user_content=opening.user_content,
    )


_FINISH_MESSAGE = (
    f"UPDATE {MESSAGES} SET status = %(status)s, content = %(content)s, provider = %(provider)s,"
    " model = %(model)s, finish_reason = %(finish_reason)s, response_id = %(response_id)s,"
    " input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s,"
    " usage_estimated = %(usage_estimated)s, error_code = %(error_code)s,"
    " error_message = %(error_message)s, completed_at = %(now)s WHERE id = %(message)s"
)
_INSERT_ARTIFACTS = (
    f"INSERT INTO {ARTIFACTS} (message_id, conversation_id, language, filename, content, position, created_at)"
    " VALUES {rows} ON CONFLICT DO NOTHING"  # a repeated save (see services)
)
_FINISH_SESSION = f"UPDATE {CONVERSATIONS} SET updated_at = %(now)s WHERE id = %(conversation)s"
_FINISH_SESSION_CHAINED = (
    f"UPDATE {CONVERSATIONS} SET updated_at = %(now)s, last_response_id = %(response_id)s"
    " WHERE id = %(conversation)s"
)


async def turn_finish(conversation_id: str, message_id: str, outcome: TurnOutcome) -> None:
    """:func:`services.turn_finish`: the answer's terminal state, its artifacts, the session's chain id."""
    now = timezone.now()
    params = {
        "status": outcome.status,
        "content": outcome.content,
        "provider": outcome.provider,
        "model": outcome.model,
        "finish_reason": outcome.finish_reason,
        "response_id": outcome.response_id,
        "input_tokens": outcome.input_tokens,
        "output_tokens": outcome.output_tokens,
        "usage_estimated": outcome.usage_estimated,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
        "now": now,
        "message": uuid.UUID(message_id),
        "conversation": uuid.UUID(conversation_id),
    }
    chained = outcome.status == Message.Status.COMPLETE and bool(outcome.response_id)
    statements = ["BEGIN", _FINISH_MESSAGE]
    for i, block in enumerate(outcome.artifacts):
        params.update(
            {
                f"a{i}_language": block.language,
                f"a{i}_filename": block.filename,
                f"a{i}_content": block.content,
                f"a{i}_position": block.position,
            }
        )
    if outcome.artifacts:
        rows = ", ".join(
            f"(%(message)s, %(conversation)s, %(a{i}_language)s, %(a{i}_filename)s, %(a{i}_content)s,"
            f" %(a{i}_position)s, %(now)s)"
            for i in range(len(outcome.artifacts))
        )
        statements.append(_INSERT_ARTIFACTS.format(rows=rows))
    statements += [_FINISH_SESSION_CHAINED if chained else _FINISH_SESSION, "COMMIT"]
    async with _transaction_connection() as conn:
        await _batch(conn, statements, params)
