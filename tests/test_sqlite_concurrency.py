"""The embedded default under concurrency: a server on a SQLite file, as ``make run`` serves it.

Each test talks to a live daphne process on a SQLite database of its own (whatever database the
rest of the suite uses), with the in-memory channel layer and the offline demo provider.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.live_server import ROOT, LiveServer
from tests.origins import page_origin
from tests.turn_client import SSEParser

TURNS = 20


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("embedded") / "db.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": "", "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    return path


def embedded_server(path: Path, **env: str) -> LiveServer:
    return LiveServer(
        {
            "DATABASE_URL": f"sqlite:///{path}",
            "REDIS_URL": "",
            "LLM_PROVIDER": "demo",
            "RATE_LIMIT_TURNS": "",
            "LOG_LEVEL": "WARNING",
            **env,
        },
        server="daphne",
    )


@pytest.fixture(scope="module")
def server(sqlite_file) -> Iterator[LiveServer]:
    live = embedded_server(sqlite_file, DEMO_DELAY="0.01").start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def impatient_server(sqlite_file) -> Iterator[LiveServer]:
    """Writers give up on SQLite's lock after 0.3 s (DATABASE_BUSY_TIMEOUT)."""
    live = embedded_server(sqlite_file, DEMO_DELAY="0.01", DATABASE_BUSY_TIMEOUT="0.3").start()
    yield live
    live.stop()


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another process's writer holding SQLite's one write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def rows(path: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql, params).fetchall()


def answers_of(path: Path, session_key: str) -> list[tuple[str, str]]:
    return rows(
        path,
        "SELECT m.status, m.content FROM conversations_message m"
        " JOIN conversations_conversation c ON c.id = m.conversation_id"
        " WHERE c.session_key = ? AND m.role = 'assistant'",
        session_key,
    )


async def sse_turn(http: httpx.AsyncClient, key: str, content: str) -> tuple[int, list[dict]]:
    parser, events = SSEParser(), []
    headers = {"Accept": "text/event-stream"}
    async with http.stream(
        "POST", f"/api/sessions/{key}/messages", json={"content": content}, headers=headers
    ) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, [response.json()]
        async for text in response.aiter_text():
            events += [frame.json() for frame in parser.feed(text)]
    return 200, events


async def create_session(url: str, key: str) -> None:
    """A socket joins an existing session: create it first."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        assert (await http.post("/api/sessions", json={"session_key": key})).status_code == 201


def ws_open(url: str, key: str):
    return ws_connect(url.replace("http://", "ws://") + f"/ws/chat/{key}/", origin=page_origin(url))


async def ws_turn(url: str, key: str, content: str) -> list[dict]:
    await create_session(url, key)
    async with ws_open(url, key) as ws:
        await ws.send(json.dumps({"type": "message", "content": content}))
        frames = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            frames.append(frame)
            if frame["type"] in ("done", "error"):
                return frames


async def test_twenty_concurrent_sse_turns_on_twenty_sessions_all_complete(server, sqlite_file):
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        results = await asyncio.gather(*(sse_turn(http, f"sse-{i}", f"hello {i}") for i in range(TURNS)))
    for status, events in results:
        assert status == 200, events
        assert events[-1]["type"] == "completed", events[-1]
    for i in range(TURNS):
        assert [status for status, _ in answers_of(sqlite_file, f"sse-{i}")] == ["complete"]


async def test_twenty_concurrent_websocket_turns_on_twenty_sessions_all_complete(server, sqlite_file):
    results = await asyncio.gather(*(ws_turn(server.url, f"ws-{i}", f"hello {i}") for i in range(TURNS)))
    for frames in results:
        assert frames[-1]["type"] == "done", frames[-1]
    for i in range(TURNS):
        assert [status for status, _ in answers_of(sqlite_file, f"ws-{i}")] == ["complete"]


async def test_six_concurrent_turns_on_one_session_give_one_answer_and_five_409s(sqlite_file):
    live = embedded_server(sqlite_file, DEMO_DELAY="0.05").start()  # an answer streams for seconds
    try:
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
            results = await asyncio.gather(*(sse_turn(http, "one-session", f"turn {i}") for i in range(6)))
    finally:
        live.stop()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409, 409, 409, 409], results
    for status, body in results:
        if status == 409:
            assert body[0]["error"]["code"] == "turn_in_progress"
        else:
            assert body[-1]["type"] == "completed"
    assert [status for status, _ in answers_of(sqlite_file, "one-session")] == ["complete"]


def test_a_write_that_outwaits_the_lock_is_database_busy_not_unavailable(impatient_server, sqlite_file):
    with write_lock_held(sqlite_file):
        response = httpx.post(
            f"{impatient_server.url}/api/sessions/busy-http/messages",
            json={"content": "hello"},
            headers={"Accept": "application/json"},
            timeout=30,
        )
        assert httpx.get(f"{impatient_server.url}/health", timeout=10).status_code == 200  # reads go on
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    error = response.json()["error"]
    assert error["code"] == "database_busy"
    assert "one writer at a time" in error["message"]
    assert "DATABASE_URL" in error["message"]
    assert rows(sqlite_file, "SELECT 1 FROM conversations_conversation WHERE session_key = 'busy-http'") == []


async def test_a_websocket_turn_that_outwaits_the_lock_gets_a_database_busy_frame(
    impatient_server, sqlite_file
):
    url = impatient_server.url
    await create_session(url, "busy-ws")
    async with ws_open(url, "busy-ws") as ws:
        with write_lock_held(sqlite_file):
            await ws.send(json.dumps({"type": "message", "content": "hello", "client_message_id": "m1"}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert frame["type"] == "error"
        assert frame["code"] == "database_busy"
        assert frame["client_message_id"] == "m1"
        assert frame["retry_after"] == 2
        assert "one writer at a time" in frame["message"]
        # The socket stays open: the same message, sent again once the lock is gone, is answered.
        await ws.send(json.dumps({"type": "message", "content": "hello", "client_message_id": "m1"}))
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "done":
            assert frame["type"] != "error", frame
    assert [status for status, _ in answers_of(sqlite_file, "busy-ws")] == ["complete"]
