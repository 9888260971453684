"""Django's deployment checklist, seeing the middleware that is really installed.

Django's security checks look for its middleware by dotted path (``"django.middleware.csrf.
CsrfViewMiddleware" in MIDDLEWARE``). ``chatproject.middleware`` holds subclasses of them (no
thread hop per hook), so Django reports W001-W003 wrongly and, worse, skips every check that
depends on that middleware (HSTS, SSL redirect, nosniff, referrer and opener policies, X-Frame
DENY, the CSRF cookie). Its W001-W003 are silenced in settings; here those same checks run again
against MIDDLEWARE with each subclass written as the Django class it extends, so each protection
is checked (and a missing one still fails: ``chatproject.security.W001``-``W003``). django-axes
looks for its middleware the same way (``axes.W002``, silenced too): ``chatproject.axes.W002``.
"""

from __future__ import annotations

from typing import Any

from axes.checks import axes_middleware_check
from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks.security import base, csrf
from django.test.utils import override_settings
from django.utils.module_loading import import_string

DJANGO_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "axes.middleware.AxesMiddleware",
)
MIDDLEWARE_CHECKS = (
    base.check_security_middleware,
    base.check_xframe_options_middleware,
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_xframe_deny,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_middleware,
    csrf.check_csrf_cookie_secure,
    axes_middleware_check,
)
SILENCED_BY_SETTINGS = ("security.W001", "security.W002", "security.W003", "axes.W002")


def as_django_paths(middleware: list[str]) -> list[str]:
    """MIDDLEWARE with each subclass of Django's (or axes') middleware written as the class it extends."""
    named = []
    for path in middleware:
        cls = import_string(path)
        named.append(
            next(
                (base_path for base_path in DJANGO_MIDDLEWARE if issubclass(cls, import_string(base_path))),
                path,
            )
        )
    return named


@register(Tags.security, deploy=True)
def check_installed_security_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    with override_settings(MIDDLEWARE=as_django_paths(list(settings.MIDDLEWARE))):
        messages = [message for check in MIDDLEWARE_CHECKS for message in check(app_configs)]
    for message in messages:
        if message.id in SILENCED_BY_SETTINGS:
            message.id = f"chatproject.{message.id}"
    return messages


@register(Tags.security, deploy=True)
def check_turn_timing_off(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The turn stage clock (``TURN_TIMING=1``) is the waterfall bench's: it serves the timing of
    every turn, unauthenticated, at ``/_turn_timing``."""
    from django.core.checks import Warning as CheckWarning

    from conversations.telemetry import stages

    if not stages.on:
        return []
    return [
        CheckWarning(
            "TURN_TIMING is on: every turn's stage timings are served at /_turn_timing to anyone.",
            hint="Unset TURN_TIMING: it is for bench/waterfall.py only.",
            id="chatproject.W010",
        )
    ]
