"""A turn refused for budget, as each protocol's clients see it: 429 ``budget_exceeded`` with when it
resets, in the native JSON, a WebSocket error frame, OpenAI's error (the SDK's RateLimitError) on
/v1 and /v1/responses, the AI SDK's error, each seed mount's error shape and 003's spoken fallback."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest
from django.utils import timezone
from websockets.sync.client import connect as ws_connect

from accounts.keys import api_key_create
from billing.models import Budget
from conversations.models import Message
from tests.origins import page_origin
from tests.seeds.test_layercode import Signed

pytestmark = pytest.mark.django_db(transaction=True)


def used_up(scope: str, subject: str) -> Budget:
    return Budget.objects.create(
        scope=scope,
        subject=subject,
        amount=Decimal("0.01"),
        spent=Decimal("0.01"),
        period="day",
        period_start=timezone.now(),
    )


@pytest.fixture
def anonymous_over_budget(db):
    return used_up("anonymous", "")


def assert_refused(response: httpx.Response) -> dict:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and "budget" in error["message"]
    assert error["resets_at"] and int(response.headers["Retry-After"]) >= 1
    assert not Message.objects.exists()
    return error


def test_native_http(asgi_server, openai_upstream, anonymous_over_budget):
    response = httpx.post(f"{asgi_server.url}/api/sessions/b1/messages", json={"content": "hi"})
    assert assert_refused(response)["budget"] == "anonymous"
    assert openai_upstream.requests == []  # the provider is never called


def test_native_websocket_error_frame(asgi_server, openai_upstream, anonymous_over_budget):
    httpx.post(f"{asgi_server.url}/api/sessions", json={"session_key": "ws-b"})
    url = asgi_server.url.replace("http://", "ws://") + "/ws/chat/ws-b/"
    with ws_connect(url, origin=page_origin(url)) as ws:
        ws.send(json.dumps({"type": "message", "content": "hi"}))
        frame = json.loads(ws.recv(timeout=10))
    assert frame["type"] == "error" and frame["code"] == "budget_exceeded"
    assert frame["retry_after"] >= 1 and frame["resets_at"]


def test_openai_chat_completions_raise_the_sdks_rate_limit_error(sdk, anonymous_over_budget):
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "budget_exceeded"


def test_openai_responses_raise_the_sdks_rate_limit_error(sdk, anonymous_over_budget):
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.responses.create(model="gpt-test", input="hi")
    assert raised.value.code == "budget_exceeded"
    assert raised.value.response.headers["retry-after"]


def test_ai_sdk_http_and_websocket(asgi_server, openai_upstream, anonymous_over_budget):
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    body = {"id": "ai-b", "messages": [message], "trigger": "submit-message"}
    assert_refused(httpx.post(f"{asgi_server.url}/api/ai-sdk/chat", json=body))
    url = asgi_server.url.replace("http://", "ws://") + "/ws/ai-sdk/chat"
    with ws_connect(url, origin=page_origin(url)) as ws:
        ws.send(json.dumps({"type": "send", "requestId": "r", "headers": {}, "body": {}, **body}))
        frame = json.loads(ws.recv(timeout=10))
    assert frame["type"] == "error" and "budget" in frame["errorText"] and "resets at" in frame["errorText"]


@pytest.mark.parametrize(
    ("mount", "path", "body"),
    [
        ("gemini-gateway", "/api/chat", {"message": "hi"}),
        ("coding-agent", "/api/chat/stream", {"messages": [{"role": "user", "content": "hi"}]}),
        ("zai", "/api/chat", {"messages": [{"role": "user", "content": "hi"}]}),
        ("chat-api", "/api/chat/stream", {"message": "hi"}),
    ],
)
def test_each_seed_mount_has_a_budget_of_its_own(asgi_server, openai_upstream, settings, mount, path, body):
    settings.ZAI_API_KEY = "id.secret"
    settings.GEMINI_API_KEY = "gem"
    used_up("mount", mount)
    response = httpx.post(f"{asgi_server.url}/compat/{mount}{path}", json=body)
    assert assert_refused(response)["budget"] == "mount"


def test_layercode_speaks_its_fallback(asgi_server, openai_upstream, settings):
    settings.LAYERCODE_WEBHOOK_SECRET = "whsec-test-layercode"
    settings.LAYERCODE_FALLBACK = "Over budget, call back tomorrow."
    used_up("mount", "layercode")
    body = {"text": "hi", "type": "message", "session_id": "s1", "turn_id": "t1"}
    response = httpx.post(f"{asgi_server.url}/compat/layercode/agent", json=body, auth=Signed())
    assert response.status_code == 200
    assert b"response.tts" in response.content and b"Over budget, call back tomorrow." in response.content
    assert not Message.objects.filter(role="assistant").exists()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/sessions/k1/messages", {"content": "hi"}),
        ("/compat/chat-api/api/chat/stream", {"message": "hi"}),  # its rate-limit key is its own
        ("/compat/zai/api/chat", {"messages": [{"role": "user", "content": "hi"}]}),
    ],
)
def test_a_personal_keys_budget_applies_to_its_turns_whatever_their_rate_limit_key(
    asgi_server, openai_upstream, settings, user, path, body
):
    settings.COMPAT_ZAI_ACCESS = settings.COMPAT_CHAT_API_ACCESS = "api_key"
    settings.ZAI_API_KEY = "id.secret"
    key, raw = api_key_create(owner=user, name="spent")
    used_up("key", str(key.pk))
    response = httpx.post(f"{asgi_server.url}{path}", json=body, headers={"X-API-Key": raw})
    assert assert_refused(response)["budget"] == "key"
