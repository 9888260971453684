from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission


class CallerAllowed(BasePermission):
    """An authenticated user (session or API key), the shared API_KEY, or anyone when ALLOW_ANONYMOUS."""

    message = "Send an API key (X-API-Key or Authorization: Bearer), or log in."

    def has_permission(self, request, view) -> bool:
        if request.user is not None and request.user.is_authenticated:
            return True
        if request.auth is not None:  # the shared API_KEY
            return True
        return bool(settings.ALLOW_ANONYMOUS) and not getattr(settings, "API_KEY", "")


def owner_id_of(request) -> int | None:
    user = request.user
    return user.pk if user is not None and user.is_authenticated else None
