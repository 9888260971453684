"""Login throttling (django-axes): too many wrong passwords lock that username from that address.

Both login pages (``/accounts/login/`` and ``/admin/login/``) go through ``authenticate()``, so
one backend covers them. Failures are counted in the database (axes' database handler), which
every server process shares; a lock is per username *and* client address (a stranger elsewhere
cannot lock a user out) and ends by itself after ``AXES_COOLOFF_TIME`` — further tries while
locked do not extend it, so nobody stays locked out for good. The client address is the one every
other limit uses (:func:`accounts.callers.client_ip`, which honours ``TRUSTED_PROXIES``).
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from accounts.callers import client_ip


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' check before Django's ``ModelBackend``; ``authenticate()`` without a request is not throttled.

    Axes refuses a call without a request (``AxesBackendRequestParameterRequired``). Such calls come
    from code in this process (the test client's ``login()``, a management command), not from the
    network, and have no client address to count against: they go on to the next backend.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ):  # type: ignore[override]
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def login_client_ip(request: HttpRequest) -> str | None:
    """:func:`client_ip`, or None for a request without an address (``Client.force_login``'s)."""
    address = client_ip(request)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address


def retry_after_seconds(request: HttpRequest) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 0


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """``429 login_locked``: JSON for clients that ask for it, else a page; no I/O (rendered inline)."""
    seconds = retry_after_seconds(request)
    minutes = max(1, math.ceil(seconds / 60))
    message = (
        f"Too many failed logins for this username from your address: try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}, or ask an administrator to reset it "
        "(`manage.py axes_reset_username <username>`)."
    )
    status = settings.AXES_HTTP_RESPONSE_CODE
    headers = {"Retry-After": str(seconds)}
    wants_json = "application/json" in request.headers.get("Accept", "") or (
        request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )
    if wants_json:
        body = {"error": {"code": "login_locked", "message": message, "retry_after": seconds}}
        return JsonResponse(body, status=status, headers=headers)
    html = render_to_string("chat/login_locked.html", {"message": message}, request=request)
    return HttpResponse(html, status=status, headers=headers)
