"""The Vercel AI SDK's DefaultChatTransport at /api/ai-sdk/chat: the published `ai` package (current
major and the 5.0 line, whose chunk validation is strict) against the live server, and the wire."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from accounts.keys import api_key_create
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply
from tests.js_clients import run_js

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGES = ["ai", "ai5"]  # ai 7 (current) and ai 5.0.0 (strict chunk schemas), see tests/js/package.json

# The keys each chunk type may carry (the SDK's documented schema; 5.0.x rejects any other).
CHUNK_KEYS = {
    "start": {"type", "messageId", "messageMetadata"},
    "start-step": {"type"},
    "text-start": {"type", "id", "providerMetadata"},
    "text-delta": {"type", "id", "delta", "providerMetadata"},
    "text-end": {"type", "id", "providerMetadata"},
    "message-metadata": {"type", "messageMetadata"},
    "finish-step": {"type"},
    "finish": {"type", "messageMetadata"},
    "error": {"type", "errorText"},
    "abort": {"type"},
    "data-artifact": {"type", "id", "data", "transient"},
}


@pytest.fixture
def key(user):
    return api_key_create(owner=user, name="ai-sdk")[1]


@pytest.fixture
def js(asgi_server, openai_upstream, key):
    def run(pkg: str, scenario: str, **args):
        return run_js(
            "ai_sdk_http.mjs",
            {
                "pkg": pkg,
                "base": asgi_server.url,
                "scenario": scenario,
                "headers": {"X-API-Key": key},
                **args,
            },
        )

    return run


def answers(chat_id: str) -> list[Message]:
    return list(
        Message.objects.filter(conversation__session_key=chat_id, role="assistant").order_by("created_at")
    )


@pytest.mark.parametrize("pkg", PACKAGES)
def test_the_sdk_reassembles_the_upstream_reply_and_the_turn_is_stored(js, pkg, user):
    text = "hello useChat [[chunks=6]]"
    out = js(pkg, "send", chatId=f"chat-{pkg}", text=text, userId="ui-user-1")
    assert out.get("thrown") is None and out["errors"] == []
    assert out["text"] == expected_reply(text)
    assert out["types"][:3] == ["start", "start-step", "text-start"]
    assert out["types"][-3:] == ["text-end", "finish-step", "finish"]
    assert out["types"].count("text-delta") == 6
    conversation = Conversation.objects.get(session_key=f"chat-{pkg}")
    assert conversation.owner_id == user.pk
    (answer,) = answers(f"chat-{pkg}")
    assert out["message"]["id"] == str(answer.pk)  # the client's message is the stored one
    assert answer.status == "complete" and answer.content == expected_reply(text)
    assert answer.parent.client_message_id == "ui-user-1"
    metadata = out["message"]["metadata"]
    assert metadata["usage"]["outputTokens"] == 6 and metadata["usage"]["estimated"] is False
    assert metadata["finishReason"] == "stop"
    assert metadata["sessionKey"] == f"chat-{pkg}" and metadata["userMessageId"] == str(answer.parent_id)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_an_upstream_failure_surfaces_as_the_sdks_error(js, pkg):
    out = js(pkg, "send", chatId=f"fail-{pkg}", text="boom [[fault=500]]")
    assert out.get("thrown") is None
    assert out["types"][-1] == "error"
    assert any("500" in error or "provider" in error.lower() for error in out["errors"]), out["errors"]
    (answer,) = answers(f"fail-{pkg}")
    assert answer.status == "failed"
    assert out["errors"][0] == answer.error_message


@pytest.mark.parametrize("pkg", PACKAGES)
def test_a_reconnect_mid_answer_gets_the_whole_answer(js, pkg):
    text = "long answer [[chunks=30 delay=0.05]]"
    out = js(pkg, "reconnect", chatId=f"resume-{pkg}", text=text, stopAfterText=3)
    assert out.get("thrown") is None
    assert out["first"]["types"].count("text-delta") == 3  # the first fetch was aborted mid-answer
    resumed = out["resumed"]
    assert resumed is not None, "the answer was still running: reconnectToStream must find it"
    assert resumed["errors"] == []
    assert resumed["types"][0] == "start" and resumed["types"][-1] == "finish"
    assert resumed["text"] == expected_reply(text)
    (answer,) = answers(f"resume-{pkg}")
    assert resumed["message"]["id"] == str(answer.pk)
    assert answer.status == "complete"


@pytest.mark.parametrize("pkg", PACKAGES)
def test_reconnect_to_a_chat_with_no_running_answer_is_null(js, pkg):
    js(pkg, "send", chatId=f"idle-{pkg}", text="done already [[chunks=2]]")
    assert js(pkg, "resume-none", chatId=f"idle-{pkg}") == {"resumed": None}
    assert js(pkg, "resume-none", chatId=f"never-{pkg}") == {"resumed": None}


@pytest.mark.parametrize("pkg", PACKAGES)
def test_regenerate_makes_a_branch_visible_in_the_history_api(js, pkg, key, asgi_server):
    chat = f"regen-{pkg}"
    text = "answer twice [[chunks=3]]"
    first = js(pkg, "send", chatId=chat, text=text, userId="u-1")
    again = js(pkg, "regenerate", chatId=chat, text=text, userId="u-1", messageId=first["message"]["id"])
    assert again.get("thrown") is None and again["errors"] == []
    assert again["text"] == expected_reply(text)
    old, new = answers(chat)
    assert again["message"]["id"] == str(new.pk) != first["message"]["id"]
    assert old.parent_id == new.parent_id  # two answers to one user message: a branch
    history = httpx.get(f"{asgi_server.url}/api/sessions/{chat}/messages", headers={"X-API-Key": key}).json()
    listed = [m for m in history["results"] if m["role"] == "assistant"]
    assert {m["id"] for m in listed} == {str(old.pk), str(new.pk)}
    assert {m["parent_id"] for m in listed} == {str(new.parent_id)}


# --- the wire, read by hand (what the SDK relies on) ------------------------------------------------
def post_chat(url: str, body: dict, headers: dict | None = None, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/api/ai-sdk/chat", json=body, headers=headers or {}, timeout=20, **kwargs)


def chat_body(chat_id: str, text: str, ui_id: str = "u1", **extra) -> dict:
    message = {"id": ui_id, "role": "user", "parts": [{"type": "text", "text": text}]}
    return {"id": chat_id, "messages": [message], "trigger": "submit-message", **extra}


def data_chunks(body: str) -> list:
    return [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]


def test_the_stream_has_the_protocol_header_only_documented_keys_and_ends_with_done(
    asgi_server, openai_upstream
):
    response = post_chat(asgi_server.url, chat_body("wire", "Code:\n```py\nprint(1)\n```\n [[chunks=4]]"))
    assert response.status_code == 200
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    raw = data_chunks(response.text)
    assert raw[-1] == "[DONE]"
    chunks = [json.loads(item) for item in raw[:-1]]
    for chunk in chunks:
        assert set(chunk) <= CHUNK_KEYS[chunk["type"]], chunk
    (artifact,) = [c for c in chunks if c["type"] == "data-artifact"]
    assert artifact["data"]["language"] == "py" and artifact["data"]["content"] == "print(1)\n"
    assert "id: 1\n" in response.text  # the turn's seq rides on the SSE id line


def test_the_stop_endpoint_stops_the_running_answer_and_the_stream_ends_with_abort(
    asgi_server, openai_upstream
):
    result: dict = {}

    def stream() -> None:
        result["response"] = post_chat(asgi_server.url, chat_body("stopme", "slow [[chunks=40 delay=0.05]]"))

    reader = threading.Thread(target=stream)
    reader.start()
    deadline = time.monotonic() + 10
    while not Message.objects.filter(conversation__session_key="stopme", role="assistant").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    stopped = httpx.post(f"{asgi_server.url}/api/ai-sdk/chat/stopme/stop")
    assert stopped.status_code == 202 and stopped.json()["stopping"] is True
    reader.join(10)
    chunks = [json.loads(c) for c in data_chunks(result["response"].text)[:-1]]
    assert chunks[-1] == {"type": "abort"}
    (answer,) = answers("stopme")
    assert answer.status == "interrupted" and answer.content  # the partial text is kept
    again = httpx.post(f"{asgi_server.url}/api/ai-sdk/chat/stopme/stop")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_running"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "x", "trigger": "submit-message"}, "messages"),
        ({"id": "x", "messages": [], "trigger": "submit-message"}, "messages"),
        ({"id": "x", "messages": [{"id": "a", "role": "assistant", "parts": []}]}, "messages"),
        ({"id": "x", "messages": [{"id": "a", "role": "user", "parts": [{"type": "text"}]}]}, "messages"),
        (
            {"id": "x", "messages": [{"id": "a", "role": "user", "parts": [{"type": "file", "url": "u"}]}]},
            "messages",
        ),
        ({"messages": []}, "id"),
        ({"id": "x", "messages": [], "trigger": "resubmit"}, "trigger"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(asgi_server, openai_upstream, body, field):
    response = post_chat(asgi_server.url, body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert not Conversation.objects.exists()


def test_a_retried_request_replays_the_stored_answer(asgi_server, openai_upstream):
    body = chat_body("retry", "once [[chunks=3]]", ui_id="same")
    first, second = post_chat(asgi_server.url, body), post_chat(asgi_server.url, body)
    assert second.status_code == 200
    assert len(openai_upstream.requests) == 1
    assert Message.objects.filter(conversation__session_key="retry").count() == 2
    text = [json.loads(c) for c in data_chunks(second.text)[:-1] if c.startswith('{"type":"text-delta"')]
    assert "".join(c["delta"] for c in text) == expected_reply("once [[chunks=3]]")
    assert first.status_code == 200


def test_a_submit_replacing_a_stored_user_message_is_an_edit_on_a_new_branch(asgi_server, openai_upstream):
    post_chat(asgi_server.url, chat_body("edit", "first try [[chunks=2]]", ui_id="m1"))
    edited = post_chat(
        asgi_server.url, chat_body("edit", "second try [[chunks=2]]", ui_id="m1", messageId="m1")
    )
    assert edited.status_code == 200
    users = list(Message.objects.filter(conversation__session_key="edit", role="user").order_by("created_at"))
    assert [u.content for u in users] == ["first try [[chunks=2]]", "second try [[chunks=2]]"]
    assert users[0].parent_id == users[1].parent_id  # siblings: the old branch is kept
    assert len(answers("edit")) == 2


def test_authentication_is_the_native_apis(asgi_server, openai_upstream, settings, user, key):
    settings.ALLOW_ANONYMOUS = False
    refused = post_chat(asgi_server.url, chat_body("auth", "hi"))
    assert refused.status_code == 401 and refused.json()["error"]["code"]
    ok = post_chat(
        asgi_server.url, chat_body("auth", "hi [[chunks=1]]"), headers={"Authorization": f"Bearer {key}"}
    )
    assert ok.status_code == 200
    assert Conversation.objects.get(session_key="auth").owner_id == user.pk
    resume = httpx.get(f"{asgi_server.url}/api/ai-sdk/chat/auth/stream")
    assert resume.status_code == 401


def test_a_session_cookie_needs_the_csrf_token(asgi_server, openai_upstream, user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    session = client.cookies["sessionid"].value
    cookies = {"sessionid": session}
    refused = post_chat(asgi_server.url, chat_body("cookie", "hi"), cookies=cookies)
    assert refused.status_code == 403
    csrf = "a" * 32
    ok = post_chat(
        asgi_server.url,
        chat_body("cookie", "hi [[chunks=1]]"),
        headers={"X-CSRFToken": csrf, "Referer": asgi_server.url + "/", "Origin": asgi_server.url},
        cookies={**cookies, "csrftoken": csrf},
    )
    assert ok.status_code == 200, ok.text
    assert Conversation.objects.get(session_key="cookie").owner_id == user.pk


def test_a_mount_session_is_unreachable(asgi_server, openai_upstream):
    response = post_chat(asgi_server.url, chat_body("layercode:abc", "hi"))
    assert response.status_code == 404
    assert httpx.get(f"{asgi_server.url}/api/ai-sdk/chat/layercode:abc/stream").status_code == 404


def test_cors_lets_a_configured_origin_call_and_read_the_stream(asgi_server, openai_upstream, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]
    preflight = httpx.options(
        f"{asgi_server.url}/api/ai-sdk/chat",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    streamed = post_chat(
        asgi_server.url, chat_body("cors", "hi [[chunks=1]]"), headers={"Origin": "https://app.example"}
    )
    assert streamed.headers["access-control-allow-origin"] == "https://app.example"
    other = post_chat(
        asgi_server.url, chat_body("cors2", "hi [[chunks=1]]"), headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
