"""The Content-Security-Policy of the project's pages (docs/browser.md): strict, and the pages fit it.

The browser's side (each page runs with no violation reported) is tests/e2e/test_content_security_policy.py.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient

EXPECTED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'", "ws://testserver", "wss://testserver"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
PAGES = ("/", "/admin/usage/", "/api/docs/")


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


@pytest.mark.parametrize("path", PAGES)
def test_each_page_has_the_strict_policy(staff_client, path):
    response = staff_client.get(path)
    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"]) == EXPECTED


@pytest.mark.parametrize("path", PAGES)
def test_each_page_runs_no_inline_script_or_style(staff_client, path):
    """No inline script (a JSON data block is not run) and no style attribute or element: the
    policy would block them, so a page that had one would break under it."""
    html = staff_client.get(path).content.decode()
    scripts = re.findall(r"<script\b([^>]*)>", html)
    assert scripts, "the page loads its scripts"
    for attributes in scripts:
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
    assert not re.search(r"<style\b|\sstyle=", html)


def test_pages_beyond_the_three_have_it_too(client, db):
    """A policy on every response Django builds, not a list of views: the login page, an admin page."""
    for path in ("/accounts/login/", "/admin/login/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert directives(response["Content-Security-Policy"]) == EXPECTED, path


def test_the_websocket_origin_is_the_requests_host_only(staff_client, settings):
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    response = staff_client.get("/", HTTP_HOST="chat.example.com")
    connect = directives(response["Content-Security-Policy"])["connect-src"]
    assert connect == ["'self'", "ws://chat.example.com", "wss://chat.example.com"]


@pytest.mark.django_db(transaction=True)
async def test_the_policy_is_set_under_asgi_without_a_thread_hop():
    """The async stack (the server's) sets it too; test_middleware checks that no hook is adapted."""
    staff = await get_user_model().objects.acreate_superuser("csp-admin", "a@example.com", "pw-admin-123")
    client = AsyncClient()
    await client.aforce_login(staff)
    for path in ("/", "/admin/usage/", "/api/docs/"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert directives(response["Content-Security-Policy"]) == EXPECTED, path
