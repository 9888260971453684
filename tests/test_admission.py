"""Admission under a burst: TURN_DB_POOL_SIZE turns open at once, the rest wait in order, bounded."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conversations.models import Message
from conversations.turns import admission
from conversations.turns.admission import AdmissionGate, ServerBusy, admission_gate
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start

pytestmark = pytest.mark.django_db(transaction=True)


async def test_waiters_are_admitted_first_come_first_served(settings):
    settings.TURN_QUEUE_MAX_WAITING, settings.TURN_QUEUE_TIMEOUT = 10, 5
    gate = AdmissionGate(1)
    await gate.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await gate.acquire()
        order.append(i)
        gate.release()

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    assert (gate.running, gate.waiting) == (1, 5)
    gate.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [0, 1, 2, 3, 4]
    assert (gate.running, gate.waiting) == (0, 0)


async def test_past_the_queue_or_its_timeout_a_turn_is_refused_with_retry_after(settings):
    settings.TURN_QUEUE_MAX_WAITING, settings.TURN_QUEUE_TIMEOUT = 1, 0.05
    gate = AdmissionGate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    with pytest.raises(ServerBusy, match="TURN_QUEUE_MAX_WAITING=1") as full:
        await gate.acquire()
    with pytest.raises(ServerBusy, match=r"waited TURN_QUEUE_TIMEOUT \(0.05 s\)") as late:
        await first
    for refused in (full.value, late.value):
        assert (refused.status, refused.code) == (503, "server_busy")
        assert refused.details["retry_after"] == admission.BUSY_RETRY_AFTER_SECONDS
    assert (gate.running, gate.waiting) == (1, 0)


async def test_a_client_that_leaves_while_waiting_leaves_the_queue(settings):
    settings.TURN_QUEUE_MAX_WAITING, settings.TURN_QUEUE_TIMEOUT = 10, 5
    gate = AdmissionGate(1)
    await gate.acquire()
    leaving = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    leaving.cancel()
    await asyncio.gather(leaving, return_exceptions=True)
    assert gate.waiting == 0
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # the slot went to nobody else


async def test_a_turn_waits_at_the_gate_then_opens_and_a_refused_one_stores_nothing(
    openai_upstream, settings
):
    settings.TURN_DB_POOL_SIZE = 1
    settings.TURN_QUEUE_MAX_WAITING, settings.TURN_QUEUE_TIMEOUT = 1, 5
    gate = admission_gate()
    assert gate.limit == 1
    await gate.acquire()  # a burst holds the only slot

    waiting = asyncio.create_task(turn_start(TurnRequest(session_key="queued", content="wait [[chunks=2]]")))
    await asyncio.sleep(0.05)
    assert gate.waiting == 1 and not waiting.done()
    with pytest.raises(ServerBusy):
        await turn_start(TurnRequest(session_key="refused", content="no room [[chunks=2]]"))
    assert not await Message.objects.filter(conversation__session_key="refused").aexists()
    assert openai_upstream.requests == []  # nothing was sent upstream either

    gate.release()
    turn = await asyncio.wait_for(waiting, 5)
    events = [event.type async for event in turn.events()]
    assert events[0] == "started" and events[-1] == "completed"
    assert (gate.running, gate.waiting) == (0, 0)


def test_over_http_it_is_a_503_server_busy_with_retry_after(
    asgi_server, openai_upstream, settings, monkeypatch
):
    settings.TURN_QUEUE_MAX_WAITING = 0
    full = AdmissionGate(1)
    full._slots = asyncio.Semaphore(0)  # every slot taken
    monkeypatch.setattr("conversations.turns.service.admission_gate", lambda: full)
    answer = httpx.post(f"{asgi_server.url}/api/sessions/busy/messages", json={"content": "hi"}, timeout=10)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "server_busy"
    assert "TURN_QUEUE_MAX_WAITING" in answer.json()["error"]["message"]
    assert answer.headers["Retry-After"] == str(admission.BUSY_RETRY_AFTER_SECONDS)
