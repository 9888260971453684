"""Seed 004 (extensible AI chat API), driven by a client written from its README alone."""

import os
import random
import uuid

import pytest

from accounts.keys import api_key_create
from accounts.models import ApiKey
from chatproject import settings as project_settings
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.seeds.conftest import seed_client
from tests.turn_client import SSEParser

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/compat/chat-api"
SYSTEM_PROMPT = "You are a helpful assistant. Be concise."


@pytest.fixture(autouse=True)
def no_chat_api_rate_limit(settings):
    """As ``RATE_LIMIT_TURNS`` for the suite: the dialect's own rate is on only in its tests."""
    settings.COMPAT_CHAT_API_RATE_LIMIT = ""


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
    return "".join(f.data for f in frames if f.event == "delta")


def response_id(frames) -> str:
    done = [f for f in frames if f.event == "done"]
    assert len(done) == 1
    return done[0].data


def test_delta_events_of_raw_text_then_done_with_the_response_id_byte_for_byte(client):
    text = "Hello there, how are you today? [[chunks=8]]"
    pieces = ["Ec", "ho: ", "Hello there, ", "how", " are you", " tod", "ay", "?"]
    assert split_reply(expected_reply(text), 8) == pieces  # the fake upstream's cuts
    raw, frames = chat(client, {"message": text})
    answer = Message.objects.get(role="assistant")
    shown = ["Ec", "ho:", " Hello there,", " how", " are you", " tod", "ay", "?"]  # spaces moved forward
    expected = b"".join(b"event: delta\ndata: " + piece.encode() + b"\n\n" for piece in shown)
    expected += b"event: done\ndata: " + str(answer.pk).encode() + b"\n\n"
    assert raw == expected
    assert (answer.status, answer.content) == ("complete", text_of(frames))


def test_with_an_openai_key_the_responses_api_chains_on_the_provider(client, upstream):
    _, first = chat(client, {"message": "one"})
    _, second = chat(client, {"message": "two", "previous_response_id": response_id(first)})
    provider_id = Message.objects.filter(role="assistant").order_by("created_at")[0].response_id
    assert provider_id.startswith("resp")
    sent = upstream.requests[-1]
    assert sent.path.endswith("/responses")
    assert sent.json["previous_response_id"] == provider_id
    assert sent.json["instructions"] == SYSTEM_PROMPT
    assert [item["content"] for item in sent.json["input"]] == ["two"]
    assert Message.objects.filter(role="assistant").first().provider == "openai-responses"
    chat(client, {"message": "three", "previous_response_id": response_id(second)})
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().messages.count() == 6


def test_other_providers_are_given_the_stored_history_and_the_seeds_system_prompt(client, upstream, settings):
    settings.COMPAT_CHAT_API_PROVIDER = "openai"
    _, first = chat(client, {"message": "one"})
    chat(client, {"message": "two", "previous_response_id": response_id(first)})
    sent = upstream.requests[-1]
    assert sent.path.endswith("/chat/completions")
    assert [(m["role"], m["content"]) for m in sent.json["messages"]] == [
        ("system", SYSTEM_PROMPT),
        ("user", "one"),
        ("assistant", expected_reply("one")),
        ("user", "two"),
    ]


def test_without_previous_response_id_each_message_starts_a_conversation(client, upstream):
    chat(client, {"message": "one"})
    chat(client, {"message": "two"})
    assert upstream.requests[-1].json.get("previous_response_id") is None
    assert Conversation.objects.count() == 2


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


def test_compat_chat_api_provider_picks_the_provider(client, settings):
    settings.COMPAT_CHAT_API_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    _, frames = chat(client, {"message": "who are you"})
    assert "offline demo" in text_of(frames)
    assert Message.objects.get(role="assistant").provider == "demo"


