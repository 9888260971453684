"""The middleware stack under ASGI: no thread hop per hook, and Django's behaviour kept."""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient


def test_the_async_stack_adapts_no_middleware_to_a_thread(settings, caplog):
    settings.DEBUG = True  # Django reports each adaptation at DEBUG only then
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        handler = ASGIHandler()
    adapted = [r.getMessage() for r in caplog.records if "adapted" in r.getMessage()]
    assert adapted == [], adapted
    assert handler._view_middleware, "CSRF's process_view is in the chain"


@pytest.mark.django_db(transaction=True)
async def test_login_saves_the_session_and_csrf_is_enforced_under_asgi():
    await get_user_model().objects.acreate_user("mw-user", password="pw-12345-long")
    strict = AsyncClient(enforce_csrf_checks=True)
    refused = await strict.post("/accounts/login/", {"username": "mw-user", "password": "pw-12345-long"})
    assert refused.status_code == 403  # no CSRF token

    page = await strict.get("/accounts/login/")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    token = page.cookies["csrftoken"].value
    logged_in = await strict.post(
        "/accounts/login/",
        {"username": "mw-user", "password": "pw-12345-long", "csrfmiddlewaretoken": token},
    )
    assert logged_in.status_code == 302, logged_in.content[:300]
    assert "sessionid" in logged_in.cookies  # saved by the session middleware (in a thread)

    sessions = await strict.get("/api/sessions")
    assert sessions.status_code == 200  # the session authenticates the API
    assert "Cookie" in sessions["Vary"]


async def test_static_files_are_served_by_the_async_middleware():
    client = AsyncClient()
    response = await client.get("/static/chat/app.js")
    assert response.status_code == 200
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert b"function" in body or b"=>" in body
