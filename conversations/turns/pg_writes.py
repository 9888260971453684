"""A turn's opening and closing writes on PostgreSQL, natively async (psycopg, no ORM, no thread hop).

The same rows as :func:`conversations.turns.orm_writes.turn_open` / ``turn_finish`` (the
reference, checked against this module by ``tests/test_turn_store.py``), from
the same rules (:mod:`conversations.turns.rules`: the columns the SQL sets are
generated from its field lists), in one round trip each: opening is one batch
of statements that locks (or creates) the session, reads what the turn needs
and stores the two messages unless the session is busy, the client id was
seen or a budget refuses (then a session it created is dropped again: a refused
turn stores nothing); closing is one statement. Each is one simple-protocol
message with the parameters bound client-side by psycopg (cheaper in CPU than
psycopg's pipeline mode, measured), and a connection is held for one round trip only (under a
saturated event loop, each await can take long). The connections come from an
:class:`~psycopg_pool.AsyncConnectionPool` per event loop, held only for those
round trips, never while streaming.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from psycopg.types.json import Jsonb

from billing.budgets import HAS_ROOM, RESERVATION, RESERVE, SETTLE, period_starts
from billing.models import Budget
from billing.prices import price_book
from conversations.counters import PREVIEW_LENGTH
from conversations.models import Artifact, Conversation, Message
from conversations.telemetry import stages
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
    opening_refusal,
    session_closing_counters,
    session_closing_values,
    skips_calls,
    tool_results_refusal,
    turn_in_progress,
    turn_model,
)

BUDGETS = Budget._meta.db_table
CONVERSATIONS = Conversation._meta.db_table
MESSAGES = Message._meta.db_table
ARTIFACTS = Artifact._meta.db_table


def _columns(model: type, names: tuple[str, ...] | list[str]) -> list[str]:
    """The database columns of these model fields (the SQL below is generated from the rules' lists)."""
    return [model._meta.get_field(name).column for name in names]


# RECENT_FIELDS as the native path reads them: a row's parts as JSON text, NULL when [] (most rows):
# the driver then decodes no JSON per row (parts.stored_parts decodes the few the turn reads).
RECENT_COLUMNS = tuple(
    "CASE WHEN parts = '[]'::jsonb THEN NULL ELSE parts::text END" if name == "parts" else name
    for name in RECENT_FIELDS
)


def _owner_condition(owner_id: int | None) -> str:
    return "owner_id = %(owner)s" if owner_id is not None else "owner_id IS NULL"


def _budget_sql(
    session: str, busy: str, chosen_provider: str, chosen_model: str, claims: int
) -> tuple[str, ...]:
    """The opening write's budget statements (:mod:`billing.budgets`: ensure, lock, reserve) and the
    condition the message insert adds: every budget the turn is charged to had room and reserved, at
    a known price (:func:`conversations.turns.rules.opening_refusal`). The room check, the
    reservation and the budgets' new values are rendered from :mod:`billing.budgets`' rule."""
    values = ", ".join(
        f"(%(c{i}_scope)s::varchar, %(c{i}_subject)s::varchar, %(c{i}_amount)s::numeric, %(c{i}_period)s::varchar)"
        for i in range(claims)
    )
    named = f"(SELECT scope, subject FROM (VALUES {values}) AS c(scope, subject, amount, period))"
    ensure = (
        f"INSERT INTO {BUDGETS} (scope, subject, amount, period, spent, reserved, updated_at)"
        " SELECT c.scope, c.subject, coalesce(d.amount, c.amount), coalesce(d.period, c.period), 0, 0, %(now)s"
        f" FROM (VALUES {values}) AS c(scope, subject, amount, period)"
        f" LEFT JOIN {BUDGETS} d ON d.scope = c.scope AND d.subject = '*'"
        " WHERE coalesce(d.amount, c.amount) IS NOT NULL ON CONFLICT (scope, subject) DO NOTHING"
    )
    lock = (
        "SELECT scope, subject, amount, spent, reserved, period, period_start"
        f" FROM {BUDGETS} WHERE (scope, subject) IN {named} ORDER BY id FOR UPDATE"
    )

    # billing.prices.price_keys: the model's own price, its provider's "*", the fallback "*"
    rate = (
        f"(SELECT coalesce(j -> ({chosen_provider} || ':' || {chosen_model}), j -> ({chosen_provider} || ':*'),"
        " j -> '*') FROM (SELECT %(rates)s::jsonb AS j) AS prices)"
    )
    history = (
        f"(SELECT ceil(coalesce(sum(length(content)), 0) / 4.0) FROM (SELECT content FROM {MESSAGES}"
        f" WHERE conversation_id = {session} ORDER BY created_at DESC LIMIT %(history_limit)s) h)"
    )
    priced = {
        "rate_in": "(r ->> 0)::numeric",
        "tokens_in": f"(%(reserve_in)s + {history})",
        "rate_out": "(r ->> 1)::numeric",
        "tokens_out": "%(reserve_out)s",
    }
    amount = f"(SELECT {RESERVATION.sql('', priced)} FROM (SELECT {rate} AS r) AS priced)"
    reserved = {"reservation": amount, "answer_id": "%(answer_id)s::uuid"}
    reserve_set = ", ".join(f"{name} = {rule.sql('b', reserved)}" for name, rule in RESERVE.items())
    reserve = (
        f"UPDATE {BUDGETS} b SET {reserve_set}"
        f" WHERE (b.scope, b.subject) IN {named} AND {rate} IS NOT NULL AND NOT EXISTS ({busy})"
        f" AND NOT EXISTS (SELECT 1 FROM {MESSAGES} WHERE conversation_id = {session}"
        "   AND client_message_id = %(client_id)s)"
        f" AND NOT EXISTS (SELECT 1 FROM {BUDGETS} x WHERE (x.scope, x.subject) IN {named}"
        f"   AND NOT {HAS_ROOM.sql('x', {})})"
    )
    reserved_ids = f"(SELECT id FROM {BUDGETS} WHERE reserved_for = %(answer_id)s::uuid)"
    allowed = (
        f" AND (NOT EXISTS (SELECT 1 FROM {BUDGETS} WHERE (scope, subject) IN {named})"
        f" OR EXISTS {reserved_ids})"
    )
    reserved_cost = f"(CASE WHEN EXISTS {reserved_ids} THEN {amount} ELSE 0 END)"
    budget_ids = f"coalesce((SELECT jsonb_agg(id ORDER BY id) FROM {BUDGETS} WHERE reserved_for = %(answer_id)s::uuid), '[]')"
    return ensure, lock, reserve, allowed, reserved_cost, budget_ids


def _opening_sql(
    owner_id: int | None, claims: int = 0, parts: bool = False, answers_calls: bool = False
) -> tuple[str, ...]:
    """The opening's statements: with ``claims`` budgets, the new message's ``parts`` bound (a tool
    message's results; ``[]`` otherwise), and the condition that they answer the calls of the
    answer they follow when ``answers_calls``."""
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
        " created_at, updated_at, message_count, input_tokens, output_tokens, cost_unknown_answers,"
        " last_message_role, last_message_preview)"
        f" VALUES (%(id)s, %(owner)s, %(key)s, {new_values}, '', %(now)s, %(now)s, 0, 0, 0, 0, '', '')"
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
        f"SELECT {', '.join(RECENT_COLUMNS)} FROM {MESSAGES} WHERE conversation_id = {session}"
        f" ORDER BY created_at DESC LIMIT {TREE_WINDOW}"
    )

    # rules.turn_model: the session's stored provider and model when the turn names none
    def choose(column: str) -> str:
        return f"CASE WHEN %(session_model)s AND provider <> '' THEN {column} ELSE %({column})s END"

    chosen_provider, chosen_model = (
        f"(SELECT {choose(column)} FROM {CONVERSATIONS} WHERE id = {session})"
        for column in ("provider", "model")
    )
    budget = ("", "", "", "", "0", "'[]'")
    if claims:
        budget = _budget_sql(session, busy, chosen_provider, chosen_model, claims)
    ensure, lock_budgets, reserve, allowed, reserved_cost, budget_ids = budget
    # Stored only when the session has no answer streaming, the client id is new and every budget
    # the turn is charged to reserved; the parent is the session's newest message, the first row
    # ``recent`` read.
    newest = f"(SELECT id FROM {MESSAGES} WHERE conversation_id = {session} ORDER BY created_at DESC LIMIT 1)"
    # rules.answered_call_ids: a tool message answers every whole call of the answer it follows
    calls_answered = (
        " AND %(call_ids)s::jsonb = (SELECT jsonb_agg(p ->> 'id' ORDER BY p ->> 'id')"
        f"   FROM {MESSAGES} m, jsonb_array_elements(m.parts) p WHERE m.id = {newest}"
        "   AND m.role = 'assistant' AND m.status = 'complete' AND p ->> 'type' = 'tool_call'"
        "   AND NOT p ? 'incomplete')"
        if answers_calls
        else ""
    )
    user_parts = "%(user_parts)s" if parts else "'[]'"
    insert = (
        f"INSERT INTO {MESSAGES} (id, conversation_id, role, content, parts, status, provider, model,"
        " usage_estimated, finish_reason, response_id, error_code, error_message, client_message_id,"
        " parent_id, created_at, completed_at, reserved_cost, budget_ids, api_key_id)"
        " SELECT v.* FROM (VALUES"
        f" (%(user_id)s::uuid, {session}, %(user_role)s::varchar, %(content)s, {user_parts}::jsonb,"
        "  'complete', '', '', false, '', '', '', '', %(client_id)s::varchar, "
        f"  {newest}, %(user_at)s::timestamptz, %(user_at)s::timestamptz, 0::numeric, '[]'::jsonb, NULL::bigint),"
        f" (%(answer_id)s::uuid, {session}, 'assistant', '', '[]'::jsonb, 'streaming', {chosen_provider},"
        f"  {chosen_model}, false, '', '', '', '', NULL, %(user_id)s::uuid, %(answer_at)s::timestamptz, NULL,"
        f"  {reserved_cost}::numeric, {budget_ids}::jsonb, %(api_key)s::bigint)"
        " ) AS v"
        f" WHERE NOT EXISTS ({busy})"
        f" AND NOT EXISTS (SELECT 1 FROM {MESSAGES} WHERE conversation_id = {session}"
        f"   AND client_message_id = %(client_id)s){allowed}{calls_answered}"
        " RETURNING id"
    )
    update = (
        f"UPDATE {CONVERSATIONS} SET provider = {choose('provider')}, model = {choose('model')},"
        " system_prompt = CASE WHEN %(system_given)s THEN %(system)s ELSE system_prompt END,"
        # rules.OPENING_COUNTERS: two new messages, the answer the newest
        " message_count = message_count + 2, last_message_role = 'assistant', last_message_preview = '',"
        " last_message_at = %(answer_at)s,"
        f" updated_at = %(answer_at)s WHERE id = {session}"
        f" AND EXISTS (SELECT 1 FROM {MESSAGES} WHERE id = %(answer_id)s::uuid)"
    )
    if not claims and not answers_calls:
        return (lock, existing, busy, recent, insert, update)
    # A refused opening stores nothing, as the ORM path's rolled-back transaction: the session the
    # first statement created (its id is this opening's) goes again when the answer was not stored.
    # Without budgets or tool results the insert is refused only on a session that already existed
    # (busy, repeated client id). Created and dropped rather than created last: the first
    # statement's row lock is what makes a concurrent first turn of the same key wait and then see
    # this one's answer.
    discard = (
        f"DELETE FROM {CONVERSATIONS} WHERE id = %(id)s"
        f" AND NOT EXISTS (SELECT 1 FROM {MESSAGES} WHERE id = %(answer_id)s::uuid)"
    )
    if not claims:
        return (lock, existing, busy, recent, insert, update, discard)
    return (lock, existing, busy, recent, ensure, lock_budgets, reserve, insert, update, discard)


