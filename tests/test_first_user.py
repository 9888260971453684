"""The first account of a local install (accounts/first_user.py): offered on DEBUG, from this machine,
while no user exists — and never otherwise."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

FORM = {"username": "ada", "password1": "a-long-enough-pass-7", "password2": "a-long-enough-pass-7"}


@pytest.fixture
def local(settings):
    settings.DEBUG = True


def test_the_login_page_offers_the_first_account_on_a_fresh_local_install(client, local):
    page = client.get("/accounts/login/")
    assert b"Create the first account" in page.content
    assert client.get("/accounts/first-user/").status_code == 200


def test_the_first_account_is_a_logged_in_superuser(client, local):
    response = client.post("/accounts/first-user/", FORM)
    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get()
    assert (user.username, user.is_superuser, user.is_staff) == ("ada", True, True)
    assert client.get("/").status_code == 200  # logged in: the chat page


def test_a_weak_password_is_refused_with_its_reason(client, local):
    response = client.post("/accounts/first-user/", {**FORM, "password1": "123", "password2": "123"})
    assert response.status_code == 200
    assert b"too short" in response.content
    assert not get_user_model().objects.exists()


def test_once_a_user_exists_there_is_no_first_account(client, local, django_user_model):
    django_user_model.objects.create_user("someone", password="x")
    assert b"Create the first account" not in client.get("/accounts/login/").content
    assert client.get("/accounts/first-user/").status_code == 404
    assert client.post("/accounts/first-user/", FORM).status_code == 404
    assert get_user_model().objects.count() == 1


def test_never_in_production(client, settings):
    settings.DEBUG = False
    assert b"Create the first account" not in client.get("/accounts/login/").content
    assert client.post("/accounts/first-user/", FORM).status_code == 404
    assert not get_user_model().objects.exists()


def test_never_from_another_machine(client, local):
    assert client.get("/accounts/first-user/", REMOTE_ADDR="192.0.2.7").status_code == 404
    assert client.post("/accounts/first-user/", FORM, REMOTE_ADDR="192.0.2.7").status_code == 404
    assert not get_user_model().objects.exists()


def test_a_forwarded_loopback_address_is_not_believed_without_a_trusted_proxy(client, local):
    response = client.post(
        "/accounts/first-user/", FORM, REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="127.0.0.1"
    )
    assert response.status_code == 404
