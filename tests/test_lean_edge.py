"""The streaming routes are served beside Django's per-request handler (``chatproject/lean_edge.py``)
with every guarantee Django's stack gives them: each test drives the project's ASGI stack (body
guard, request-end callbacks, the lean edge in front of Django) built under the test's settings,
and checks that the request really took the lean path (Django's ``request_started`` never fired)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started
from django.db import OperationalError
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from chatproject.body_guard import RequestBodyGuard
from chatproject.lean_edge import LeanEdge
from conversations.models import Message
from conversations.request_end import RequestEndCallbacks
from conversations.turns import running, store

pytestmark = pytest.mark.django_db(transaction=True)

TURN = "/api/sessions/lean/messages"


@pytest.fixture(autouse=True)
async def turns_settled():
    """The turns run on this test's event loop (the app is called in-process): let their jobs and
    closing writes finish on it before it closes."""
    yield
    for _ in range(500):
        if not running.running_jobs and not store._pending_closes:
            break
        await asyncio.sleep(0.02)


@pytest.fixture
def djangos_handler():
    """The requests Django's own handler served (it sends ``request_started``; the lean edge does not)."""
    served: list[str] = []

    def started(sender, scope=None, **kwargs):
        served.append(scope["path"] if scope else "?")

    request_started.connect(started)
    yield served
    request_started.disconnect(started)


@pytest.fixture
def edge(settings):
    """An HTTP client of the ASGI stack, built after the test's settings (middleware read them once)."""
    settings.DEMO_DELAY = 0

    def client(**headers: str) -> httpx.AsyncClient:
        app = RequestBodyGuard(RequestEndCallbacks(LeanEdge(ASGIHandler())))
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4321))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers)

    return client


async def test_a_turn_is_served_beside_djangos_handler_and_the_rest_by_it(edge, djangos_handler):
    async with edge() as http:
        turn = await http.post(TURN, json={"content": "hi [[chunks=2]]"})
        listed = await http.get("/health")
    assert turn.status_code == 200, turn.text
    assert turn.json()["status"] == "complete"
    assert await Message.objects.filter(role="assistant", status="complete").acount() == 1
    assert listed.status_code == 200
    assert djangos_handler == ["/health"]


async def test_each_turn_route_and_method_takes_the_lean_path_and_only_those(edge, djangos_handler):
    async with edge() as http:
        await http.post(
            "/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": "x"}]}
        )
        await http.post(f"{TURN}/00000000-0000-0000-0000-000000000000/stop")
        await http.get(f"{TURN}/00000000-0000-0000-0000-000000000000/stream")
        assert djangos_handler == []
        wrong_method = await http.get("/v1/chat/completions")
        unknown = await http.post("/api/nowhere", json={})
    assert wrong_method.status_code == 405
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert djangos_handler == ["/v1/chat/completions", "/api/nowhere"]


async def test_a_host_not_allowed_is_400(edge, settings, djangos_handler):
    settings.ALLOWED_HOSTS = ["chat.example"]
    async with edge(Host="evil.example") as http:
        refused = await http.post(TURN, json={"content": "hi"})
    assert refused.status_code == 400
    assert djangos_handler == []
    assert not await Message.objects.aexists()


async def test_plain_http_is_redirected_to_https_and_https_gets_hsts(edge, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    async with edge() as http:
        plain = await http.post(TURN, json={"content": "hi"})
        secure = await http.post(TURN, json={"content": "hi"}, headers={"X-Forwarded-Proto": "https"})
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://127.0.0.1{TURN}"
    assert secure.status_code == 200, secure.text
    assert secure.headers["strict-transport-security"] == "max-age=3600"


async def test_the_security_headers_and_the_request_id_are_on_a_streamed_reply(edge):
    async with edge(Accept="text/event-stream", **{"X-Request-Id": "req-lean-1"}) as http:
        streamed = await http.post(TURN, json={"content": "hi [[chunks=2]]"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.headers["x-content-type-options"] == "nosniff"
    assert streamed.headers["x-frame-options"] == "DENY"
    assert streamed.headers["referrer-policy"] == "same-origin"
    assert streamed.headers["x-request-id"] == "req-lean-1"
    assert streamed.headers["cache-control"] == "no-cache"
    assert "event: completed" in streamed.text


async def test_cors_allows_the_configured_origins_only(edge, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]
    async with edge() as http:
        allowed = await http.post(TURN, json={"content": "hi"}, headers={"Origin": "https://app.example"})
        other = await http.post(TURN, json={"content": "hi"}, headers={"Origin": "https://evil.example"})
        preflight = await http.options(
            TURN,
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-key",
            },
        )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]


async def test_a_logged_in_browser_must_send_the_csrf_token(edge, settings):
    user = await sync_to_async(get_user_model().objects.create_user)("lean", password="x")
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    secret = _get_new_csrf_string()
    cookies = {
        settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value,
        "csrftoken": secret,
    }
    async with edge() as http:
        http.cookies.update(cookies)
        forged = await http.post(TURN, json={"content": "hi"})
        sent = await http.post(TURN, json={"content": "hi"}, headers={"X-CSRFToken": secret})
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "csrf_failed"
    assert sent.status_code == 200, sent.text
    assert sent.json()["session_key"] == "lean"
    assert await Message.objects.filter(conversation__owner=user).acount() == 2  # the one accepted turn


async def test_an_unavailable_database_is_a_json_503_with_retry_after(edge, monkeypatch):
    async def database_down(request):
        raise OperationalError("connection failed: Connection refused")

    monkeypatch.setattr("conversations.routes.pipeline.turn_start", database_down)
    async with edge() as http:
        refused = await http.post(TURN, json={"content": "hi"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "database_unavailable"
    assert refused.headers["retry-after"] == "2"


async def test_an_oversized_body_is_413_before_anything_reads_it(edge, settings):
    settings.REQUEST_MAX_BYTES = 1000
    async with edge() as http:
        refused = await http.post(TURN, content=b'{"content": "' + b"x" * 5000 + b'"}')
    assert refused.status_code == 413
    assert not await Message.objects.aexists()


async def test_oversized_headers_are_431_whatever_the_http_parser_allows(edge, settings):
    settings.REQUEST_MAX_HEADER_BYTES = 2048
    async with edge() as http:
        refused = await http.post(TURN, json={"content": "hi"}, headers={"X-Big": "a" * 4096})
        fine = await http.post(TURN, json={"content": "hi"}, headers={"X-Small": "a" * 512})
    assert refused.status_code == 431
    assert refused.json()["error"]["code"] == "headers_too_large"
    assert fine.status_code == 200
