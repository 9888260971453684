"""Seed 000 (Gemini behind an AI gateway), driven by a client written from its README alone."""

import json

import pytest

from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.seeds.conftest import seed_client
from tests.turn_client import SSEParser

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/compat/gemini-gateway"


@pytest.fixture
def client(asgi_server, gemini_upstream):
    with seed_client(asgi_server, BASE) as http:
        yield http


def stream_text(client, body, **kwargs) -> tuple[bytes, str]:
    """The raw stream, and the text a browser SSE parser rebuilds from its data frames."""
    with client.stream("POST", "/api/chat/stream", json=body, **kwargs) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    frames = SSEParser().feed(raw.decode())
    return raw, "".join(f.data for f in frames if f.event is None)


def test_chat_replies_with_the_whole_answer_and_stores_the_turn(client, upstream):
    response = client.post("/api/chat", json={"message": "hello gateway [[chunks=3]]"})
    assert response.status_code == 200
    assert response.json() == {"reply": expected_reply("hello gateway [[chunks=3]]")}
    answer = Message.objects.get(role="assistant")
    assert answer.status == "complete"
    assert answer.content == response.json()["reply"]
    assert answer.parent.content == "hello gateway [[chunks=3]]"
    assert answer.conversation.session_key.startswith("gemini-gateway:")


def test_model_alias_fast_is_what_the_provider_is_asked_for(client, upstream):
    client.post("/api/chat", json={"message": "which model"})
    assert "/models/gemini-2.5-flash:streamGenerateContent" in upstream.requests[-1].path
    assert Message.objects.get(role="assistant").model == "gemini-2.5-flash"


def test_stream_is_raw_text_data_frames_byte_for_byte(client):
    raw, text = stream_text(client, {"message": "stream me [[chunks=4]]"})
    pieces = split_reply(expected_reply("stream me [[chunks=4]]"), 4)
    assert raw == b"".join(b"data: " + piece.encode() + b"\n\n" for piece in pieces)
    assert text == expected_reply("stream me [[chunks=4]]")


def test_text_with_line_breaks_becomes_one_data_line_per_line_and_parsers_rejoin_it(client):
    raw, text = stream_text(client, {"message": "first line\nsecond line\n\nlast [[chunks=1]]"})
    assert raw == b"data: Echo: first line\ndata: second line\ndata: \ndata: last\n\n"
    assert text == "Echo: first line\nsecond line\n\nlast"


def test_stream_is_stored_like_every_turn(client):
    stream_text(client, {"message": "keep it [[chunks=2]]"})
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.content) == ("complete", expected_reply("keep it [[chunks=2]]"))


def test_named_conversation_keeps_history_and_system_prompt(client, upstream):
    headers = {"X-Session-Id": "gw-1"}
    first = client.post(
        "/api/chat", json={"message": "one", "system_prompt": "You are terse."}, headers=headers
    )
    assert first.status_code == 200
    stream_text(client, {"message": "two"}, headers=headers)
    sent = upstream.requests[-1].json
    assert sent["systemInstruction"]["parts"][0]["text"] == "You are terse."
    assert [(c["role"], c["parts"][0]["text"]) for c in sent["contents"]] == [
        ("user", "one"),
        ("model", expected_reply("one")),
        ("user", "two"),
    ]
    conversation = Conversation.objects.get(session_key="gemini-gateway:gw-1")
    assert conversation.system_prompt == "You are terse."
    assert conversation.messages.count() == 4


def test_without_a_system_prompt_the_seeds_chatbot_default_is_used(client, upstream):
    client.post("/api/chat", json={"message": "hi"})
    assert (
        upstream.requests[-1].json["systemInstruction"]["parts"][0]["text"] == "You are a helpful assistant"
    )
    stream_text(client, {"message": "hi", "system_prompt": "Answer in French."})
    assert upstream.requests[-1].json["systemInstruction"]["parts"][0]["text"] == "Answer in French."


def test_a_named_conversation_gets_the_default_until_it_sets_a_prompt_it_then_keeps(client, upstream):
    headers = {"X-Session-Id": "gw-default"}
    client.post("/api/chat", json={"message": "one"}, headers=headers)
    client.post("/api/chat", json={"message": "two", "system_prompt": "Be terse."}, headers=headers)
    client.post("/api/chat", json={"message": "three"}, headers=headers)
    prompts = [r.json["systemInstruction"]["parts"][0]["text"] for r in upstream.requests]
    assert prompts == ["You are a helpful assistant", "Be terse.", "Be terse."]


def test_session_id_body_field_names_the_conversation_too(client, upstream):
    client.post("/api/chat", json={"message": "one", "session_id": "gw-body"})
    client.post("/api/chat", json={"message": "two", "session_id": "gw-body"})
    assert len(upstream.requests[-1].json["contents"]) == 3
    assert Conversation.objects.get(session_key="gemini-gateway:gw-body").messages.count() == 4