@functools.lru_cache(maxsize=64)
def _opening_statements(has_owner: bool, claims: int, parts: bool, answers_calls: bool) -> tuple[str, ...]:
    return _opening_sql(1 if has_owner else None, claims, parts, answers_calls)


#: PostgreSQL's clock, in µs since the epoch (the stage clock's reading inside the opening batch).
_SERVER_CLOCK = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"


async def _timed_opening(conn: Any, sql: tuple[str, ...], params: dict[str, Any]) -> list[list[tuple] | None]:
    """The opening batch as :func:`turn_open` sends it, PostgreSQL's clock read after ``BEGIN`` and
    before ``COMMIT`` (the stage clock is on: ``bench/waterfall.py``); the results without those two."""
    stages.mark("db_connection")
    results = await batch(conn, ["BEGIN", _SERVER_CLOCK, *sql, _SERVER_CLOCK, "COMMIT"], params)
    stages.mark("db_result")
    stages.server_mark("pg_begin", results[1][0][0])
    stages.server_mark("pg_commit", results[-2][0][0])
    return [results[0], *results[2:-2], results[-1]]


async def turn_open(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """:func:`orm_writes.turn_open` for a new message (not an edit or a regenerate)."""
    assert not (opening.edit_of or opening.regenerate_of), "branching turns use orm_writes.turn_open"
    claims = opening.claims
    parts = bool(opening.user_parts)
    sql = _opening_statements(opening.owner_id is not None, len(claims), parts, opening.answers_calls)
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
        "user_role": opening.user_role,
        "user_at": now,
        "answer_at": now + timedelta(microseconds=1),
        "api_key": opening.api_key_id,
    }
    if claims:
        params.update(_budget_params(opening, now))
    if parts:
        params["user_parts"] = Jsonb(list(opening.user_parts))
    if opening.answers_calls:
        params["call_ids"] = Jsonb(sorted(part["call_id"] for part in opening.user_parts))
    # One round trip, one transaction: each statement reads what the ones before it committed
    # (READ COMMITTED takes a snapshot per statement), after the session's row lock (and the
    # budgets' row locks, taken in id order).
    async with transaction_connection() as conn:
        if stages.on:
            results = await _timed_opening(conn, sql, params)
        else:
            results = await batch(conn, ["BEGIN", *sql, "COMMIT"], params)
    _, locked, found, streaming, rows, *rest = results
    budgets = rest[1] if claims else []
    inserted = rest[3] if claims else rest[0]
    conversation_id, system_prompt, provider, model, last_response_id = locked[0]
    chosen = turn_model(opening, provider, model)
    if found:
        answer_id, status = found[0]
        return ExistingAnswer(str(answer_id), status)
    if streaming:
        raise turn_in_progress(str(streaming[0][0]))
    recent_rows = {str(row[0]): row for row in rows or ()}
    parent_id = next(iter(recent_rows), None)
    if not inserted and opening.answers_calls:
        call_ids = [part["call_id"] for part in opening.user_parts if "call_id" in part]
        refusal = tool_results_refusal(recent_rows, parent_id, call_ids)
        if refusal is not None:
            raise refusal
    if not inserted:  # rules.opening_refusal: the SQL reserved nothing (no price, or a budget full)
        raise opening_refusal(list(budgets), now, price_book.rate(*chosen), *chosen)
    if opening.system is not None:
        system_prompt = opening.system
    return OpenedTurn(
        conversation_id=str(conversation_id),
        session_key=opening.session_key,
        user_message_id=str(params["user_id"]),
        assistant_message_id=str(params["answer_id"]),
        system=system_prompt,
        history=branch_history(recent_rows, parent_id, opening.history_limit, opening.user_role),
        previous_response_id=chain_from(
            opening,
            (provider, model),
            chosen,
            last_response_id,
            skips_calls=skips_calls(recent_rows, parent_id, opening.user_role),
        ),
        user_content=opening.user_content,
        provider=chosen[0],
        model=chosen[1],
        max_tokens=opening.reserve_output_tokens if budgets else None,
        user_role=opening.user_role,
        user_parts=opening.user_parts,
    )


