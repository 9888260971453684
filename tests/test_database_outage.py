"""The database unreachable for a while (restart, failover): what each layer does.

The whole scenario (a PostgreSQL restarted under load) is tests/reliability/test_postgres_restart.py.
"""

import asyncio
import socket
import threading
import time

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connection

from conversations.artifacts import CodeBlock
from conversations.db import retry_while_database_down, run_db
from conversations.db_errors import database_problem
from conversations.models import Artifact, Conversation, Message
from conversations.turns import pg_pool, pg_writes, store
from conversations.turns.orm_writes import turn_finish
from conversations.turns.pg_pool import spoke_while_idle
from conversations.turns.rules import TurnOutcome
from tests.live_server import live_server
from tests.turn_client import sse_events


def flaky(failures: int):
    calls = []

    def fn(value):
        calls.append(value)
        if len(calls) <= failures:
            raise OperationalError("connection refused")
        return value

    return fn, calls


async def test_run_db_retries_a_write_marked_safe_to_repeat_while_the_database_is_down():
    fn, calls = flaky(failures=2)
    assert await run_db(retry_while_database_down(5)(fn), "saved") == "saved"
    assert calls == ["saved"] * 3


async def test_run_db_gives_up_after_the_retry_window():
    fn, calls = flaky(failures=100)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        await run_db(retry_while_database_down(0.5)(fn), "x")
    assert 0.4 < time.monotonic() - started < 2
    assert 2 <= len(calls) < 10


async def test_run_db_does_not_retry_unmarked_functions():
    fn, calls = flaky(failures=1)
    with pytest.raises(OperationalError):
        await run_db(fn, "x")
    assert len(calls) == 1


async def test_a_stalled_database_does_not_starve_the_event_loops_default_executor():
    """Django logs 4xx/5xx responses there: a DB outage must not stop error responses."""
    release = threading.Event()
    stalled = [asyncio.ensure_future(run_db(release.wait, 10)) for _ in range(40)]  # more than any pool
    try:
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.run_in_executor(None, lambda: "free"), 2) == "free"
    finally:
        release.set()
        await asyncio.gather(*stalled)


async def test_the_native_closing_write_is_retried_while_the_database_is_down(monkeypatch):
    calls = []

    async def down_twice(conversation_id, message_id, outcome):
        calls.append(message_id)
        if len(calls) <= 2:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(store, "native_enabled", lambda: True)
    monkeypatch.setattr(pg_writes, "turn_finish", down_twice)
    await store.turn_finish("c", "m", TurnOutcome(status="complete", content="", provider="p", model="m"))
    assert calls == ["m"] * 3


OUTCOME = TurnOutcome(
    status="complete",
    content="```py\nx = 1\n```",
    provider="openai",
    model="m",
    artifacts=(CodeBlock(position=0, language="py", filename="", content="x = 1\n"),),
)


def streaming_answer(key: str) -> Message:
    conversation = Conversation.objects.create(session_key=key)
    return Message.objects.create(
        conversation=conversation, role="assistant", status="streaming", provider="openai", model="m"
    )


@pytest.mark.django_db
def test_turn_finish_is_retried_and_safe_to_repeat():
    assert turn_finish.database_retry_seconds > 0
    answer = streaming_answer("repeat")
    turn_finish(str(answer.conversation_id), str(answer.pk), OUTCOME)
    turn_finish(str(answer.conversation_id), str(answer.pk), OUTCOME)  # its commit was not acknowledged
    answer.refresh_from_db()
    assert (answer.status, answer.content) == ("complete", OUTCOME.content)
    assert Artifact.objects.filter(message=answer).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the native path is PostgreSQL's")
async def test_the_native_turn_finish_is_safe_to_repeat():
    answer = await sync_to_async(streaming_answer)("repeat-native")
    for _ in range(2):
        await pg_writes.turn_finish(str(answer.conversation_id), str(answer.pk), OUTCOME)
    await pg_pool.close_pool()
    assert await Artifact.objects.filter(message_id=answer.pk).acount() == 1
    assert (await Message.objects.aget(pk=answer.pk)).status == "complete"


