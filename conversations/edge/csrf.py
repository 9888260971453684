"""CSRF for session-authenticated calls, checked by Django's own middleware rules."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware

from conversations.edge.http_errors import HttpError


def _reject(request: HttpRequest, reason: str) -> HttpResponse:
    raise HttpError(403, "csrf_failed", f"CSRF check failed ({reason}): send the X-CSRFToken header.")


def enforce_csrf(request: HttpRequest) -> None:
    """Session-authenticated requests must carry the CSRF token (as DRF does); API clients need not."""

    class _Check(CsrfViewMiddleware):
        def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:  # type: ignore[override]
            return _reject(request, reason)

    check = _Check(lambda req: HttpResponse())
    check.process_request(request)
    check.process_view(request, lambda req: HttpResponse(), (), {})