def _budget_params(opening: TurnOpening, now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {
        "rates": Jsonb(price_book.reservation_rates()),
        "reserve_in": opening.reserve_input_tokens,
        "reserve_out": opening.reserve_output_tokens,
        "history_limit": opening.history_limit,
        **period_starts(now),
    }
    for i, claim in enumerate(opening.claims):
        default = claim.default
        params.update(
            {
                f"c{i}_scope": claim.scope,
                f"c{i}_subject": claim.subject,
                f"c{i}_amount": default.amount if default else None,
                f"c{i}_period": default.period if default else None,
            }
        )
    return params


_ANSWER_SET = ", ".join(
    f"{column} = %(m_{name})s"
    for column, name in zip(_columns(Message, CLOSING_FIELDS), CLOSING_FIELDS, strict=True)
)


# billing.budgets.SETTLE, on the budgets the answer reserved from
_SETTLE_SET = ", ".join(
    f"{name} = {rule.sql('b', {'reserved_cost': 'closed.reserved_cost', 'cost': '%(m_cost)s::numeric'})}"
    for name, rule in SETTLE.items()
)
_NEWEST = "(c.last_message_at IS NULL OR c.last_message_at <= closed.created_at)"
_FIRST = "closed.was = 'streaming'"  # the answer's first close: its tokens and cost count once


@functools.lru_cache(maxsize=64)
def _closing_sql(only_if_streaming: bool, session_fields: tuple[str, ...], artifacts: int) -> str:
    """The closing write as one statement: the answer (unless the guard finds it no longer
    ``streaming``), then, only if it was closed, its artifacts and the session; the count closed."""
    guard = " AND before.status = %(streaming)s" if only_if_streaming else ""
    session_set = ", ".join(
        f"{column} = %(s_{name})s"
        for column, name in zip(_columns(Conversation, session_fields), session_fields, strict=True)
    )
    parts = [
        f"before AS (SELECT id, status, reserved_cost, budget_ids FROM {MESSAGES} WHERE id = %(message)s FOR UPDATE)",
        f"closed AS (UPDATE {MESSAGES} m SET {_ANSWER_SET} FROM before WHERE m.id = before.id{guard}"
        " RETURNING m.id, m.created_at, before.status AS was, before.reserved_cost, before.budget_ids)",
        # the budgets: the reservation released, the cost spent, once (the write may be repeated)
        f"settled AS (UPDATE {BUDGETS} b SET {_SETTLE_SET} FROM closed"
        " WHERE closed.was = 'streaming' AND b.id IN"
        " (SELECT jsonb_array_elements_text(closed.budget_ids)::bigint))",
        # the session's counters (rules.session_closing_counters): the answer's tokens and cost once,
        # and its text as the preview while it is the session's newest message
        f"session AS (UPDATE {CONVERSATIONS} c SET {session_set},"
        f" input_tokens = c.input_tokens + CASE WHEN {_FIRST} THEN %(c_input_tokens)s ELSE 0 END,"
        f" output_tokens = c.output_tokens + CASE WHEN {_FIRST} THEN %(c_output_tokens)s ELSE 0 END,"
        f" cost = CASE WHEN {_FIRST} AND %(c_cost)s::numeric IS NOT NULL"
        "  THEN coalesce(c.cost, 0) + %(c_cost)s::numeric ELSE c.cost END,"
        f" cost_unknown_answers = c.cost_unknown_answers + CASE WHEN {_FIRST} THEN %(c_cost_unknown_answers)s ELSE 0 END,"
        f" last_message_role = CASE WHEN {_NEWEST} THEN 'assistant' ELSE c.last_message_role END,"
        f" last_message_preview = CASE WHEN {_NEWEST} THEN left(%(m_content)s, {PREVIEW_LENGTH})"
        "  ELSE c.last_message_preview END,"
        f" last_message_at = CASE WHEN {_NEWEST} THEN closed.created_at ELSE c.last_message_at END"
        " FROM closed WHERE c.id = %(conversation)s)",
    ]
    if artifacts:
        rows = ", ".join(
            "(" + ", ".join(f"%(a{i}_{name})s" for name in ARTIFACT_FIELDS) + ")" for i in range(artifacts)
        )
        parts.append(
            f"stored AS (INSERT INTO {ARTIFACTS} (message_id, conversation_id, created_at,"
            f" {', '.join(_columns(Artifact, ARTIFACT_FIELDS))})"
            f" SELECT closed.id, %(conversation)s, %(now)s, v.* FROM closed, (VALUES {rows}) AS v"
            " ON CONFLICT DO NOTHING)"  # a repeated save (see session_writes)
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
        **{
            f"m_{name}": Jsonb(value) if name == "parts" else value
            for name, value in closing_values(outcome, now).items()
        },
        **{f"s_{name}": value for name, value in session.items()},
        **{f"c_{name}": value for name, value in session_closing_counters(outcome, first_close=True).items()},
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
