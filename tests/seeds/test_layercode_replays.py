"""Seed 003: an exact signed request replayed within its window never makes a second provider call.

Each test sends raw bytes with the header the platform would send (a captured request, replayed
byte for byte), on both turn write paths. Bodies carry a nonce: the memory of requests (Redis, or
the process) outlives a test.
"""

import asyncio
import json
import time
import uuid

import pytest
from django.db import connection

from conversations.dialects import replays
from conversations.dialects.layercode import DEFAULT_FALLBACK
from conversations.dialects.signature import TOLERANCE_SECONDS, replay_key, sign
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.seeds.conftest import seed_client
from tests.seeds.test_layercode import BASE, SECRET, spoken, tts

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["native", "orm"] if connection.vendor == "postgresql" else ["orm"]


@pytest.fixture(params=PATHS)
def write_path(request, settings):
    settings.TURN_DB_ASYNC = request.param == "native"
    return request.param


@pytest.fixture
def client(asgi_server, gemini_upstream, settings):
    settings.LAYERCODE_WEBHOOK_SECRET = SECRET
    with seed_client(asgi_server, BASE) as http:
        yield http


def captured(payload: dict, *, age: int = 0) -> tuple[bytes, dict[str, str]]:
    """A request as the platform sent it (signed ``age`` seconds ago): body and headers."""
    body = json.dumps(payload).encode()
    signature = sign(body, SECRET, int(time.time()) - age)
    return body, {"content-type": "application/json", "layercode-signature": signature}


