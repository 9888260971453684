"""The WebSocket Origin check compares the whole origin (scheme, host, port): chatproject/websocket_origin.py.

A page may open a socket only from the server's own origin (the socket's Host, ws→http, wss→https)
or from one of ALLOWED_ORIGINS; the session cookie a foreign page's socket would carry is no use.
Driven through the real ASGI application (Channels' communicator) and the real server.
"""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from chatproject.asgi import application
from chatproject.websocket_origin import parse_origin
from tests.factories import make_conversation
from tests.origins import page_origin

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cookie(settings):
    """A logged-in user's session cookie and their session ``mine``; ALLOWED_HOSTS as in the issue."""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "chat.example.com"]
    settings.ALLOWED_ORIGINS = []
    user = get_user_model().objects.create_user("dana", "d@example.com", "pw-dana-123")
    make_conversation(owner=user, session_key="mine")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def opens(cookie: str, origin: str, host: str = "127.0.0.1:8000", scheme: str = "ws", **extra) -> bool:
    headers = [(b"host", host.encode()), (b"origin", origin.encode()), (b"cookie", cookie.encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    communicator = WebsocketCommunicator(application, "/ws/chat/mine/", headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
        await communicator.disconnect()
    return connected


async def test_another_port_of_an_allowed_host_is_refused(cookie):
    assert not await opens(cookie, "http://127.0.0.1:1")
    assert await opens(cookie, "http://127.0.0.1:8000")


async def test_another_scheme_is_refused(cookie):
    assert not await opens(cookie, "https://127.0.0.1:8000")
    assert not await opens(cookie, "http://chat.example.com", host="chat.example.com", scheme="wss")
    assert await opens(cookie, "https://chat.example.com", host="chat.example.com", scheme="wss")
    assert await opens(cookie, "https://chat.example.com:443", host="chat.example.com:443", scheme="wss")


async def test_a_tls_proxy_counts_when_its_header_is_trusted(cookie, settings):
    forwarded = {"x-forwarded-proto": "https"}
    assert not await opens(cookie, "https://chat.example.com", host="chat.example.com", **forwarded)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert await opens(cookie, "https://chat.example.com", host="chat.example.com", **forwarded)


async def test_a_host_outside_allowed_hosts_is_no_origin_of_ours(cookie):
    """DNS rebinding: the page and the Host agree, but the name is not ours."""
    assert not await opens(cookie, "http://evil.example:8000", host="evil.example:8000")


async def test_allowed_origins_are_matched_whole(cookie, settings):
    settings.ALLOWED_ORIGINS = ["http://localhost:5173"]
    assert await opens(cookie, "http://localhost:5173")
    assert not await opens(cookie, "http://localhost:5174")
    assert not await opens(cookie, "https://localhost:5173")


async def test_no_origin_or_a_null_origin_is_refused(cookie):
    assert not await opens(cookie, "null")
    communicator = WebsocketCommunicator(
        application, "/ws/chat/mine/", headers=[(b"host", b"127.0.0.1:8000"), (b"cookie", cookie.encode())]
    )
    assert not (await communicator.connect(timeout=5))[0]


def test_origins_parse_with_their_default_ports():
    assert parse_origin("HTTPS://Chat.Example.com") == ("https", "chat.example.com", 443)
    assert parse_origin("http://[::1]:8000") == ("http", "::1", 8000)
    for bad in ("null", "ftp://x", "http://x:99999", "http://x/path", "http://u@x", ""):
        assert parse_origin(bad) is None, bad


def test_the_real_server_refuses_another_port_with_the_session_cookie(asgi_server, cookie):
    url = asgi_server.url.replace("http://", "ws://") + "/ws/chat/mine/"
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url, origin="http://127.0.0.1:1", additional_headers={"Cookie": cookie})
    assert refused.value.response.status_code == 403
    with ws_connect(url, origin=page_origin(url), additional_headers={"Cookie": cookie}) as ws:
        ws.send('{"type": "ping"}')
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
