"""The turn stage clock (``conversations/telemetry/stages.py``, ``chatproject/stage_clock.py``): its
marks, the turn's own CPU per task, a real turn's record on the project's ASGI stack (PostgreSQL,
the OpenAI adapter over HTTP to the fake upstream), and nothing at all while it is off."""

from __future__ import annotations

import asyncio
import time

import httpx
import httpx2
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.db import connection

from chatproject.body_guard import RequestBodyGuard
from chatproject.lean_edge import LeanEdge
from chatproject.stage_clock import RECORDS_PATH, StageClockApp
from conversations.request_end import RequestEndCallbacks
from conversations.telemetry import stages
from conversations.turns import running, store
from providers import stage_marks
from providers.asyncio_transport import AsyncioTransport, _Connection, _TimedConnection

TURN = "/api/sessions/timed/messages"
SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def clock_on():
    stages.enable()
    yield
    stages.disable()


@pytest.fixture
async def turns_settled():
    """The turns run on this test's loop: let their jobs and closing writes end on it."""
    yield
    for _ in range(500):
        if not running.running_jobs and not store._pending_closes:
            break
        await asyncio.sleep(0.02)


def edge_app() -> RequestBodyGuard:
    return RequestBodyGuard(RequestEndCallbacks(LeanEdge(ASGIHandler())))


def burn(ms: float) -> None:
    """Spend ``ms`` of this thread's CPU."""
    end = time.thread_time_ns() + int(ms * 1e6)
    while time.thread_time_ns() < end:
        pass


# --- the collector -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("", False), ("0", False), ("off", False), ("1", True), ("true", True)],
)
def test_the_setting_is_read_as_on_or_off(raw, expected):
    assert stages.flag(raw) is expected


def test_a_value_that_is_neither_is_refused_naming_the_setting():
    with pytest.raises(ImproperlyConfigured, match=r"TURN_TIMING='maybe'.*set 1"):
        stages.flag("maybe")


def test_the_clock_is_off_unless_the_environment_turns_it_on():
    assert stages.on is False
    assert stage_marks.current is None
    stages.mark("asgi")  # no clock: nothing happens, nothing is kept
    assert stages.current() is None
    assert stages.drain() == []


def test_marks_keep_their_order_the_first_of_a_name_counts_and_a_kept_clock_takes_no_more():
    clock = stages.TurnClock()
    clock.mark("asgi")
    clock.mark("edge")
    first_edge = clock.marks["edge"]
    clock.mark("edge")
    clock.mark("decoded")
    assert clock.marks["edge"] == first_edge
    record = clock.record()
    assert list(record) == ["asgi", "edge", "decoded"]
    assert record["asgi"] == [0, 0, 0, 0]
    walls = [values[0] for values in record.values()]
    assert walls == sorted(walls)
    assert all(value >= 0 for values in record.values() for value in values)
    stages.keep(clock)
    clock.mark("written")
    assert "written" not in clock.marks
    assert stages.drain() == [record]
    assert stages.drain() == []