def test_a_pooled_connection_the_server_spoke_to_while_idle_is_noticed_without_a_round_trip():
    ours, server = socket.socketpair()
    with ours, server:
        assert not spoke_while_idle(ours)
        server.sendall(b"E")  # PostgreSQL says it is shutting down, then closes
        assert spoke_while_idle(ours)
    assert spoke_while_idle(ours)  # closed


@pytest.mark.django_db
def test_a_turn_refused_because_the_database_is_down_is_a_json_503(client, monkeypatch):
    async def database_down(request):
        raise OperationalError("connection failed: Connection refused")

    monkeypatch.setattr("conversations.routes.pipeline.turn_start", database_down)
    response = client.post("/api/sessions/s/messages", {"content": "hi"}, content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response.json()["error"]["code"] == "database_unavailable"


def test_health_with_the_pool_answers_503_quickly_when_the_database_is_unreachable():
    """Not after DATABASE_POOL_TIMEOUT (10 s): load balancers give up on a health check long before."""
    env = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere",
        "REDIS_URL": "",
        "DATABASE_POOL": "true",
    }
    with live_server(env) as url:
        started = time.monotonic()
        response = httpx.get(url + "/health", timeout=20)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert elapsed < 5, elapsed


@pytest.mark.django_db(transaction=True)
def test_a_turn_whose_closing_write_cannot_be_saved_ends_with_a_clear_failed_event(
    asgi_server, openai_upstream, monkeypatch
):
    """The save was retried for TURN_SAVE_RETRY_SECONDS; the client still gets a terminal event saying so."""

    async def database_down(conversation_id, message_id, outcome):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(store, "turn_finish", database_down)
    with httpx.Client(base_url=asgi_server.url, timeout=30) as client:
        status, events = sse_events(
            client, "/api/sessions/db-down/messages", {"content": "hello [[chunks=3]]"}
        )
    assert status == 200
    assert [e["type"] for e in events].count("delta") == 3
    assert events[-1]["type"] == "failed"
    assert events[-1]["code"] == "database_unavailable"
    assert "could not be saved" in events[-1]["message"]


def sqlite_lock_error(path) -> OperationalError:
    """The error Django raises for a write that waited out the busy timeout on a locked SQLite file."""
    import sqlite3

    from django.db.utils import ConnectionHandler

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": {"timeout": 0.05}}}
    )
    try:
        with handler["default"].cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")
    except OperationalError as exc:
        return exc
    finally:
        handler.close_all()
        holder.close()
    raise AssertionError("the write did not wait for the lock")


def test_a_locked_sqlite_database_is_busy_and_an_unreachable_one_unavailable(tmp_path, django_db_blocker):
    with django_db_blocker.unblock():  # a database of its own, not the suite's
        code, message = database_problem(sqlite_lock_error(tmp_path / "locked.sqlite3"))
    assert code == "database_busy"
    assert "one writer at a time" in message and "DATABASE_URL" in message
    for down in (OperationalError("connection refused"), psycopg.OperationalError("connection refused")):
        assert database_problem(down)[0] == "database_unavailable"


@pytest.mark.django_db(transaction=True)
def test_a_closing_write_that_stays_busy_ends_the_turn_with_database_busy(
    asgi_server, openai_upstream, monkeypatch, tmp_path
):
    busy = sqlite_lock_error(tmp_path / "locked.sqlite3")

    async def database_busy(conversation_id, message_id, outcome):
        raise busy

    monkeypatch.setattr(store, "turn_finish", database_busy)
    with httpx.Client(base_url=asgi_server.url, timeout=30) as client:
        status, events = sse_events(client, "/api/sessions/db-busy/messages", {"content": "hi [[chunks=2]]"})
    assert status == 200
    assert events[-1]["type"] == "failed"
    assert events[-1]["code"] == "database_busy"
    assert "could not be saved" in events[-1]["message"]
