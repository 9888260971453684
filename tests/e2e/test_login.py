"""Logging in and out of the chat page with the Django session."""

from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import log_in
from tests.e2e.pages import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_chat_page_asks_an_anonymous_visitor_to_log_in(page):
    page.goto("/")
    assert "/accounts/login/" in page.url
    expect(page.locator("#id_username")).to_be_visible()


def test_a_wrong_password_is_refused_plainly(page, user):
    page.goto("/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert "did not match" in page.locator(".form-error").inner_text()


def test_log_in_opens_the_chat_and_log_out_returns_to_the_login_page(page, user):
    log_in(page, user)
    assert urlparse(page.url).path == "/"
    assert user.get_username() in page.locator(".sidebar-foot").inner_text()
    assert any(c["name"] == "csrftoken" for c in page.context.cookies())
    page.click("#logout")
    page.wait_for_url("**/accounts/login/")
    page.goto("/")
    assert "/accounts/login/" in page.url
