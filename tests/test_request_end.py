"""A streamed turn's listener is its HTTP request: it leaves when the request ends, read or not.

A client that disconnects while the middleware still handles the response never starts the
body's iterator, so the iterator's ``finally`` never detaches it; without the request's end the
turn ran to the end with nobody listening. Found by the client-disconnect scenario
(tests/reliability).
"""

import asyncio

import pytest

from conversations.models import Message
from conversations.request_end import RequestEndCallbacks, on_request_end
from conversations.turns import jobs
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start


async def run_request(app) -> None:
    await RequestEndCallbacks(app)({"type": "http"}, None, None)


async def test_callbacks_run_when_the_request_ends_however_it_ends():
    ran: list[str] = []

    async def returns(scope, receive, send):
        assert on_request_end(lambda: ran.append("returned"))

    async def fails(scope, receive, send):
        on_request_end(lambda: ran.append("failed"))
        raise RuntimeError("boom")

    async def hangs(scope, receive, send):
        on_request_end(lambda: ran.append("cancelled"))
        await asyncio.sleep(60)

    await run_request(returns)
    with pytest.raises(RuntimeError):
        await run_request(fails)
    request = asyncio.ensure_future(run_request(hangs))
    await asyncio.sleep(0.01)
    request.cancel()  # the server gives up on the connection
    with pytest.raises(asyncio.CancelledError):
        await request
    assert ran == ["returned", "failed", "cancelled"]
    assert on_request_end(lambda: None) is False  # outside a request: nothing to attach to


@pytest.mark.django_db(transaction=True)
async def test_a_turn_whose_response_body_is_never_read_is_stopped_when_the_request_ends(openai_upstream):
    turn = await turn_start(TurnRequest(session_key="never-read", content="long [[chunks=40 delay=0.05]]"))

    async def view_whose_client_left(scope, receive, send):
        jobs.follow(turn, grace=0)  # the response is built, then the request is over before it streams

    await run_request(view_whose_client_left)
    job = jobs.running_jobs.get(turn.message_id)
    if job is not None:
        await asyncio.wait_for(asyncio.shield(job.task), 5)  # stopped long before its 2 s of chunks
    answer = await Message.objects.aget(pk=turn.message_id)
    assert (answer.status, answer.error_code) == ("interrupted", "disconnected")
