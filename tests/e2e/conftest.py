"""End-to-end fixtures: the real ASGI app (``asgi_server``) driven by headless Chromium through Playwright.

The browser is Debian's ``chromium`` (never Playwright's downloaded builds); the whole directory
skips, saying what to install, when it or the ``playwright`` package is missing. Tests are sync
(Playwright's sync API must not run inside pytest-asyncio's loop).
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "pw-alice-123"  # the `user` fixture's


def missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed: pip install -r requirements-dev.txt (see tests/e2e/README.md)"
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (see tests/e2e/README.md)"
    return None


@pytest.fixture(scope="package")
def browser():
    """Chromium for the whole package.

    Playwright's sync API runs its event loop in this thread, so Django's async-safety check would
    refuse the tests' own ORM calls: it is lifted while the browser lives (the server runs in its
    own thread, unaffected by what the test thread does).
    """
    reason = missing_browser()
    if reason:
        if os.environ.get("E2E_REQUIRED"):  # CI installs the browser: a missing one is a failure there
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def demo(settings):
    """The offline demo provider, slow enough (0.03 s a piece, ~3 s an answer) to watch it stream."""
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0.03
    return settings


@pytest.fixture(scope="package")
def browser_context(browser, django_db_setup, asgi_server):
    """One context for the package, so static files and compiled scripts are cached between tests.

    It asks for the test database before the server, so the server stops before the database is
    dropped (otherwise its connections hold the drop up).
    """
    context = browser.new_context(
        base_url=asgi_server.url, viewport={"width": 1280, "height": 800}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture(scope="package")
def shared_tab(browser_context):
    tab = browser_context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    yield tab
    tab.close()


@pytest.fixture
def page(browser_context, shared_tab):
    """The package's tab, with no cookies or permissions left by earlier tests; fails on uncaught page errors.

    Reusing one tab (rather than one per test) saves starting a renderer process for every test.
    """
    browser_context.clear_cookies()
    browser_context.clear_permissions()
    shared_tab.goto("about:blank")
    shared_tab.errors.clear()
    yield shared_tab
    shared_tab.goto("about:blank")  # closes the test's sockets and streams before the database is flushed
    errors, shared_tab.errors = shared_tab.errors, []
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def new_page(browser, asgi_server):
    """A tab in a browser context of its own (another device, or routes that must not leak to other tests)."""
    context = browser.new_context(base_url=asgi_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def log_in(page, user, password: str = PASSWORD, path: str = "/") -> None:
    """Logs in through the login form and waits until the chat page has loaded its data."""
    page.goto(path)
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready=true]")


def open_chat(page, user, server_url: str, path: str = "/") -> None:
    """Opens the chat page with a session cookie for ``user`` (the quick way; test_login uses the form)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": server_url}])
    page.goto(path)
    page.wait_for_selector("body[data-ready=true]")


@pytest.fixture
def chat(page, user, asgi_server):
    """The chat page, logged in as ``user``."""
    open_chat(page, user, asgi_server.url)
    return page
