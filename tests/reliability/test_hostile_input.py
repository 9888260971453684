"""Scenario 7 (part): hostile HTTP and WebSocket input against a live server, refused in bounded time."""

import json
import socket
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from conversations.models import Message
from tests.factories import make_conversation
from tests.origins import page_origin

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
    with ws_connect(url, origin=page_origin(url)) as ws:
        ws.send(json.dumps({"type": "message", "content": "x" * 400_000}))
        ledger.add("hostile_inputs")
        assert json.loads(ws.recv(timeout=5))["code"] == "frame_too_large"
    closed = False
    with ws_connect(url, origin=page_origin(url)) as ws:
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


@pytest.fixture
def owner_key(db):
    """An authenticated caller: issue 27's unhandled 500s were found with a personal key."""
    from django.contrib.auth import get_user_model

    from accounts.keys import api_key_create

    owner = get_user_model().objects.create_user("hostile-owner", password="pw-hostile-123")
    return owner, api_key_create(owner=owner, name="hostile")[1]


def nested_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


UNSTORABLE = {  # name: (method, path, body, status, code); each was a 500 before issue 27
    "NUL in q=": ("GET", "/api/sessions?q=a%00b", None, 400, "nul_in_url"),
    "NUL in provider=": ("GET", "/api/sessions?provider=a%00b", None, 400, "nul_in_url"),
    "NUL in model=": ("GET", "/api/sessions?model=%00", None, 400, "nul_in_url"),
    "NUL in a session key": ("GET", "/api/sessions/a%00b", None, 400, "nul_in_url"),
    "NUL in an export's key": ("GET", "/api/sessions/a%00b/export", None, 400, "nul_in_url"),
    "NUL in a turn's key": ("POST", "/api/sessions/a%00b/messages", b'{"content": "hi"}', 400, "nul_in_url"),
    "lone surrogate in session metadata": (
        "POST",
        "/api/sessions",
        b'{"metadata": {"k": "\\ud800"}}',
        400,
        "invalid_input",
    ),
    "NUL in responses metadata": (
        "POST",
        "/v1/responses",
        b'{"input": "hi", "metadata": {"k": "a\\u0000"}}',
        422,
        "invalid_input",
    ),
    "json 330 deep (a recursive check's RecursionError)": (
        "POST",
        "/api/sessions",
        b'{"metadata": {"k": ' + nested_array(330) + b"}}",
        400,
        "body_too_deep",
    ),
    "json 3,000 deep (the standard decoder's RecursionError)": (
        "POST",
        "/api/sessions",
        b'{"metadata": {"k": ' + nested_array(3000) + b"}}",
        400,
        "body_too_deep",
    ),
    "json 330 deep in a turn": (
        "POST",
        "/api/sessions/deep/messages",
        b'{"content": "hi", "json_schema": {"k": ' + nested_array(330) + b"}}",
        400,
        "body_too_deep",
    ),
    "responses metadata value of 150 kB": (
        "POST",
        "/v1/responses",
        b'{"input": "hi", "metadata": {"k": "' + b"x" * 150_000 + b'"}}',
        422,
        "invalid_input",
    ),
}


def test_unstorable_input_gets_4xx_json_and_stores_nothing(server, ledger, owner_key):
    from conversations.models import Conversation

    headers = {"X-API-Key": owner_key[1], "Content-Type": "application/json"}
    for name, (method, path, body, status, code) in UNSTORABLE.items():
        response = httpx.request(method, server.url + path, content=body, headers=headers, timeout=10)
        ledger.add("hostile_inputs")
        ledger.add("server_5xx", response.status_code >= 500)
        assert response.status_code == status, (name, response.status_code, response.text[:200])
        assert response.json()["error"]["code"] == code, name
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_a_nul_in_a_socket_path_gets_an_error_frame_and_a_close_code(server, ledger, owner_key):
    from websockets.exceptions import ConnectionClosed

    url = server.url.replace("http://", "ws://") + "/ws/chat/a%00b/"
    with ws_connect(url, additional_headers={"X-API-Key": owner_key[1]}) as ws:
        ledger.add("hostile_inputs")
        assert json.loads(ws.recv(timeout=5))["code"] == "nul_in_url"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4400
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


def test_an_artifact_name_with_cr_lf_downloads_with_a_clean_header(server, ledger, owner_key):
    from conversations.models import Artifact

    headers = {"X-API-Key": owner_key[1]}
    artifact = {
        "position": 0,
        "language": "python",
        "filename": "a\r\nSet-Cookie: x=1\r\n.py",
        "content": "1\n",
    }
    message = {
        "id": "1",
        "role": "assistant",
        "content": "code",
        "status": "complete",
        "created_at": "2026-01-01T00:00:00Z",
        "artifacts": [artifact],
    }
    export = {"format": "chat-session/1", "session": {"session_key": "crlf"}, "messages": [message]}
    assert (
        httpx.post(f"{server.url}/api/sessions/import", json=export, headers=headers, timeout=10).status_code
        == 201
    )
    pk = Artifact.objects.get().pk
    response = httpx.get(f"{server.url}/api/sessions/crlf/artifacts/{pk}/raw", headers=headers, timeout=10)
    ledger.add("hostile_inputs")
    ledger.add("server_5xx", response.status_code >= 500)
    assert response.status_code == 200 and "set-cookie" not in response.headers
    assert response.headers["content-disposition"].startswith(
        "attachment; filename*=utf-8''a%0D%0ASet-Cookie"
    )
