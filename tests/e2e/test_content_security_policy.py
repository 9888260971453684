"""The pages under their Content-Security-Policy in Chromium: each works, with no violation reported
and no request leaving this server (docs/browser.md).

The chat page sends a message and gets its answer over the WebSocket, the admin usage page draws
its charts (Chart.js), and the API docs (Swagger UI, from drf-spectacular-sidecar) list the
operations. The policy's header itself is checked in tests/test_content_security_policy.py.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import open_chat
from tests.e2e.pages import answer_text, send, wait_for_status
from tests.e2e.test_usage import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


class Watch:
    """What a tab reports: CSP violations (console and ``securitypolicyviolation``) and requests elsewhere."""

    def __init__(self, page, server_url: str) -> None:
        self.origin = urlsplit(server_url).netloc
        self.console: list[str] = []
        self.elsewhere: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("request", self._request)
        page.add_init_script(
            """document.addEventListener("securitypolicyviolation", (event) =>
                console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`));"""
        )

    def _request(self, request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob", "about") and url.netloc != self.origin:
            self.elsewhere.append(request.url)

    def check(self) -> None:
        violations = [m for m in self.console if "Content Security Policy" in m or "CSP violation" in m]
        assert violations == [], violations
        assert self.elsewhere == [], self.elsewhere


@pytest.fixture
def watched(new_page, asgi_server):
    watch = Watch(new_page, asgi_server.url)
    yield new_page, watch
    watch.check()


def policy_of(response) -> str:
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, policy
    return policy


def test_the_chat_page_chats_under_its_policy(demo, watched, user, asgi_server):
    page, _ = watched
    open_chat(page, user, asgi_server.url)
    policy_of(page.goto("/"))
    page.wait_for_selector("body[data-ready=true]")
    send(page, "Hello under a strict policy")
    wait_for_status(page, "complete")
    assert answer_text(page).strip()
    assert page.locator("#conn-state").get_attribute("data-kind") == "ok"  # over the WebSocket, not SSE


def test_the_admin_usage_page_draws_its_charts_under_its_policy(watched, asgi_server, db):
    page, _ = watched
    staff = get_user_model().objects.create_superuser("csp-admin", "a@example.com", "pw-admin-123")
    sign_in(page, staff, asgi_server.url)
    policy_of(page.goto("/admin/usage/"))
    page.wait_for_selector("body[data-charts-ready=true]")
    drawn = page.evaluate(
        "[...document.querySelectorAll('canvas')].filter((c) => Chart.getChart(c) && c.width > 100).length"
    )
    assert drawn == 5


def test_the_api_docs_list_the_operations_under_their_policy(watched, settings):
    page, _ = watched
    settings.API_DOCS = "public"
    policy_of(page.goto("/api/docs/"))
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) > 20, paths
    assert any(p.strip().startswith("/api/sessions") for p in paths), paths
    page.locator(".opblock-summary").first.click()  # an operation opens (Swagger UI's React renders it)
    page.wait_for_selector(".opblock-body")
