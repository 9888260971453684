"""Seed 002 (the Z.AI backend), driven by a client written from its README alone."""

import json
import re

import pytest

from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.seeds.conftest import seed_client

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/compat/zai"
DONE = b'data: {"data": "[DONE]"}\n\n'


@pytest.fixture
def client(asgi_server, zai_upstream):
    with seed_client(asgi_server, BASE) as http:
        yield http


def chat_body(text, **extra):
    return {"messages": [{"role": "user", "content": text}], "model": "glm-4.6", **extra}


def sse_raw(client, payload, **kwargs) -> bytes:
    with client.stream("POST", "/api/chat", json=payload, **kwargs) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.read()


def frames_json(raw: bytes) -> list[dict]:
    """What the seed's frontend does: split on blank lines, strip ``data: ``, parse."""
    return [json.loads(block.removeprefix("data: ")) for block in raw.decode().split("\n\n") if block]


def test_streamed_chunks_byte_for_byte_with_the_seeds_json_spacing(client):
    text = "Hello, how are you? [[chunks=3]]"
    raw = sse_raw(client, chat_body(text, stream=True, temperature=0.7, max_tokens=2048))
    created = frames_json(raw)[0]["created"]
    expected = b"".join(
        b'data: {"choices": [{"delta": {"content": '
        + json.dumps(piece).encode()
        + b'}}], "model": "glm-4.6", "created": '
        + str(created).encode()
        + b"}\n\n"
        for piece in split_reply(expected_reply(text), 3)
    )
    assert raw == expected + DONE


def test_non_ascii_is_escaped_as_the_seeds_json_dumps_does(client):
    raw = sse_raw(client, chat_body("héllo ☃ [[chunks=1]]", stream=True))
    assert b"\\u00e9" in raw and b"\\u2603" in raw
    assert frames_json(raw)[0]["choices"][0]["delta"]["content"] == "Echo: héllo ☃"


def test_the_request_reaches_zai_with_the_clients_transcript_and_parameters(client, upstream):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    client.post("/api/chat", json={"messages": messages, "temperature": 0.3, "max_tokens": 64})
    sent = upstream.requests[-1]
    assert sent.path.endswith("/chat/completions") and "/api/paas/v4" in sent.path
    assert [(m["role"], m["content"]) for m in sent.json["messages"]] == [
        (m["role"], m["content"]) for m in messages
    ]
    assert (sent.json["temperature"], sent.json["max_tokens"]) == (0.3, 64)


def test_zai_answers_whatever_llm_provider_says(client, upstream, settings):
    settings.LLM_PROVIDER = "demo"
    response = client.post("/api/chat", json=chat_body("who answers", stream=False))
    assert response.json()["choices"][0]["message"]["content"] == expected_reply("who answers")
    assert Message.objects.get(role="assistant").provider == "zai"


def test_a_client_sending_only_messages_gets_a_stream_with_the_seeds_defaults(client, upstream):
    text = "just messages [[chunks=3]]"
    raw = sse_raw(client, {"messages": [{"role": "user", "content": text}]})
    assert raw.endswith(DONE)
    assert "".join(f["choices"][0]["delta"]["content"] for f in frames_json(raw)[:-1]) == expected_reply(text)
    sent = upstream.requests[-1].json
    assert (sent["stream"], sent["temperature"], sent["max_tokens"]) == (True, 0.7, 2048)


def test_null_parameters_take_the_seeds_defaults_too(client, upstream):
    sse_raw(client, chat_body("nulls", stream=None, temperature=None, max_tokens=None))
    sent = upstream.requests[-1].json
    assert (sent["temperature"], sent["max_tokens"]) == (0.7, 2048)


def test_not_streamed_is_one_json_completion(client):
    response = client.post("/api/chat", json=chat_body("whole [[chunks=2]]", stream=False))
    assert response.status_code == 200
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "glm-4.6"
    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "content": expected_reply("whole [[chunks=2]]"),
        "refusal": None,
    }
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["completion_tokens"] == 2


def test_every_turn_is_stored_and_x_session_id_groups_them(client):
    for text in ("one", "two"):
        client.post("/api/chat", json=chat_body(text), headers={"X-Session-Id": "z-1"})
    conversation = Conversation.objects.get(session_key="zai:z-1")
    assert (
        list(conversation.messages.values_list("role", "status"))
        == [
            ("user", "complete"),
            ("assistant", "complete"),
        ]
        * 2
    )
    client.post("/api/chat", json=chat_body("alone"))
    assert Conversation.objects.count() == 2


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        (None, "messages"),
        ([], "messages"),
        ([{"role": "robot", "content": "hi"}], "messages[0].role"),
        ([{"role": "user", "content": 3}], "messages[0].content"),
        (["hi"], "messages[0]"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "messages"),
    ],
)
def test_invalid_messages_are_a_400_with_validation_details(client, messages, field):
    response = client.post("/api/chat", json={"messages": messages})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_messages"
    assert field in [d["field"] for d in error["details"]]
    assert not Conversation.objects.exists()


def test_other_invalid_input_is_a_400_too(client):
    response = client.post("/api/chat", json=chat_body("hot", temperature=5))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "temperature"


def test_missing_key_is_a_500_naming_zai_api_key(client, settings):
    settings.ZAI_API_KEY = ""
    response = client.post("/api/chat", json=chat_body("no key"))
    assert response.status_code == 500
    assert response.json()["error"]["message"].startswith("ZAI_API_KEY is required")


def test_stream_error_is_reported_in_sse_then_done(client, upstream):
    upstream.push_fault("429", retry_after=2)
    raw = sse_raw(client, chat_body("too many", stream=True))
    assert raw.endswith(DONE)
    error = frames_json(raw)[0]["error"]
    assert error["code"] == "rate_limited"
    assert Message.objects.get(role="assistant").status == "failed"


def test_health_reports_the_zai_client_and_a_timestamp(client, settings):
    body = client.get("/health").json()
    assert body["status"] == "healthy"
    assert body["zai_client_initialized"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])
    settings.ZAI_API_KEY = ""
    assert client.get("/health").json()["zai_client_initialized"] is False


def test_served_at_the_root_when_it_is_the_root_dialect(asgi_server, zai_upstream, root_mount):
    root_mount("zai")
    with seed_client(asgi_server, "") as root:
        raw = sse_raw(root, chat_body("at the root", stream=True))
        health = root.get("/health").json()
    assert "".join(f["choices"][0]["delta"]["content"] for f in frames_json(raw)[:-1]) == expected_reply(
        "at the root"
    )
    assert health["status"] == "healthy"


def test_tools_are_a_400_naming_them_not_dropped(client, upstream):
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    response = client.post("/api/chat", json=chat_body("weather?", tools=tools))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("tools_not_supported", "tools")
    assert not Conversation.objects.exists() and upstream.requests == []
