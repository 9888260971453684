"""The WebSocket consumer through the real ASGI application (Channels' communicator), real SDK, fake upstream.

With REDIS_URL set (CI), the channel layer is channels-redis on real Redis.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from chatproject.asgi import application
from conversations.models import Message
from tests.factories import make_conversation
from tests.fake_upstream import expected_reply

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")  # the page and the socket share an origin


async def connect(session_key: str, cookie: str | None = None) -> WebsocketCommunicator:
    headers = [HOST, ORIGIN] + ([(b"cookie", cookie.encode())] if cookie else [])
    communicator = WebsocketCommunicator(application, f"/ws/chat/{session_key}/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    assert connected, code
    return communicator


async def close_code(path: str, headers: list) -> int | None:
    """The close code a refused socket gets (accepted, then closed with an application code)."""
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        return code
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
    return output["code"]


async def until_terminal(ws: WebsocketCommunicator, wait: float = 10) -> list[dict]:
    frames = []
    while True:
        frame = await ws.receive_json_from(timeout=wait)
        frames.append(frame)
        if frame["type"] in ("done", "error") and "seq" in frame:
            return frames


def text_of(frames):
    return "".join(f["text"] for f in frames if f["type"] == "delta")


@pytest.fixture
async def session(openai_upstream):
    return await sync_to_async(make_conversation)(owner=None, session_key="ws-1")


async def test_two_sockets_of_a_session_both_receive_the_whole_stream(session):
    first, second = await connect("ws-1"), await connect("ws-1")
    await first.send_json_to({"type": "message", "content": "to everyone [[chunks=5]]"})
    a, b = await until_terminal(first), await until_terminal(second)
    assert a == b
    assert [f["type"] for f in a] == ["started", "delta", "delta", "delta", "delta", "delta", "usage", "done"]
    assert [f["seq"] for f in a] == list(range(1, 9))
    assert text_of(a) == expected_reply("to everyone [[chunks=5]]")
    answer = await Message.objects.aget(pk=a[-1]["message_id"])
    assert answer.status == "complete"
    await first.disconnect()
    await second.disconnect()


async def test_stop_cancels_the_upstream_and_saves_interrupted(session, openai_upstream):
    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": "long [[chunks=6 fault=stall:2]]"})
    frames = [await ws.receive_json_from(timeout=5) for _ in range(3)]  # started + 2 deltas
    await ws.send_json_to({"type": "stop"})
    frames += await until_terminal(ws)
    assert (frames[-1]["type"], frames[-1]["status"], frames[-1]["code"]) == (
        "error",
        "interrupted",
        "stopped",
    )
    assert await openai_upstream.wait_for_disconnect_async(timeout=2.0)
    answer = await Message.objects.aget(pk=frames[0]["message_id"])
    assert answer.status == "interrupted"
    assert answer.content == text_of(frames)
    await ws.disconnect()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "message"}', "invalid_input"),
        ('{"type": "message", "content": "   "}', "invalid_input"),
        ('{"type": "message", "content": "hi", "temperature": "hot"}', "invalid_input"),
        ('{"type": "resume", "message_id": 5}', "invalid_input"),
        ('{"type": "stop"}', "not_running"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(session, raw, code):
    ws = await connect("ws-1")
    await ws.send_to(text_data=raw)
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    assert "seq" not in error
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()


async def test_oversize_and_binary_frames_are_refused(session, settings):
    settings.WS_MAX_FRAME_BYTES = 2048
    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": "x" * 5000})
    assert (await ws.receive_json_from(timeout=5))["code"] == "frame_too_large"
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from(timeout=5))["code"] == "bad_frame"
    assert not await Message.objects.aexists()
    await ws.disconnect()


async def test_resume_after_reconnect_delivers_exactly_the_missed_events(session):
    text = "resume me [[chunks=8 delay=0.05]]"
    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": text})
    seen = [await ws.receive_json_from(timeout=5) for _ in range(3)]
    await ws.disconnect()  # cut off mid-stream; the turn runs on within the grace period
    again = await connect("ws-1")
    await again.send_json_to(
        {"type": "resume", "message_id": seen[0]["message_id"], "after_seq": seen[-1]["seq"]}
    )
    rest = await until_terminal(again)
    frames = seen + rest
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert text_of(frames) == expected_reply(text)
    assert frames[-1]["type"] == "done"
    await again.disconnect()


async def test_resume_of_a_finished_turn_after_the_buffer_expired_serves_the_stored_answer(session, settings):
    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": "short [[chunks=2]]"})
    frames = await until_terminal(ws)
    from conversations.redis_client import redis_client
    from conversations.turns.replay_buffer import get_replay_buffer

    message_id = frames[0]["message_id"]
    from conversations.turns.running import running_jobs

    for _ in range(200):  # the job has published its last batch to the buffer
        if message_id not in running_jobs:
            break
        await asyncio.sleep(0.01)
    if settings.REDIS_URL:
        await redis_client().delete(f"chat:turn:{message_id}:events")
    else:
        get_replay_buffer()._events.pop(message_id)
    await ws.send_json_to({"type": "resume", "message_id": message_id, "after_seq": 1})
    replay = await until_terminal(ws)
    assert all(f.get("snapshot") for f in replay)
    assert replay[-1]["type"] == "done"
    assert replay[-1]["content"] == expected_reply("short [[chunks=2]]")
    await ws.disconnect()


async def test_turn_is_stopped_when_no_listener_returns_within_the_grace_period(
    session, settings, openai_upstream
):
    settings.WS_DETACH_GRACE_SECONDS = 0.2
    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": "abandoned [[chunks=6 fault=stall:1]]"})
    started = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    assert await openai_upstream.wait_for_disconnect_async(timeout=3.0)
    for _ in range(100):
        answer = await Message.objects.aget(pk=started["message_id"])
        if answer.status != "streaming":
            break
        await asyncio.sleep(0.05)
    assert (answer.status, answer.error_code) == ("interrupted", "disconnected")


async def test_unknown_session_closes_4403(openai_upstream):
    assert await close_code("/ws/chat/nope/", [HOST, ORIGIN]) == 4403


async def test_no_credentials_closes_4401_when_anonymous_use_is_off(session, settings):
    settings.ALLOW_ANONYMOUS = False
    assert await close_code("/ws/chat/ws-1/", [HOST, ORIGIN]) == 4401


async def test_session_cookie_authenticates_and_another_owners_session_is_4403(openai_upstream):
    def setup():
        alice = get_user_model().objects.create_user("alice-ws", password="pw-alice-123")
        bob = get_user_model().objects.create_user("bob-ws", password="pw-bob-123")
        make_conversation(owner=alice, session_key="mine")
        make_conversation(owner=bob, session_key="his")
        client = Client()
        client.force_login(alice)
        return f"sessionid={client.cookies['sessionid'].value}"

    cookie = await sync_to_async(setup)()
    ws = await connect("mine", cookie)
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()
    assert await close_code("/ws/chat/his/", [HOST, ORIGIN, (b"cookie", cookie.encode())]) == 4403


async def test_foreign_origin_is_refused(session):
    communicator = WebsocketCommunicator(
        application, "/ws/chat/ws-1/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_nul_characters_in_a_frame_get_an_error_frame(session):
    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": "bad\u0000byte"})
    error = await ws.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", "invalid_input")
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()


async def test_a_message_refused_because_the_database_is_down_gets_an_error_frame(session, monkeypatch):
    import psycopg

    from conversations.turns import store

    async def database_down(opening):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(store, "turn_open", database_down)
    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": "hello", "client_message_id": "c-down"})
    frame = await ws.receive_json_from(timeout=5)
    assert frame["type"] == "error"
    assert frame["code"] == "database_unavailable"
    assert frame["client_message_id"] == "c-down"
    monkeypatch.undo()
    await ws.send_json_to({"type": "message", "content": "again [[chunks=2]]", "client_message_id": "c-down"})
    frames = await until_terminal(ws)  # the socket is still open, and the retry is answered
    assert frames[-1]["type"] == "done"
    await ws.disconnect()


async def test_the_replay_buffer_of_a_turn_expires(session, settings):
    """Its expiry is set now and then, not per batch: a finished turn's buffer must still have one."""
    if not settings.REDIS_URL:
        pytest.skip("the Redis replay buffer needs REDIS_URL")
    from conversations.redis_client import redis_client
    from conversations.turns.running import running_jobs

    ws = await connect("ws-1")
    await ws.send_json_to({"type": "message", "content": "expiring [[chunks=5]]"})
    frames = await until_terminal(ws)
    message_id = frames[0]["message_id"]
    for _ in range(200):
        if message_id not in running_jobs:
            break
        await asyncio.sleep(0.01)
    key = f"chat:turn:{message_id}:events"
    assert await redis_client().llen(key) == len(frames)
    assert 0 < await redis_client().ttl(key) <= settings.TURN_BUFFER_TTL_SECONDS
    await ws.disconnect()
