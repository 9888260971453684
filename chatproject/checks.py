"""Django's own deploy checks look for its middleware by dotted path; ``chatproject.middleware``
holds subclasses of them (no thread hop per hook), which Django's W001 to W003 cannot see. These are
silenced in settings and checked here instead: each must be in MIDDLEWARE, itself or a subclass."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.utils.module_loading import import_string

REQUIRED = {
    "security.W001": "django.middleware.security.SecurityMiddleware",
    "security.W002": "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "security.W003": "django.middleware.csrf.CsrfViewMiddleware",
}


@register(Tags.security, deploy=True)
def check_security_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    installed = [import_string(path) for path in settings.MIDDLEWARE]
    messages: list[CheckMessage] = []
    for django_id, path in REQUIRED.items():
        required = import_string(path)
        if not any(isinstance(cls, type) and issubclass(cls, required) for cls in installed):
            messages.append(
                Warning(f"{path} (or a subclass) is not in MIDDLEWARE.", id=f"chatproject.{django_id}")
            )
    return messages
