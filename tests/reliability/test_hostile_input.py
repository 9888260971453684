"""Scenario 7 (part): hostile HTTP and WebSocket input against a live server, refused in bounded time."""

import json
import socket
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from conversations.models import Message
from tests.factories import make_conversation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hostile_env(reliability_env):
    return {
        **reliability_env,
        "REQUEST_BODY_TIMEOUT_SECONDS": "2",
        "REQUEST_MAX_BYTES": "200000",
        "ALLOW_ANONYMOUS": "true",
    }


@pytest.fixture
def server(hostile_env):
    from tests.live_server import LiveServer

    live = LiveServer(hostile_env, server="uvicorn").start()
    yield live
    live.stop()


def post_raw(url: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(url, content=body, headers={"Content-Type": content_type}, timeout=10)


def test_malformed_bodies_get_4xx_json_and_store_nothing(server, ledger):
    url = f"{server.url}/api/sessions/hostile/messages"
    cases = {
        "oversized body": (b'{"content": "' + b"x" * 300_000 + b'"}', 413),
        "deeply nested json": (b'{"content": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
        "invalid utf-8": (b'{"content": "\xff\xfe\xfa"}', 400),
        "not an object": (b"[1, 2, 3]", 400),
        "truncated json": (b'{"content": "hi', 400),
        "null bytes": (b'{"content": "\x00\x00"}', 400),
    }
    for name, (body, status) in cases.items():
        response = post_raw(url, body)
        ledger.add("hostile_inputs")
        ledger.add("server_5xx", response.status_code >= 500)
        assert response.status_code == status, (name, response.status_code, response.text[:200])
        assert response.json()["error"]["code"], name
    assert not Message.objects.exists()


def test_huge_headers_are_refused_or_the_connection_closed(server, ledger):
    ledger.add("hostile_inputs")
    try:
        response = httpx.get(f"{server.url}/health", headers={"X-Big": "a" * 200_000}, timeout=10)
    except httpx.TransportError:
        return  # the server closed the connection: refused
    ledger.add("server_5xx", response.status_code >= 500)
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"


def test_a_slow_body_is_cut_off_within_the_body_timeout(server, ledger):
    ledger.add("hostile_inputs")
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/sessions/slow/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"content": '
        )
        started = time.monotonic()
        reply = b""
        try:
            while chunk := sock.recv(4096):
                reply += chunk
                sock.sendall(b" ")  # one byte now and then: never finishing
                time.sleep(0.2)
        except OSError:
            pass
    elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed
    assert b" 408 " in reply.split(b"\r\n", 1)[0] or reply == b""


def test_websocket_floods_and_oversized_frames_are_limited(server, ledger):
    make_conversation(owner=None, session_key="flood")
    url = server.url.replace("http://", "ws://") + "/ws/chat/flood/"
    with ws_connect(url, origin="http://localhost") as ws:
        ws.send(json.dumps({"type": "message", "content": "x" * 400_000}))
        ledger.add("hostile_inputs")
        assert json.loads(ws.recv(timeout=5))["code"] == "frame_too_large"
    closed = False
    with ws_connect(url, origin="http://localhost") as ws:
        try:
            for _ in range(400):
                ws.send(json.dumps({"type": "ping"}))
            codes = set()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                frame = json.loads(ws.recv(timeout=5))
                codes.add(frame.get("code") or frame["type"])
        except Exception:  # the server closed the flooding socket
            closed = True
        ledger.add("hostile_inputs", 400)
    assert closed or "too_many_frames" in codes
    assert not Message.objects.exists()
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
