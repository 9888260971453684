"""JSON error pages for API clients (Django's defaults are HTML)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error

API_PREFIXES = ("/api/", "/v1/", "/compat/", "/health", "/agent")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES) or "application/json" in request.headers.get("Accept", "")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"error": {"code": "not_found", "message": "No such endpoint or object."}}, status=404
        )
    return page_not_found(request, exception)


def internal_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        body = {"error": {"code": "internal_error", "message": "The server failed; the error was logged."}}
        return JsonResponse(body, status=500)
    return server_error(request)