def test_a_server_mark_is_placed_on_the_same_wall_clock_without_cpu():
    clock = stages.TurnClock()
    clock.mark("db_connection")
    clock.server_mark("pg_begin", time.time_ns() // 1000)
    clock.mark("db_result")
    wall, own, loop, proc = clock.record()["pg_begin"]
    assert (own, loop, proc) == (None, None, None)
    assert -2_000_000 < wall <= clock.record()["db_result"][0] + 1_000  # µs resolution


async def test_each_turn_gets_the_cpu_of_its_own_tasks_not_its_neighbours():
    """Two requests interleaved on one loop: A spends 4 x 8 ms, B 4 x 2 ms, in steps that alternate.
    Each one's own CPU is its own; the loop thread's CPU between its marks has both."""
    undo = stages.install_task_clock(asyncio.get_running_loop())
    clocks: dict[str, stages.TurnClock] = {}

    async def request(name: str, ms: float) -> None:
        clock, token = stages.begin(stages.arrival())
        clocks[name] = clock
        for _ in range(4):
            await asyncio.sleep(0)
            burn(ms)

        async def child() -> None:
            burn(ms)

        await asyncio.create_task(child())  # a task it starts is its own too
        clock.mark("written")
        stages.end(token)

    try:
        await asyncio.gather(asyncio.create_task(request("a", 8)), asyncio.create_task(request("b", 2)))
    finally:
        undo()
    own = {name: clock.record()["written"][1] / 1e6 for name, clock in clocks.items()}
    loop = {name: clock.record()["written"][2] / 1e6 for name, clock in clocks.items()}
    assert "arrived" in clocks["a"].marks  # its task was created after the task clock was installed
    assert 40 <= own["a"] < 40 + 8, own
    assert 10 <= own["b"] < 10 + 8, own
    assert loop["b"] >= 40, loop  # B's wall span had A's steps in it


async def test_the_task_clock_keeps_tasks_working_and_is_undone():
    loop = asyncio.get_running_loop()
    undo = stages.install_task_clock(loop)
    try:
        assert await asyncio.create_task(asyncio.sleep(0, result=5)) == 5
        slow = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await asyncio.wait_for(asyncio.shield(asyncio.sleep(0, result=7)), 1) == 7
    finally:
        undo()
    assert loop.get_task_factory() is None


# --- the transport ---------------------------------------------------------------------------------
async def test_the_transport_times_the_upstream_only_while_the_clock_is_on(upstream):
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    async def exchange(transport: AsyncioTransport) -> _Connection:
        async with httpx2.AsyncClient(transport=transport) as client:
            response = await client.post(upstream.openai_base_url + "/chat/completions", json=body)
            assert response.status_code == 200
            [[conn]] = transport._idle.values()  # read to its end: back in the pool
        return conn

    off = AsyncioTransport()
    assert type(await exchange(off)) is _Connection
    await off.aclose()

    stages.enable()
    try:
        clock, token = stages.begin()
        on = AsyncioTransport()
        conn = await exchange(on)
        stages.end(token)
        await on.aclose()
    finally:
        stages.disable()
    assert type(conn) is _TimedConnection
    order = ["request_built", "connected", "sent", "upstream_head", "upstream_body"]
    assert [name for name in clock.marks if name in order] == order
    walls = [clock.marks[name][0] for name in order]
    assert walls == sorted(walls)


# --- a real turn on the project's ASGI stack ---------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_a_timed_turn_has_every_stage_in_order_and_is_served_once(
    clock_on, openai_upstream, turns_settled
):
    app = StageClockApp(edge_app())
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4321))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            assert (await http.get(RECORDS_PATH)).json()["records"] == []  # installs the task clock
            turn = await asyncio.create_task(http.post(TURN, json={"content": "hello"}, headers=SSE))
            assert turn.status_code == 200, turn.text
            assert b"event: delta" in turn.content
            served = (await http.get(RECORDS_PATH)).json()
            again = (await http.get(RECORDS_PATH)).json()
    finally:
        app.untime_tasks()
    assert again["records"] == []
    [record] = served["records"]
    chain = [name for name, _ in served["stages"]]
    expected = chain if connection.vendor == "postgresql" else [n for n in chain if not n.startswith("db_")]
    present = [name for name in chain if name in record]
    assert present == expected
    walls = [record[name][0] for name in present]
    assert walls == sorted(walls), dict(zip(present, walls, strict=True))
    owns = [record[name][1] for name in present]
    assert owns == sorted(owns)
    loops = [record[name][2] for name in present]
    assert all(own <= loop for own, loop in zip(owns, loops, strict=True))
    assert record["written"][1] > 0  # the turn spent CPU of its own
    assert record["response_head"][0] < record["written"][0]
    if connection.vendor == "postgresql":  # PostgreSQL's clock inside the round trip
        assert record["db_connection"][0] <= record["pg_begin"][0] + 1_000
        assert record["pg_begin"][0] <= record["pg_commit"][0] <= record["db_result"][0] + 1_000


@pytest.mark.django_db(transaction=True)
async def test_off_nothing_is_timed_or_kept_and_the_wrapper_is_not_in_the_stack(
    openai_upstream, turns_settled
):
    import chatproject.asgi

    assert not isinstance(chatproject.asgi.application, StageClockApp)
    transport = httpx.ASGITransport(app=edge_app(), client=("10.1.2.3", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        turn = await http.post(TURN, json={"content": "hello"}, headers=SSE)
        missing = await http.get(RECORDS_PATH)
    assert turn.status_code == 200 and b"event: delta" in turn.content
    assert missing.status_code == 404
    assert asyncio.get_running_loop().get_task_factory() is None
    assert stages.drain() == []
