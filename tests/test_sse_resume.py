"""GET /api/sessions/{key}/messages/{id}/stream in one process (in-memory or Redis buffer)."""

import httpx
import pytest

from tests.fake_upstream import expected_reply
from tests.turn_client import SSEParser, sse_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(asgi_server, openai_upstream):
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        yield http


def resume(client, url, **headers):
    parser, frames = SSEParser(), []
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, response.json()
        for chunk in response.iter_text():
            frames.extend(f.json() for f in parser.feed(chunk))
    return 200, frames


def test_resume_of_a_finished_turn_sends_only_the_events_after_last_event_id(client):
    _, events = sse_events(client, "/api/sessions/r-1/messages", {"content": "again [[chunks=4]]"})
    message_id = events[0]["message_id"]
    status, rest = resume(client, f"/api/sessions/r-1/messages/{message_id}/stream", **{"Last-Event-ID": "3"})
    assert status == 200
    assert rest == events[3:]
    status, everything = resume(client, f"/api/sessions/r-1/messages/{message_id}/stream?after_seq=0")
    assert "".join(e.get("text", "") for e in everything if e["type"] == "delta") == expected_reply(
        "again [[chunks=4]]"
    )


def test_resume_in_another_session_or_of_an_unknown_message_is_404(client):
    _, events = sse_events(client, "/api/sessions/r-2/messages", {"content": "mine"})
    message_id = events[0]["message_id"]
    status, body = resume(client, f"/api/sessions/other/messages/{message_id}/stream")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _ = resume(client, "/api/sessions/r-2/messages/00000000-0000-0000-0000-000000000000/stream")
    assert status == 404


def test_malformed_last_event_id_is_400(client):
    _, events = sse_events(client, "/api/sessions/r-3/messages", {"content": "x"})
    url = f"/api/sessions/r-3/messages/{events[0]['message_id']}/stream"
    status, body = resume(client, url, **{"Last-Event-ID": "abc"})
    assert (status, body["error"]["code"]) == (400, "invalid_last_event_id")


def test_resume_after_the_last_event_of_a_finished_turn_ends_at_once(client):
    _, events = sse_events(client, "/api/sessions/r-4/messages", {"content": "done [[chunks=2]]"})
    url = f"/api/sessions/r-4/messages/{events[0]['message_id']}/stream"
    status, rest = resume(client, url, **{"Last-Event-ID": str(events[-1]["seq"] + 50)})
    assert (status, rest) == (200, [])


async def test_a_resume_that_joins_after_the_turn_ended_reads_what_it_missed(settings):
    """The turn can end between the resume's first read (the answer still streaming, nothing
    buffered yet) and its joining the turn's group: its last events went out before the stream
    listened. The stream reads again after RECHECK_SECONDS without a live event and ends with the
    stored answer, instead of waiting forever."""
    import asyncio
    import time

    from asgiref.sync import sync_to_async

    from conversations.models import Message
    from conversations.views import streams
    from tests.factories import make_conversation, make_message

    streams.RECHECK_SECONDS = 0.2  # the module's wait, shortened for the test
    try:
        session = await sync_to_async(make_conversation)(session_key="late-join")
        user = await sync_to_async(make_message)(session)
        answer = await sync_to_async(make_message)(
            session, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING, content="", parent=user
        )
        events = streams.resumed_events(None, "late-join", str(answer.pk), 0)
        first = asyncio.ensure_future(anext(events, None))
        await asyncio.sleep(0.05)  # the stream has read the answer (streaming) and joined the group
        await Message.objects.filter(pk=answer.pk).aupdate(
            status=Message.Status.COMPLETE, content="Done.", finish_reason="stop"
        )  # the turn ended; nothing more will be published
        started = time.monotonic()
        seen = [await asyncio.wait_for(first, 5)]
        seen += [event async for event in events]
        assert time.monotonic() - started < 5
        assert seen[-1]["type"] == "completed" and seen[-1]["content"] == "Done."
        assert all(event.get("snapshot") for event in seen)
    finally:
        streams.RECHECK_SECONDS = 2.0
