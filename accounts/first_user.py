"""The first account of a local install: who may create it, and creating it.

On the local default (``DEBUG``), while no user exists, a person at this machine (a loopback
address, as the rate limits see it) may create the first account from the login page; it is a
superuser, so it also opens the admin. Never in production (``DEBUG`` off), never from another
machine, never once a user exists: there the documented way is ``manage.py createsuperuser``
(``--noinput`` with ``DJANGO_SUPERUSER_USERNAME``/``_PASSWORD``/``_EMAIL``).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.callers import client_ip


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def first_user_open(request) -> bool:
    """Whether this request may create the first account."""
    if not settings.DEBUG or not _loopback(client_ip(request)):
        return False
    return not get_user_model().objects.exists()


class FirstUserTaken(Exception):
    """Someone created an account between the form's display and its submission."""


def first_user_create(*, username: str, password: str):
    """Create the first account as a superuser, unless an account exists by now."""
    users = get_user_model()
    with transaction.atomic():
        if users.objects.select_for_update().exists():
            raise FirstUserTaken
        return users.objects.create_superuser(username=username, password=password, email="")
