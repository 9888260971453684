"""Tickets on every socket, and no API key in a socket's URL (conversations/sockets/tickets.py, accounts/websocket.py).

``POST /api/ws-ticket`` (the session or an API key) gives a single-use ticket bound to the page's
Origin; ``ws/chat/{key}/?ticket=`` opens with the ticket's caller and no other credentials.
``?api_key=`` is refused (4401) unless ``WS_API_KEY_IN_QUERY`` is on. Real ASGI application,
Channels' communicator, the ticket store of the run (Redis with REDIS_URL, else this process).
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.keys import api_key_create
from chatproject.asgi import application
from tests.factories import make_conversation

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = "http://localhost"
HOST = (b"host", b"localhost")


@pytest.fixture
def world(settings):
    settings.ALLOW_ANONYMOUS = False
    settings.ALLOWED_ORIGINS = []
    users = get_user_model().objects
    erin, frank = (
        users.create_user("erin", "e@x.com", "pw-erin-123"),
        users.create_user("frank", "f@x.com", "pw"),
    )
    make_conversation(owner=erin, session_key="erins")
    make_conversation(owner=frank, session_key="franks")
    page = Client()
    page.force_login(erin)
    _, key = api_key_create(owner=erin, name="erin's")
    return {"page": page, "key": key}


def ticket_for(client: Client, path: str = "/api/ws-ticket", origin: str = PAGE, **headers) -> str:
    response = client.post(path, HTTP_ORIGIN=origin, **headers)
    assert response.status_code == 200, response.content
    assert response.json()["expires_in"] == 60 and response.json()["origin"] == origin
    return response.json()["ticket"]


async def outcome(path: str, headers: list | None = None) -> int | str:
    """``"open"`` (a ping answered) or the close code of a refused socket."""
    communicator = WebsocketCommunicator(
        application, path, headers=[HOST, (b"origin", PAGE.encode())] + (headers or [])
    )
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        return code
    try:
        await communicator.send_json_to({"type": "ping"})
        output = await communicator.receive_output(timeout=5)
    finally:
        # Always: a consumer left running keeps the channel layer's receive lock on this test's loop.
        await communicator.disconnect()
    if output["type"] == "websocket.close":
        return output["code"]
    return "open"


async def test_a_ticket_opens_the_chat_socket_once(world):
    ticket = await sync_to_async(ticket_for)(world["page"])
    assert await outcome(f"/ws/chat/erins/?ticket={ticket}") == "open"  # no cookie, no key on the socket
    assert await outcome(f"/ws/chat/erins/?ticket={ticket}") == 4401  # spent


async def test_a_ticket_is_its_callers_only(world):
    ticket = await sync_to_async(ticket_for)(world["page"])
    assert await outcome(f"/ws/chat/franks/?ticket={ticket}") == 4403


async def test_a_ticket_from_an_api_key_on_the_old_path(world):
    """``POST /api/ai-sdk/ws-ticket`` keeps working for existing clients, for every socket."""
    ticket = await sync_to_async(ticket_for)(Client(), "/api/ai-sdk/ws-ticket", HTTP_X_API_KEY=world["key"])
    assert await outcome(f"/ws/chat/erins/?ticket={ticket}") == "open"


async def test_a_ticket_for_another_page_or_made_up_is_refused(world):
    ticket = await sync_to_async(ticket_for)(world["page"], origin="http://localhost:5173")
    assert await outcome(f"/ws/chat/erins/?ticket={ticket}") == 4401
    assert await outcome("/ws/chat/erins/?ticket=made-up") == 4401


async def test_an_api_key_in_the_url_is_refused_by_default(world, settings):
    assert await outcome(f"/ws/chat/erins/?api_key={world['key']}") == 4401
    assert await outcome("/ws/chat/erins/", [(b"x-api-key", world["key"].encode())]) == "open"
    settings.WS_API_KEY_IN_QUERY = True  # documented escape hatch for old clients
    assert await outcome(f"/ws/chat/erins/?api_key={world['key']}") == "open"


async def test_the_session_cookie_still_opens_the_page_socket(world):
    cookie = f"sessionid={world['page'].cookies['sessionid'].value}"
    assert await outcome("/ws/chat/erins/", [(b"cookie", cookie.encode())]) == "open"
