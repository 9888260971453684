"""Errors that must not mislead: a bad cursor is the client's error; an API path is JSON even under DEBUG."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import make_conversation
from tests.live_server import LiveServer, current_database_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client, django_user_model):
    user = django_user_model.objects.create_user("cursor-owner", password="x")
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    "path", ["/api/sessions", "/api/sessions/c-1/messages", "/api/sessions/c-1/artifacts"]
)
def test_a_cursor_the_api_did_not_give_is_400_invalid_cursor(client, owner, path):
    make_conversation(owner=owner, session_key="c-1")
    response = client.get(path, {"cursor": "garbage"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_cursor"
    assert "next or previous link" in error["message"]


def test_a_cursor_the_api_gave_still_pages(client, owner):
    for n in range(3):
        make_conversation(owner=owner, session_key=f"page-{n}")
    first = client.get("/api/sessions", {"page_size": 2}).json()
    second = client.get(first["next"])
    assert second.status_code == 200
    assert len(first["results"]) + len(second.json()["results"]) == 3


@pytest.mark.django_db(transaction=True)
def test_under_debug_an_api_path_that_matches_no_route_is_a_json_404():
    server = LiveServer({"DATABASE_URL": current_database_url(), "DEBUG": "true"}, server="uvicorn").start()
    try:
        for path in ("/api/sessions/s/messages/not-a-uuid", "/v1/nothing-here", "/api/nope"):
            response = httpx.get(server.url + path, timeout=10)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/json", path
            assert response.json()["error"]["code"] == "not_found"
        page = httpx.get(server.url + "/no-such-page", timeout=10)
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]  # pages stay HTML
    finally:
        server.stop()
