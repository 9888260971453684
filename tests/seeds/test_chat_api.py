"""Seed 004 (extensible AI chat API), driven by a client written from its README alone."""

import json
import os
import random
import uuid

import pytest

from accounts.keys import api_key_create
from accounts.models import ApiKey
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.seeds.conftest import seed_client
from tests.turn_client import SSEParser

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/compat/chat-api"


@pytest.fixture
def client(asgi_server, openai_upstream):
    with seed_client(asgi_server, BASE) as http:
        yield http


def chat(client, payload, **kwargs) -> tuple[bytes, list]:
    with client.stream("POST", "/api/chat/stream", json=payload, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    return raw, SSEParser().feed(raw.decode())


def text_of(frames) -> str:
    return "".join(f.json()["delta"] for f in frames if f.event == "delta")


def response_id(frames) -> str:
    done = [f for f in frames if f.event == "done"]
    assert len(done) == 1
    return done[0].json()["response_id"]


def test_delta_events_then_done_with_the_response_id_byte_for_byte(client):
    raw, frames = chat(client, {"message": "Hello [[chunks=3]]"})
    answer = Message.objects.get(role="assistant")
    pieces = split_reply(expected_reply("Hello [[chunks=3]]"), 3)
    expected = b"".join(
        b"event: delta\ndata: " + json.dumps({"delta": p}, separators=(",", ":")).encode() + b"\n\n"
        for p in pieces
    )
    expected += b'event: done\ndata: {"response_id":"' + str(answer.pk).encode() + b'"}\n\n'
    assert raw == expected
    assert (answer.status, answer.content) == ("complete", text_of(frames))


def test_previous_response_id_continues_the_conversation_with_its_history(client, upstream):
    _, first = chat(client, {"message": "one"})
    _, second = chat(client, {"message": "two", "previous_response_id": response_id(first)})
    sent = upstream.requests[-1].json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "one"),
        ("assistant", expected_reply("one")),
        ("user", "two"),
    ]
    chat(client, {"message": "three", "previous_response_id": response_id(second)})
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().messages.count() == 6


def test_without_previous_response_id_each_message_starts_a_conversation(client, upstream):
    chat(client, {"message": "one"})
    chat(client, {"message": "two"})
    assert len(upstream.requests[-1].json["messages"]) == 1
    assert Conversation.objects.count() == 2


def test_with_openai_responses_the_provider_chains_natively(asgi_server, responses_upstream):
    with seed_client(asgi_server, BASE) as client:
        _, first = chat(client, {"message": "one"})
        chat(client, {"message": "two", "previous_response_id": response_id(first)})
    provider_id = Message.objects.filter(role="assistant").order_by("created_at")[0].response_id
    assert provider_id.startswith("resp")
    sent = responses_upstream.requests[-1]
    assert sent.path.endswith("/responses")
    assert sent.json["previous_response_id"] == provider_id
    assert [item["content"] for item in sent.json["input"]] == ["two"]


@pytest.mark.parametrize("previous", ["not-an-id", str(uuid.uuid4())])
def test_unknown_previous_response_id_is_a_404(client, previous):
    response = client.post("/api/chat/stream", json={"message": "hi", "previous_response_id": previous})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "previous_response_not_found"
    assert not Conversation.objects.exists()


def test_an_answer_of_another_dialect_is_not_a_response_of_this_api(asgi_server, client):
    with seed_client(asgi_server, "/compat/coding-agent") as agent:
        agent.post(
            "/api/chat/stream", json={"session_id": "s", "messages": [{"role": "user", "content": "x"}]}
        )
    other = Message.objects.get(role="assistant")
    response = client.post("/api/chat/stream", json={"message": "hi", "previous_response_id": str(other.pk)})
    assert response.status_code == 404


def test_llm_provider_picks_the_provider(client, settings):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    _, frames = chat(client, {"message": "who are you"})
    assert "offline demo" in text_of(frames)
    assert Message.objects.get(role="assistant").provider == "demo"


def test_api_key_is_required_when_set(client, settings):
    settings.API_KEY = "s3cret-key"
    missing = client.post("/api/chat/stream", json={"message": "hi"})
    wrong = client.post("/api/chat/stream", json={"message": "hi"}, headers={"X-API-Key": "nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    _, frames = chat(client, {"message": "hi"}, headers={"X-API-Key": "s3cret-key"})
    assert text_of(frames) == expected_reply("hi")
    assert client.get("/health").status_code == 200


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="rate limiting is stored in Redis (REDIS_URL)")
def test_turns_are_rate_limited_per_api_key(client, settings, user):
    settings.RATE_LIMIT_TURNS = "2/57 seconds"
    key, raw_key = api_key_create(owner=user, name="seed-004")
    # Counters live in the shared Redis, keyed by the key's id, which a new test database reuses:
    # a random id keeps this run's counters its own.
    ApiKey.objects.filter(pk=key.pk).update(id=random.randint(10**9, 2**62))
    headers = {"X-API-Key": raw_key}
    for _ in range(2):
        chat(client, {"message": "hi"}, headers=headers)
    limited = client.post("/api/chat/stream", json={"message": "hi"}, headers=headers)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


def test_provider_error_ends_the_stream_with_an_error_event(client, upstream):
    upstream.push_fault("503")
    _, frames = chat(client, {"message": "down"})
    assert [f.event for f in frames] == ["error"]
    assert frames[0].json()["code"] == "provider_unavailable"
    assert Message.objects.get(role="assistant").status == "failed"


def test_blank_message_is_refused(client):
    response = client.post("/api/chat/stream", json={"message": ""})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "message"


def test_health_is_ok(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_served_at_the_root_when_it_is_the_root_dialect(asgi_server, openai_upstream, root_mount):
    root_mount("chat-api")
    with seed_client(asgi_server, "") as root:
        _, first = chat(root, {"message": "at the root"})
        _, second = chat(root, {"message": "again", "previous_response_id": response_id(first)})
        health = root.get("/health").json()
        history = root.get("/api/sessions")
        key = Conversation.objects.get().session_key
        messages = root.get(f"/api/sessions/{key}/messages")
    assert text_of(second) == expected_reply("again")
    assert health == {"status": "ok"}
    assert [s["session_key"] for s in history.json()["results"]] == [key]
    assert messages.status_code == 200
    assert expected_reply("again") in messages.text  # the history API shows the dialect's turns
