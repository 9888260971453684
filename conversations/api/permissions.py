from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission

from conversations.errors import TurnRejected


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


def require_owner(request, what: str) -> int:
    """Lists, search and export need an owner: callers without one (anonymous use, the shared
    ``API_KEY``) reach a session only by its exact key, so no caller can enumerate another's."""
    owner_id = owner_id_of(request)
    if owner_id is None:
        raise TurnRejected(
            f"{what} needs an account: send a personal API key (created with `manage.py apikey create`) "
            "or log in. Without one, a session is reachable only by its exact key.",
            code="owner_required",
            status=403,
        )
    return owner_id
