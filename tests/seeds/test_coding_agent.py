"""Seed 001 (Claude-style coding agent), driven by a client written from its README alone."""

import json

import pytest

from conversations.models import Artifact, Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.seeds.conftest import seed_client

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/compat/coding-agent"
HTML = "make a page\n```html\n<p>hi</p>\n```\nthat is all"


@pytest.fixture
def client(asgi_server, gemini_upstream):
    with seed_client(asgi_server, BASE) as http:
        yield http


def body(text, session_id="ca-1", earlier=()):
    return {"session_id": session_id, "messages": [*earlier, {"role": "user", "content": text}]}


def ndjson(client, payload) -> tuple[bytes, list[dict]]:
    """The raw stream and its chunks, assembled the way the seed's frontend does (line by line)."""
    with client.stream("POST", "/api/chat/stream", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        raw = response.read()
    return raw, [json.loads(line) for line in raw.decode().splitlines() if line]


def test_tokens_then_complete_byte_for_byte(client):
    text = "hello agent [[chunks=3]]"
    raw, _ = ndjson(client, body(text))
    pieces = split_reply(expected_reply(text), 3)
    expected = [json.dumps({"type": "token", "content": p}, separators=(",", ":")) for p in pieces]
    expected.append(
        json.dumps(
            {"type": "complete", "content": expected_reply(text), "artifact": None}, separators=(",", ":")
        )
    )
    assert raw == ("\n".join(expected) + "\n").encode()


def test_complete_carries_the_first_code_block_as_the_artifact(client):
    _, chunks = ndjson(client, body(HTML + " [[chunks=7]]"))
    complete = chunks[-1]
    assert complete["type"] == "complete"
    assert complete["content"] == "Echo: " + HTML
    assert complete["artifact"] == {"language": "html", "code": "<p>hi</p>"}
    assert "".join(c["content"] for c in chunks[:-1]) == complete["content"]
    stored = Artifact.objects.get()
    assert (stored.language, stored.content) == ("html", "<p>hi</p>\n")


def test_every_turn_is_stored_in_its_session(client):
    ndjson(client, body("first"))
    ndjson(client, body("second"))
    conversation = Conversation.objects.get(session_key="coding-agent:ca-1")
    assert list(conversation.messages.values_list("role", "status", "content")) == [
        ("user", "complete", "first"),
        ("assistant", "complete", expected_reply("first")),
        ("user", "complete", "second"),
        ("assistant", "complete", expected_reply("second")),
    ]


def test_stored_history_is_the_context_capped_by_max_history_messages(client, upstream, settings):
    settings.MAX_HISTORY_MESSAGES = 2
    ndjson(client, body("one"))
    ndjson(client, body("two"))
    stale = [{"role": "user", "content": "not from the client"}, {"role": "assistant", "content": "no"}]
    ndjson(client, body("three", earlier=stale))
    contents = upstream.requests[-1].json["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "two"),
        ("model", expected_reply("two")),
        ("user", "three"),
    ]


def test_sessions_do_not_share_history(client, upstream):
    ndjson(client, body("mine", session_id="a"))
    ndjson(client, body("yours", session_id="b"))
    assert len(upstream.requests[-1].json["contents"]) == 1


def test_fence_without_a_language_is_an_artifact_with_a_null_language(client):
    _, chunks = ndjson(client, body("see\n```\n\n  x = 1\n```"))
    assert chunks[-1]["artifact"] == {"language": None, "code": "x = 1"}


def test_quota_error_is_an_error_chunk_with_the_reason_in_error_and_message(client, upstream):
    upstream.push_fault("429", retry_after=17)
    _, chunks = ndjson(client, body("too much"))
    assert len(chunks) == 1
    assert chunks[0]["type"] == "error"
    assert set(chunks[0]) == {"type", "error", "message"}
    assert chunks[0]["error"] == chunks[0]["message"]
    assert chunks[0]["error"].startswith("gemini: rate limited by the provider (HTTP 429)")
    assert "17" in chunks[0]["error"]
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.error_code) == ("failed", "rate_limited")


def test_error_after_tokens_follows_them_and_the_partial_answer_is_kept(client):
    text = "drop it [[chunks=5 fault=drop:2]]"
    _, chunks = ndjson(client, body(text))
    assert [c["type"] for c in chunks] == ["token", "token", "error"]
    partial = "".join(split_reply(expected_reply(text), 5)[:2])
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.content) == ("failed", partial)


def test_messages_without_a_user_message_are_refused(client):
    response = client.post(
        "/api/chat/stream",
        json={"session_id": "x", "messages": [{"role": "assistant", "content": "hi"}]},
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "messages"
    assert not Conversation.objects.exists()


def test_health_is_status_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.content == b'{"status": "ok"}'


def test_served_at_the_root_where_its_health_replaces_the_projects(asgi_server, gemini_upstream, root_mount):
    root_mount("coding-agent")
    with seed_client(asgi_server, "") as root:
        _, chunks = ndjson(root, body("at the root"))
        health = root.get("/health")
        native = root.post("/api/sessions/native-1/messages", json={"content": "still here"})
    assert chunks[-1]["content"] == expected_reply("at the root")
    assert health.json() == {"status": "ok"}
    assert native.status_code == 200 and native.json()["status"] == "complete"
