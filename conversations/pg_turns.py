"""A turn's opening and closing writes on PostgreSQL, natively async (psycopg, no ORM, no thread hop).

The same rows as :func:`conversations.services.turn_open` / ``turn_finish`` (the
reference, checked against this module by ``tests/test_turn_store.py``), in
fewer round trips: opening is one pipelined batch that locks (or creates) the
session and reads what the turn needs, then one that inserts the two messages
and commits; closing is one batch. The connections come from an
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


def _opening_sql(owner_id: int | None) -> tuple[str, str, str, str]:
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
    return lock, existing, busy, recent


_OPENING_SQL = {True: _opening_sql(1), False: _opening_sql(None)}

_INSERT_MESSAGES = (
    f"INSERT INTO {MESSAGES} (id, conversation_id, role, content, status, provider, model, usage_estimated,"
    " finish_reason, response_id, error_code, error_message, client_message_id, parent_id, created_at,"
    " completed_at) VALUES"
    " (%(user_id)s, %(conversation)s, 'user', %(content)s, 'complete', '', '', false, '', '', '', '',"
    "  %(client_id)s, %(parent)s, %(user_at)s, %(user_at)s),"
    " (%(answer_id)s, %(conversation)s, 'assistant', '', 'streaming', %(provider)s, %(model)s, false, '', '',"
    "  '', '', NULL, %(user_id)s, %(answer_at)s, NULL)"
)
_UPDATE_SESSION = (
    f"UPDATE {CONVERSATIONS} SET provider = %(provider)s, model = %(model)s, system_prompt = %(system)s,"
    " updated_at = %(answer_at)s WHERE id = %(conversation)s"
)


@asynccontextmanager
async def _batch_transaction() -> AsyncIterator[tuple[psycopg.AsyncConnection, psycopg.AsyncPipeline]]:
    """A pooled connection in pipeline mode inside BEGIN … COMMIT, sent with the batch (no extra round trip).

    The body queues statements and calls ``pipeline.sync()`` where it needs results. Leaving it
    normally commits; an exception rolls back; :class:`Rollback` rolls back quietly.
    """
    async with (await pool()).connection() as conn:
        try:
            async with conn.pipeline() as pipeline:
                await conn.execute("BEGIN")
                yield conn, pipeline
                await conn.execute("COMMIT")
        except BaseException:
            if not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.rollback()
            raise


class Rollback(Exception):
    """Leaves :func:`_batch_transaction` early, rolled back, with a result."""

    def __init__(self, result: ExistingAnswer) -> None:
        self.result = result


async def turn_open(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """:func:`services.turn_open` for a new message (not an edit or a regenerate)."""
    assert not (opening.edit_of or opening.regenerate_of), "branching turns use services.turn_open"
    lock, existing, busy, recent = _OPENING_SQL[opening.owner_id is not None]
    now = timezone.now()
    params: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner": opening.owner_id,
        "key": opening.session_key,
        "title": session_title(opening.user_content),
        "provider": opening.provider,
        "model": opening.model,
        "system": opening.system or "",
        "now": now,
        "client_id": opening.client_message_id or None,
        "stale": now - opening.stale_after,
    }
    try:
        async with _batch_transaction() as (conn, pipeline):
            locked = await conn.execute(lock, params)
            found = await conn.execute(existing, params) if params["client_id"] else None
            streaming = await conn.execute(busy, params)
            rows = await conn.execute(recent, params)
            await pipeline.sync()
            conversation_id, system_prompt, provider, model, last_response_id = await locked.fetchone()
            if found is not None and (row := await found.fetchone()) is not None:
                raise Rollback(ExistingAnswer(str(row[0]), row[1]))
            if (busy_row := await streaming.fetchone()) is not None:
                raise TurnInProgress(
                    "Another answer in this session is still streaming: wait for it, stop it, or use another session.",
                    message_id=str(busy_row[0]),
                )
            recent_rows = {str(row[0]): row for row in await rows.fetchall()}
            parent_id = next(iter(recent_rows), None)
            if opening.system is not None:
                system_prompt = opening.system
            answer_at = timezone.now()
            if answer_at <= now:
                answer_at = now + timedelta(microseconds=1)
            params.update(
                conversation=conversation_id,
                user_id=uuid.uuid4(),
                answer_id=uuid.uuid4(),
                content=opening.user_content,
                parent=uuid.UUID(parent_id) if parent_id else None,
                user_at=now,
                answer_at=answer_at,
                system=system_prompt,
            )
            await conn.execute(_INSERT_MESSAGES, params)
            await conn.execute(_UPDATE_SESSION, params)
    except Rollback as done:
        return done.result
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
_INSERT_ARTIFACT = (
    f"INSERT INTO {ARTIFACTS} (message_id, conversation_id, language, filename, content, position, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"  # a repeated save (see services)
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
    async with _batch_transaction() as (conn, _):
        await conn.execute(_FINISH_MESSAGE, params)
        if outcome.artifacts:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    _INSERT_ARTIFACT,
                    [
                        (
                            params["message"],
                            params["conversation"],
                            block.language,
                            block.filename,
                            block.content,
                            block.position,
                            now,
                        )
                        for block in outcome.artifacts
                    ],
                )
        await conn.execute(_FINISH_SESSION_CHAINED if chained else _FINISH_SESSION, params)
