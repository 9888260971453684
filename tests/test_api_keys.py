import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.keys import api_key_authenticate, api_key_create, api_key_revoke
from accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def test_secret_is_stored_only_as_a_hash(user):
    key, secret = api_key_create(owner=user, name="ci")
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert secret not in str(stored)
    assert len(stored["secret_hash"]) == 64
    assert secret.startswith(f"ck_{key.prefix}_")


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_key_authenticates_by_header_or_bearer(user, header, settings):
    settings.ALLOW_ANONYMOUS = False
    _, secret = api_key_create(owner=user, name="ci")
    value = secret if header == "X-API-Key" else f"Bearer {secret}"
    response = Client(headers={header: value}).get("/api/sessions")
    assert response.status_code == 200
    assert ApiKey.objects.get().last_used_at is not None


def test_revoked_key_is_rejected(user):
    key, secret = api_key_create(owner=user, name="ci")
    assert api_key_revoke(prefix=key.prefix)
    assert api_key_authenticate(secret) is None
    response = Client(headers={"X-API-Key": secret}).get("/api/sessions")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("raw", ["nonsense", "ck_", "ck_deadbeef", "ck_deadbeef_wrong", "x" * 500])
def test_malformed_or_unknown_keys_are_rejected(user, raw):
    api_key_create(owner=user, name="ci")
    assert api_key_authenticate(raw) is None
    assert Client(headers={"X-API-Key": raw}).get("/api/sessions").status_code == 401


def test_a_right_prefix_with_a_wrong_secret_is_rejected(user):
    _key, secret = api_key_create(owner=user, name="ci")
    assert api_key_authenticate(secret[:-2] + "xx") is None


def test_no_credentials_is_401_when_anonymous_use_is_off(settings):
    settings.ALLOW_ANONYMOUS = False
    response = Client().get("/api/sessions")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_required"


def test_management_command_creates_lists_and_revokes(user):
    out = io.StringIO()
    call_command("apikey", "create", "--user", "alice", "--name", "laptop", stdout=out, stderr=io.StringIO())
    secret = out.getvalue().strip()
    key = api_key_authenticate(secret)
    assert key is not None and key.name == "laptop"
    listing = io.StringIO()
    call_command("apikey", "list", stdout=listing)
    assert key.prefix in listing.getvalue() and secret not in listing.getvalue()
    call_command("apikey", "revoke", key.prefix, stdout=io.StringIO())
    assert api_key_authenticate(secret) is None


def test_admin_creates_a_key_showing_the_secret_once_and_revokes(staff_client, user):
    response = staff_client.post(
        reverse("admin:accounts_apikey_add"), {"owner": user.pk, "name": "from admin"}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    secret = next(word for m in shown for word in m.split() if word.startswith("ck_"))
    key = api_key_authenticate(secret)
    assert key is not None and key.owner == user
    staff_client.post(
        reverse("admin:accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]}
    )
    assert api_key_authenticate(secret) is None
