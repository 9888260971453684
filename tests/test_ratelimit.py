import logging
import os
import uuid

import httpx
import pytest
from asgiref.sync import async_to_sync

from accounts.keys import api_key_create
from conversations.ratelimit import TurnRateLimiter

pytestmark = pytest.mark.django_db(transaction=True)
needs_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="rate limiting is stored in Redis (REDIS_URL)"
)


@needs_redis
def test_turns_over_the_limit_get_429_with_retry_after_per_key(
    asgi_server, openai_upstream, settings, user, other_user
):
    settings.RATE_LIMIT_TURNS = "2/minute"
    _, alice = api_key_create(owner=user, name=f"a-{uuid.uuid4().hex}")
    _, bob = api_key_create(owner=other_user, name=f"b-{uuid.uuid4().hex}")
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        statuses = [
            http.post(
                "/api/sessions/rl/messages", json={"content": f"hi {i}"}, headers={"X-API-Key": alice}
            ).status_code
            for i in range(3)
        ]
        limited = http.post(
            "/api/sessions/rl/messages", json={"content": "again"}, headers={"X-API-Key": alice}
        )
        other = http.post("/api/sessions/rl/messages", json={"content": "bob"}, headers={"X-API-Key": bob})
    assert statuses == [200, 200, 429]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert other.status_code == 200  # buckets are per key


@needs_redis
def test_websocket_messages_are_rate_limited_too(settings):
    from channels.testing import WebsocketCommunicator

    from chatproject.asgi import application
    from tests.factories import make_conversation

    settings.RATE_LIMIT_TURNS = "1/minute"
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    make_conversation(owner=None, session_key="rl-ws")

    async def scenario():
        ws = WebsocketCommunicator(
            application,
            "/ws/chat/rl-ws/",
            headers=[(b"host", b"localhost"), (b"origin", b"http://localhost")],
        )
        ws.scope["client"] = (f"10.9.{uuid.uuid4().int % 250}.1", 1234)
        await ws.connect(timeout=5)
        await ws.send_json_to({"type": "message", "content": "one"})
        while (await ws.receive_json_from(timeout=5))["type"] != "done":
            pass
        await ws.send_json_to({"type": "message", "content": "two"})
        error = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return error

    error = async_to_sync(scenario)()
    assert (error["type"], error["code"]) == ("error", "rate_limited")
    assert error["retry_after"] > 0


def test_rate_limiting_fails_open_and_warns_once_when_redis_is_unreachable(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.RATE_LIMIT_TURNS = "1/minute"
    limiter = TurnRateLimiter()

    async def hits():
        return [await limiter.hit("ip:1.2.3.4") for _ in range(3)]

    with caplog.at_level(logging.WARNING, logger="conversations.ratelimit"):
        decisions = async_to_sync(hits)()
    assert all(d.allowed for d in decisions)
    warnings = [r for r in caplog.records if "rate limiting skipped" in r.getMessage()]
    assert len(warnings) == 1
