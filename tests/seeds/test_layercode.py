"""Seed 003 (Layercode voice agent), driven by a client written from its README alone."""

import json

import pytest

from conversations.dialects.layercode import DEFAULT_FALLBACK, DEFAULT_GREETING, DEFAULT_SYSTEM_PROMPT
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.seeds.conftest import seed_client

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/compat/layercode"


@pytest.fixture
def client(asgi_server, gemini_upstream):
    with seed_client(asgi_server, BASE) as http:
        yield http


def message(text, turn_id="turn-0001", session_id="sess-1234", kind="message"):
    return {"text": text, "type": kind, "session_id": session_id, "turn_id": turn_id}


def tts(content, turn_id="turn-0001") -> bytes:
    return (
        b"data: "
        + json.dumps(
            {"type": "response.tts", "content": content, "turn_id": turn_id}, separators=(",", ":")
        ).encode()
        + b"\n\n"
    )


def end(turn_id="turn-0001") -> bytes:
    return b'data: {"type":"response.end","turn_id":"' + turn_id.encode() + b'"}\n\n'


def agent(client, payload) -> bytes:
    with client.stream("POST", "/agent", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.read()


def test_message_streams_tts_chunks_then_end_byte_for_byte(client):
    text = "Hello, how are you? [[chunks=3]]"
    raw = agent(client, message(text))
    pieces = split_reply(expected_reply(text), 3)
    assert raw == b"".join(tts(p) for p in pieces) + end()


def test_every_turn_is_stored_under_its_session(client):
    agent(client, message("hi [[chunks=2]]"))
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.content) == ("complete", expected_reply("hi [[chunks=2]]"))
    assert answer.conversation.session_key == "layercode:sess-1234"


def test_session_start_greets_without_calling_the_provider(client, upstream):
    raw = agent(client, message("", kind="session.start", turn_id="turn-0000"))
    assert raw == tts(DEFAULT_GREETING, "turn-0000") + end("turn-0000")
    assert upstream.requests == []
    assert not Message.objects.exists()


def test_greeting_is_configurable(client, settings):
    settings.LAYERCODE_GREETING = "Welcome to the help line."
    raw = agent(client, message("", kind="session.start"))
    assert raw == tts("Welcome to the help line.") + end()


def test_replies_are_asked_to_be_speech_friendly(client, upstream, settings):
    agent(client, message("hi"))
    assert upstream.requests[-1].json["systemInstruction"]["parts"][0]["text"] == DEFAULT_SYSTEM_PROMPT
    settings.LAYERCODE_SYSTEM_PROMPT = "Speak like a pirate."
    agent(client, message("again", turn_id="turn-0002"))
    assert upstream.requests[-1].json["systemInstruction"]["parts"][0]["text"] == "Speak like a pirate."


def test_history_is_kept_per_session(client, upstream):
    agent(client, message("one", turn_id="t1"))
    agent(client, message("two", turn_id="t2"))
    contents = upstream.requests[-1].json["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "one"),
        ("model", expected_reply("one")),
        ("user", "two"),
    ]
    agent(client, message("elsewhere", session_id="sess-other"))
    assert len(upstream.requests[-1].json["contents"]) == 1


def test_provider_error_gets_a_friendly_fallback_then_end(client, upstream):
    upstream.push_fault("500")
    raw = agent(client, message("are you there"))
    assert raw == tts(DEFAULT_FALLBACK) + end()
    assert Message.objects.get(role="assistant").status == "failed"


def test_error_after_some_speech_still_ends_with_the_fallback(client, settings):
    settings.LAYERCODE_FALLBACK = "Let me try that again."
    text = "long story [[chunks=5 fault=drop:2]]"
    raw = agent(client, message(text))
    pieces = split_reply(expected_reply(text), 5)[:2]
    assert raw == b"".join(tts(p) for p in pieces) + tts("Let me try that again.") + end()


def test_a_turn_that_cannot_start_gets_the_fallback_too(client, settings):
    settings.GEMINI_API_KEY = ""
    raw = agent(client, message("no provider"))
    assert raw == tts(DEFAULT_FALLBACK) + end()


def test_a_new_message_stops_the_answer_still_being_spoken(asgi_server, client, upstream):
    """Barge-in: the caller spoke over the answer; it is kept interrupted, the new one answered."""
    first_text = "tell me everything [[chunks=6 fault=stall:1]]"
    with (
        seed_client(asgi_server, BASE) as other,
        client.stream("POST", "/agent", json=message(first_text, turn_id="t1")) as first,
    ):
        stream = first.iter_bytes()
        received = next(stream)
        while not received.endswith(b"\n\n"):
            received += next(stream)
        second = other.post("/agent", json=message("stop, what time is it", turn_id="t2"))
        received += b"".join(stream)
    assert received == tts(split_reply(expected_reply(first_text), 6)[0], "t1") + end("t1")
    assert second.status_code == 200
    assert second.content.endswith(end("t2"))
    answers = Message.objects.filter(role="assistant").order_by("created_at")
    assert [(a.status, a.error_code) for a in answers] == [("interrupted", "stopped"), ("complete", "")]


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"type": "session.end", "session_id": "s"}, "type"), ({"text": 5}, "text")],
)
def test_malformed_requests_are_json_errors(client, payload, field):
    response = client.post("/agent", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert not Conversation.objects.exists()


def test_served_at_the_root_when_it_is_the_root_dialect(asgi_server, gemini_upstream, root_mount):
    root_mount("layercode")
    with seed_client(asgi_server, "") as root:
        raw = agent(root, message("at the root [[chunks=1]]"))
        health = root.get("/health")
    assert raw == tts(expected_reply("at the root")) + end()
    assert "database" in health.json()  # layercode has no /health: the project's stays