def test_requests_without_a_session_are_conversations_of_their_own(client, upstream):
    client.post("/api/chat", json={"message": "one"})
    client.post("/api/chat", json={"message": "two"})
    assert len(upstream.requests[-1].json["contents"]) == 1
    assert Conversation.objects.count() == 2


def test_structured_returns_the_parsed_object_from_json_output_mode(client, upstream):
    response = client.post("/api/structured", json={"prompt": "three colours"})
    assert response.status_code == 200
    assert response.json() == {"echo": "Respond with valid JSON only. three colours"}
    sent = upstream.requests[-1].json
    assert sent["generationConfig"]["responseMimeType"] == "application/json"
    assert sent["contents"][-1]["parts"][0]["text"] == "Respond with valid JSON only. three colours"


def test_structured_reply_that_is_not_json_is_a_502_and_stored_failed(client):
    response = client.post("/api/structured", json={"prompt": "broken [[json=invalid]]"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "invalid_json"
    assert Message.objects.get(role="assistant").status == "failed"


def test_allowlisted_headers_and_the_gateway_identity_reach_the_provider(client, upstream, settings):
    settings.COMPAT_FORWARD_HEADERS = ["Authorization", "X-Session-Token"]
    settings.NXCODE_APP_ID = "deploy_abc123"
    client.post(
        "/api/chat",
        json={"message": "through the gateway"},
        headers={"Authorization": "Bearer user-token", "X-Session-Token": "st-1", "X-Other": "no"},
    )
    headers = upstream.requests[-1].headers
    assert headers["authorization"] == "Bearer user-token"
    assert headers["x-session-token"] == "st-1"
    assert headers["x-app-id"] == "deploy_abc123"
    assert "x-other" not in headers
    assert "x-workspace-id" not in headers


def test_workspace_id_is_sent_when_there_is_no_app_id(client, upstream, settings):
    settings.THREAD_ID = "thread-42"
    client.post("/api/chat", json={"message": "from the workspace"})
    assert upstream.requests[-1].headers["x-workspace-id"] == "thread-42"


def test_no_client_header_is_forwarded_by_default(client, upstream):
    client.post("/api/chat", json={"message": "private"}, headers={"Authorization": "Bearer user-token"})
    assert "authorization" not in upstream.requests[-1].headers


def test_our_own_api_key_is_never_forwarded(client, upstream, settings):
    settings.COMPAT_FORWARD_HEADERS = ["Authorization", "X-API-Key"]
    settings.API_KEY = "shared-secret"
    client.post("/api/chat", json={"message": "keyed"}, headers={"Authorization": "Bearer shared-secret"})
    headers = upstream.requests[-1].headers
    assert "shared-secret" not in json.dumps(headers)


def test_provider_error_ends_the_stream_with_an_error_event(client, upstream):
    upstream.push_fault("429", retry_after=2)
    raw, text = stream_text(client, {"message": "too many"})
    assert text == ""
    frames = SSEParser().feed(raw.decode())
    assert [f.event for f in frames] == ["error"]
    assert frames[0].json()["code"] == "rate_limited"
    assert "429" in frames[0].json()["message"]
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.error_code) == ("failed", "rate_limited")


def test_error_after_some_text_comes_after_that_text(client):
    raw, text = stream_text(client, {"message": "cut short [[chunks=5 fault=drop:2]]"})
    assert text == "".join(split_reply(expected_reply("cut short [[chunks=5 fault=drop:2]]"), 5)[:2])
    assert raw.endswith(b"\n\n") and b"event: error\ndata: " in raw
    assert Message.objects.get(role="assistant").content == text


def test_chat_provider_error_is_a_json_error_with_retry_after(client, upstream):
    upstream.push_fault("429", retry_after=3)
    response = client.post("/api/chat", json={"message": "busy"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("body", [{}, {"message": "   "}, {"message": 5}])
def test_missing_or_blank_message_is_refused_before_anything_is_stored(client, body):
    response = client.post("/api/chat", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "message"
    assert not Conversation.objects.exists()


def test_served_at_the_root_when_it_is_the_root_dialect(asgi_server, gemini_upstream, root_mount):
    root_mount("gemini-gateway")
    with seed_client(asgi_server, "") as root:
        reply = root.post("/api/chat", json={"message": "at the root"})
        _, text = stream_text(root, {"message": "streamed at the root"})
        structured = root.post("/api/structured", json={"prompt": "x"})
        health = root.get("/health")
    assert reply.json() == {"reply": expected_reply("at the root")}
    assert text == expected_reply("streamed at the root")
    assert structured.json() == {"echo": "Respond with valid JSON only. x"}
    assert health.json()["status"] == "ok" and "database" in health.json()  # the project's own
