"""Fixtures shared by the whole suite."""

from __future__ import annotations

import json
import os

import pytest
from django.contrib.auth import get_user_model

from tests.live_server import FAKE_UPSTREAM_PRICES, listening

FULL_SUITE_COMMAND = (
    "DATABASE_URL=postgres://postgres@127.0.0.1:5432/chat REDIS_URL=redis://127.0.0.1:6379/0 make test"
)


def _unused_local_services() -> list[str]:
    """PostgreSQL and Redis running here that this run does not use (it never switches on its own)."""
    unused = []
    if not os.environ.get("DATABASE_URL") and listening(5432):
        unused.append("PostgreSQL (127.0.0.1:5432)")
    if not os.environ.get("REDIS_URL") and listening(6379):
        unused.append("Redis (127.0.0.1:6379)")
    return unused


def pytest_report_header(config) -> list[str]:
    database = os.environ.get("DATABASE_URL", "").split("@")[-1] or "SQLite (embedded default)"
    layer = "Redis" if os.environ.get("REDIS_URL") else "in-memory channel layer (embedded default)"
    return [f"database: {database}; channel layer: {layer}"]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    unused = _unused_local_services()
    if unused:
        terminalreporter.section("the full suite")
        terminalreporter.write_line(
            f"{' and '.join(unused)} running here but not used: this run is on the embedded defaults, "
            "and the tests that need them were skipped (reasons above). For the full suite:"
        )
        terminalreporter.write_line(f"  {FULL_SUITE_COMMAND}")


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw-alice-123")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-123")


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    client.force_login(admin)
    return client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Drop the test database cleanly even when server threads or processes left connections open."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def fake_upstream_server():
    from tests.fake_upstream import FakeUpstream

    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def upstream(fake_upstream_server):
    """The fake provider upstream, reset for this test."""
    fake_upstream_server.reset()
    yield fake_upstream_server
    fake_upstream_server.reset()


@pytest.fixture
def openai_upstream(upstream, settings):
    """LLM_PROVIDER=openai (Chat Completions) pointed at the fake upstream, fast retries."""
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.OPENAI_BASE_URL = upstream.openai_base_url
    settings.OPENAI_MODEL = "gpt-test"
    settings.PRICES = FAKE_UPSTREAM_PRICES
    settings.LLM_READ_TIMEOUT = 5.0
    settings.LLM_RETRY_ATTEMPTS = 0
    settings.LLM_RETRY_BACKOFF = 0.01
    settings.LLM_FALLBACKS = []
    return upstream


@pytest.fixture
def sdk(asgi_server, openai_upstream):
    """The official openai SDK pointed at this server's /v1 (the server's provider: the fake upstream)."""
    from openai import OpenAI

    client = OpenAI(api_key="unused", base_url=asgi_server.url + "/v1", max_retries=0, timeout=20)
    yield client
    client.close()


@pytest.fixture(scope="session")
def asgi_server():
    from tests.asgi_server import ThreadedASGIServer

    server = ThreadedASGIServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def own_channel_layer(request):
    """An async test gets a channel layer of its own. channels-redis lets one layer instance receive on
    one event loop at a time: a consumer's receive left pending when an earlier test's loop closed
    never gave its count back, and every later socket on the shared instance failed with "bound to a
    different event loop" (order-dependent, in the full suite only). Sync tests (the live servers,
    the threaded ASGI server) keep the shared one."""
    import inspect

    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        yield
        return
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    shared = channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    if shared is not None:
        channel_layers.backends[DEFAULT_CHANNEL_LAYER] = shared


@pytest.fixture(autouse=True)
def settle_turns():
    """After each test, wait for turns still running in server threads to save (before the DB is flushed)."""
    yield
    import time

    from conversations.turns import running, store

    deadline = time.monotonic() + 10
    while (running.running_jobs or store._pending_closes) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(scope="module")
def two_servers(django_db_setup, django_db_blocker, fake_upstream_server):
    """Two live uvicorn processes on the test database and the shared Redis (the fake upstream's
    OpenAI as their provider): fan-out, stop and resume across processes."""
    import os

    from tests.live_server import current_database_url, live_server

    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL: the two processes share Redis")
    with django_db_blocker.unblock():
        database_url = current_database_url()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake_upstream_server.openai_base_url,
        "OPENAI_MODEL": "gpt-test",
        "PRICES": json.dumps(FAKE_UPSTREAM_PRICES),
        "LLM_RETRY_ATTEMPTS": "0",
        "HTTP_DETACH_GRACE_SECONDS": "10",
        "WS_DETACH_GRACE_SECONDS": "10",
        "ALLOW_ANONYMOUS": "true",
        "LOG_LEVEL": "WARNING",
    }
    with live_server(env, server="uvicorn") as a, live_server(env, server="uvicorn") as b:
        yield a, b
