"""A job whose last listener leaves: stopped at once when nobody else listens, kept when someone does."""

from __future__ import annotations

import asyncio

import pytest

from conversations.models import Message
from conversations.presence import presence_add, presence_remove
from conversations.turns.jobs import launch, session_group
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start

pytestmark = pytest.mark.django_db(transaction=True)


async def started_job(key: str):
    turn = await turn_start(TurnRequest(session_key=key, content="slow [[chunks=40 delay=0.05]]"))
    job, queue = launch(turn, grace=0, listen=True)
    while job._presence_seen is None:  # the first replay-buffer append counted the listeners
        await queue.get()
    return job, queue


async def test_with_nobody_else_listening_the_turn_stops_as_its_client_leaves(openai_upstream):
    job, queue = await started_job("alone")
    job.detach(queue)
    assert job.turn._stop_requested  # at once: no Redis round trip between the client leaving and the stop
    await asyncio.wait_for(job.task, 5)
    answer = await Message.objects.aget(pk=job.message_id)
    assert (answer.status, answer.error_code) == ("interrupted", "disconnected")


async def test_a_socket_of_the_session_keeps_the_turn_going_after_the_client_left(openai_upstream):
    turn = await turn_start(TurnRequest(session_key="watched", content="warm up [[chunks=1]]"))
    [_ async for _ in turn.events()]
    group = session_group(turn.opened.conversation_id)
    await presence_add(group, "a-socket")
    try:
        job, queue = await started_job("watched")
        job.detach(queue)
        assert not job.turn._stop_requested
        await asyncio.sleep(0.3)
        assert not job.task.done()  # still generating for the socket
    finally:
        await presence_remove(group, "a-socket")
    await asyncio.wait_for(job.task, 5)  # the socket left too: stopped, or done by then
    answer = await Message.objects.aget(pk=job.message_id)
    assert answer.status in ("interrupted", "complete")