def test_without_an_openai_key_llm_provider_picks_the_provider(asgi_server, gemini_upstream, settings):
    settings.OPENAI_API_KEY = ""
    with seed_client(asgi_server, BASE) as client:
        _, frames = chat(client, {"message": "who answers"})
    assert text_of(frames) == expected_reply("who answers")
    assert Message.objects.get(role="assistant").provider == "gemini"
    assert gemini_upstream.requests[-1].json["systemInstruction"]["parts"][0]["text"] == SYSTEM_PROMPT


def test_llm_model_picks_the_model_and_compat_chat_api_model_wins(client, upstream, settings):
    settings.OPENAI_MODELS = ["gpt-seed-model", "gpt-compat-model"]  # the models the provider serves
    settings.LLM_MODEL = "gpt-seed-model"
    chat(client, {"message": "which model"})
    assert upstream.requests[-1].json["model"] == "gpt-seed-model"
    settings.COMPAT_CHAT_API_MODEL = "gpt-compat-model"
    chat(client, {"message": "which model now"})
    assert upstream.requests[-1].json["model"] == "gpt-compat-model"


def test_api_key_is_required_when_set(client, settings):
    settings.API_KEY = "s3cret-key"
    missing = client.post("/api/chat/stream", json={"message": "hi"})
    wrong = client.post("/api/chat/stream", json={"message": "hi"}, headers={"X-API-Key": "nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    _, frames = chat(client, {"message": "hi"}, headers={"X-API-Key": "s3cret-key"})
    assert text_of(frames) == expected_reply("hi")
    assert client.get("/health").status_code == 200


def fresh_key_headers(user) -> dict[str, str]:
    key, raw_key = api_key_create(owner=user, name=f"seed-004-{uuid.uuid4().hex}")
    # Counters live in the shared Redis, keyed by the key's id, which a new test database reuses:
    # a random id keeps this run's counters its own.
    ApiKey.objects.filter(pk=key.pk).update(id=random.randint(10**9, 2**62))
    return {"X-API-Key": raw_key}


def test_the_default_rate_is_the_seeds_20_per_60_seconds():
    if "COMPAT_CHAT_API_RATE_LIMIT" in os.environ:
        pytest.skip("COMPAT_CHAT_API_RATE_LIMIT is set in this environment")
    assert project_settings.COMPAT_CHAT_API_RATE_LIMIT == "20/60 seconds"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="rate limiting is stored in Redis (REDIS_URL)")
def test_turns_are_rate_limited_per_api_key_by_the_dialects_own_rate(client, settings, user):
    settings.COMPAT_CHAT_API_RATE_LIMIT = "20/60 seconds"
    settings.RATE_LIMIT_TURNS = "1/minute"  # the project's rate is not this dialect's
    headers = fresh_key_headers(user)
    for _ in range(20):
        chat(client, {"message": "hi [[chunks=1]]"}, headers=headers)
    limited = client.post("/api/chat/stream", json={"message": "hi"}, headers=headers)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "20/60 seconds" in limited.json()["error"]["message"]
    assert int(limited.headers["retry-after"]) >= 1
    assert chat(client, {"message": "with another key"}, headers=fresh_key_headers(user))[1]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="rate limiting is stored in Redis (REDIS_URL)")
def test_an_empty_rate_turns_the_dialects_limit_off(client, settings, user):
    settings.COMPAT_CHAT_API_RATE_LIMIT = ""
    settings.RATE_LIMIT_TURNS = "1/minute"
    headers = fresh_key_headers(user)
    for _ in range(3):
        chat(client, {"message": "hi [[chunks=1]]"}, headers=headers)


def test_provider_error_ends_the_stream_with_a_plain_text_error_event(client, upstream):
    upstream.push_fault("503")
    raw, frames = chat(client, {"message": "down"})
    answer = Message.objects.get(role="assistant")
    assert answer.status == "failed"
    assert raw == b"event: error\ndata: " + answer.error_message.encode() + b"\n\n"
    assert "HTTP 503" in frames[0].data


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
    # The mount's owner-less callers live in its own namespace: not listed, not readable natively.
    assert history.status_code == 403 and history.json()["error"]["code"] == "owner_required"
    assert messages.status_code == 404
