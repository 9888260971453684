"""CORS per seed mount: ``COMPAT_<NAME>_ORIGINS`` (004: also ``CORS_ORIGINS``) let browser pages
on those origins call that mount only, never with credentials (``CORS_ALLOW_CREDENTIALS`` stays
off), and are never CSRF-trusted or WebSocket origins. ``*`` allows any origin on that mount."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import Resolver404

from conversations.dialects.mount_settings import dialect_variable
from conversations.dialects.urls import DIALECTS, dialect_urlpatterns


def mount_of_path(path: str) -> str | None:
    """The dialect serving ``path``: ``/compat/<name>/…``, or the root-mounted dialect's paths."""
    if path.startswith("/compat/"):
        name = path[len("/compat/") :].partition("/")[0]
        return name if name in DIALECTS else None
    root = getattr(settings, "COMPAT_ROOT_DIALECT", "")
    if root in DIALECTS:
        for pattern in dialect_urlpatterns(root):
            try:
                if pattern.resolve(path.lstrip("/")):
                    return root
            except Resolver404:
                continue
    return None


def mount_origin_allowed(sender: object, request: HttpRequest, **kwargs: object) -> bool:
    """django-cors-headers' ``check_request_enabled`` receiver."""
    dialect = mount_of_path(request.path_info)
    if dialect is None:
        return False
    origins = getattr(settings, dialect_variable(dialect, "ORIGINS"), [])
    return "*" in origins or request.headers.get("Origin", "").rstrip("/") in origins