def send(client, request: tuple[bytes, dict[str, str]]) -> bytes:
    body, headers = request
    with client.stream("POST", "/agent", content=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        return response.read()


def nonce() -> str:
    return uuid.uuid4().hex[:8]


def test_an_exact_replay_without_a_turn_id_gets_the_stored_answer(client, upstream, write_path):
    text = f"once only {nonce()} [[chunks=3]]"
    request = captured({"text": text, "type": "message", "session_id": f"call-{nonce()}"})
    first, replayed = send(client, request), send(client, request)
    reply = expected_reply(text)
    assert first == b"".join(tts(p, None) for p in split_reply(reply, 3)) + end_without_turn_id()
    assert spoken(replayed) == (reply, ["response.tts", "response.end"])  # the stored answer
    assert len(upstream.requests) == 1
    assert Message.objects.count() == 2


def end_without_turn_id() -> bytes:
    return b'data: {"type":"response.end","turn_id":null}\n\n'


def test_a_replay_with_more_signatures_in_its_header_is_still_a_replay(client, upstream, write_path):
    """The request is named by its verified signature, not by the header's text."""
    text = f"padded {nonce()} [[chunks=2]]"
    body, headers = captured({"text": text, "type": "message", "session_id": f"call-{nonce()}"})
    send(client, (body, headers))
    padded = {**headers, "layercode-signature": "v1=" + "0" * 64 + "," + headers["layercode-signature"]}
    assert spoken(send(client, (body, padded)))[0] == expected_reply(text)
    assert len(upstream.requests) == 1


def test_an_exact_replay_without_a_session_id_is_the_same_turn(client, upstream, write_path):
    text = f"no session {nonce()} [[chunks=2]]"
    request = captured({"text": text, "type": "message"})
    first, replayed = send(client, request), send(client, request)
    assert spoken(first)[0] == spoken(replayed)[0] == expected_reply(text)
    assert len(upstream.requests) == 1
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 2


def test_an_exact_replay_with_a_turn_id_but_no_session_id_is_the_same_turn(client, upstream, write_path):
    text = f"turn only {nonce()} [[chunks=2]]"
    request = captured({"text": text, "type": "message", "turn_id": "turn-1"})
    first, replayed = send(client, request), send(client, request)
    assert spoken(first)[0] == spoken(replayed)[0] == expected_reply(text)
    assert len(upstream.requests) == 1
    assert Conversation.objects.count() == 1


def test_a_replay_while_the_answer_streams_follows_it(asgi_server, client, upstream, write_path):
    text = f"slowly {nonce()} [[chunks=5 delay=0.15]]"
    body, headers = captured({"text": text, "type": "message", "session_id": f"call-{nonce()}"})
    with (
        seed_client(asgi_server, BASE) as other,
        client.stream("POST", "/agent", content=body, headers=headers) as first,
    ):
        stream = first.iter_bytes()
        received = next(stream)
        replayed = send(other, (body, headers))
        received += b"".join(stream)
    assert spoken(received)[0] == spoken(replayed)[0] == expected_reply(text)
    assert len(upstream.requests) == 1
    assert Message.objects.filter(role="assistant").count() == 1


def test_a_different_body_is_a_new_turn(client, upstream, write_path):
    session = f"call-{nonce()}"
    send(client, captured({"text": "first thing [[chunks=1]]", "type": "message", "session_id": session}))
    answer = send(
        client, captured({"text": "second thing [[chunks=1]]", "type": "message", "session_id": session})
    )
    assert spoken(answer)[0] == expected_reply("second thing")
    assert len(upstream.requests) == 2
    assert Message.objects.filter(role="assistant").count() == 2


def test_the_same_words_signed_again_are_a_new_turn(client, upstream, write_path):
    """Without a turn_id, only the exact request is a replay: the caller may say the same twice."""
    payload = {"text": f"yes {nonce()} [[chunks=1]]", "type": "message", "session_id": f"call-{nonce()}"}
    send(client, captured(payload, age=5))
    send(client, captured(payload, age=0))
    assert len(upstream.requests) == 2


def test_a_replay_outside_the_window_is_refused_as_before(client, upstream, write_path):
    payload = {"text": f"old news {nonce()}", "type": "message", "session_id": f"call-{nonce()}"}
    body, headers = captured(payload, age=TOLERANCE_SECONDS + 1)
    response = client.post("/agent", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_expired"
    assert upstream.requests == []


def test_the_replay_of_a_refused_request_is_refused_too(client, upstream, settings, write_path):
    """Refused (no provider configured), the request's replay stays refused once the cause is gone."""
    request = captured({"text": f"refused {nonce()}", "type": "message", "session_id": f"call-{nonce()}"})
    key, settings.GEMINI_API_KEY = settings.GEMINI_API_KEY, ""
    assert send(client, request) == tts(DEFAULT_FALLBACK, None) + end_without_turn_id()
    settings.GEMINI_API_KEY = key
    assert send(client, request) == tts(DEFAULT_FALLBACK, None) + end_without_turn_id()
    assert upstream.requests == []
    assert not Message.objects.exists()


# --- the memory of requests -------------------------------------------------------------------------
def test_requests_are_remembered_under_a_hash_of_the_signature_for_the_window(client, upstream, settings):
    if not settings.REDIS_URL:
        pytest.skip("the Redis memory (without Redis: the process's, tested below)")
    import redis

    body, headers = captured({"text": f"remember {nonce()} [[chunks=1]]", "type": "message"})
    send(client, (body, headers))
    mac = headers["layercode-signature"].split("v1=")[1]
    store = redis.Redis.from_url(settings.REDIS_URL)
    key = "chat:layercode-request:" + replay_key(mac)
    assert store.get(key) == b"opened"
    assert TOLERANCE_SECONDS - 10 < store.ttl(key) <= TOLERANCE_SECONDS
    assert not list(store.scan_iter(f"*{mac}*"))  # the signature itself is never stored


def test_without_redis_the_process_remembers_a_bounded_number_of_requests(settings):
    settings.REDIS_URL = ""
    run = nonce()
    until = time.time() + 60

    async def sights() -> tuple[bool, bool, bool, bool]:
        first = await replays.request_first_seen(f"{run}-0", until)
        again = await replays.request_first_seen(f"{run}-0", until)
        for n in range(1, replays.LOCAL_LIMIT + 1):
            await replays.request_first_seen(f"{run}-{n}", until)
        forgotten = await replays.request_first_seen(f"{run}-0", until)  # the oldest made room
        newest = await replays.request_first_seen(f"{run}-{replays.LOCAL_LIMIT}", until)
        return first, again, forgotten, newest

    assert asyncio.run(sights()) == (True, False, True, False)
    assert len(replays._local) == replays.LOCAL_LIMIT


def test_with_redis_unreachable_requests_count_as_first_seen(settings):
    """Fail open: the turn's idempotency still answers a replay from storage (see the module)."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    async def sights() -> tuple[bool, bool, str | None]:
        until = time.time() + 60
        return (
            await replays.request_first_seen("unreachable", until),
            await replays.request_first_seen("unreachable", until),
            await replays.request_state("unreachable"),
        )

    assert asyncio.run(sights()) == (True, True, None)
