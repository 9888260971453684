"""Login throttling (django-axes, accounts/login_throttle.py) on both login pages.

AXES_FAILURE_LIMIT wrong passwords for one username from one address lock that pair: the login
pages answer ``429`` (a page, or ``login_locked`` JSON) until the cool-off ends, then a correct
password logs in again. Failures are counted in the database, so every server process sees them.
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.live_server import current_database_url, live_server

pytestmark = pytest.mark.django_db
PAGES = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("carol", "c@example.com", "pw-carol-123", is_staff=True)


def attempt(client: Client, page: str, password: str, **extra):
    return client.post(page, {"username": "carol", "password": password, "next": "/"}, **extra)


@pytest.mark.parametrize("page", PAGES)
def test_wrong_passwords_lock_the_login_page(client, staff, settings, page):
    settings.AXES_FAILURE_LIMIT = 5
    answers = [attempt(client, page, f"wrong-{n}").status_code for n in range(5)]
    assert answers == [200, 200, 200, 200, 429]
    locked = attempt(client, page, "pw-carol-123")  # even the right password, while locked
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert int(locked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


def test_the_lockout_answers_json_to_a_json_client(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for n in range(2):
        answer = attempt(client, "/accounts/login/", f"wrong-{n}", HTTP_ACCEPT="application/json")
    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "login_locked"
    assert answer.json()["error"]["retry_after"] > 0


def test_a_correct_login_after_the_cool_off_works(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for n in range(3):
        attempt(client, "/accounts/login/", f"wrong-{n}")
    assert attempt(client, "/accounts/login/", "pw-carol-123").status_code == 429
    time.sleep(1.2)
    answer = attempt(client, "/accounts/login/", "pw-carol-123")
    assert answer.status_code == 302
    assert client.get("/").status_code == 200


def test_tries_while_locked_do_not_extend_the_lock(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1.5)
    for n in range(2):
        attempt(client, "/accounts/login/", f"wrong-{n}")
    time.sleep(0.8)
    assert attempt(client, "/accounts/login/", "wrong-again").status_code == 429
    time.sleep(0.9)  # 1.7 s after the lock began, 0.9 s after the last try
    assert attempt(client, "/accounts/login/", "pw-carol-123").status_code == 302


def test_another_address_is_not_locked_out_with_the_attacker(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(3):
        attempt(client, "/accounts/login/", f"wrong-{n}", REMOTE_ADDR="203.0.113.9")
    assert attempt(client, "/accounts/login/", "pw-carol-123", REMOTE_ADDR="203.0.113.9").status_code == 429
    victim = Client()
    assert attempt(victim, "/accounts/login/", "pw-carol-123", REMOTE_ADDR="198.51.100.7").status_code == 302


def test_api_keys_and_the_session_cookie_still_authenticate(client, staff, settings):
    """Locked-out logins do not touch the API's own credentials (keys, an existing session)."""
    from accounts.keys import api_key_create

    settings.AXES_FAILURE_LIMIT = 2
    logged_in = Client()
    logged_in.force_login(staff)
    _, raw = api_key_create(owner=staff, name="k")
    for n in range(2):
        attempt(client, "/accounts/login/", f"wrong-{n}")
    assert attempt(client, "/accounts/login/", "pw-carol-123").status_code == 429
    assert client.get("/api/sessions", HTTP_X_API_KEY=raw).status_code == 200
    assert logged_in.get("/api/sessions").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_count_is_shared_by_every_server_process(staff):
    """Failures on one process count on another: the store is the database, not process memory."""
    env = {"DATABASE_URL": current_database_url(), "AXES_FAILURE_LIMIT": "4", "LOG_LEVEL": "WARNING"}

    def post(base: str, password: str) -> int:
        with httpx.Client(base_url=base, timeout=10) as http:
            token = http.get("/accounts/login/").cookies["csrftoken"]
            form = {"username": "carol", "password": password, "csrfmiddlewaretoken": token}
            return http.post("/accounts/login/", data=form, headers={"Referer": base + "/"}).status_code

    with live_server(env, server="uvicorn") as a, live_server(env, server="uvicorn") as b:
        assert [post(a, "wrong-1"), post(b, "wrong-2"), post(a, "wrong-3")] == [200, 200, 200]
        assert post(b, "wrong-4") == 429
        assert post(a, "pw-carol-123") == 429
