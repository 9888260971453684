"""JSON error pages for API clients (Django's defaults are HTML)."""

from __future__ import annotations

import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.views.defaults import page_not_found, server_error

from conversations.db_errors import DATABASE_DOWN, DATABASE_RETRY_AFTER_SECONDS, database_problem
from conversations.edge.http_errors import json_error, retry_after_headers

logger = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/", "/compat/", "/health", "/agent")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES) or "application/json" in request.headers.get("Accept", "")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"error": {"code": "not_found", "message": "No such endpoint or object."}}, status=404
        )
    return page_not_found(request, exception)


class DebugApiNotFoundMiddleware:
    """Under ``DEBUG`` (only: settings add it then), an API path that matches no route answers the
    API's JSON 404 like production does, instead of Django's HTML debug page (which ignores
    ``handler404``). Runs inline on either stack: it only looks at the response."""

    sync_capable = async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _json(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        html = response.get("Content-Type", "").startswith("text/html")
        if response.status_code == 404 and html and request.path.startswith(API_PREFIXES):
            return not_found(request)
        return response

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._json(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._json(request, await self.get_response(request))


def internal_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        body = {"error": {"code": "internal_error", "message": "The server failed; the error was logged."}}
        return JsonResponse(body, status=500)
    return server_error(request)


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """The database unreachable (restarting, failing over): ``503 database_unavailable``, not a 500;
    SQLite's writer lock held past its busy timeout: ``503 database_busy``.

    The client may retry (``Retry-After``): a turn refused so stored nothing. The server
    reconnects by itself on a later request.
    """

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_DOWN) or not _wants_json(request):
            return None
        code, message = database_problem(exception)
        logger.warning("%s for %s (%s)", code, request.path, type(exception).__name__)
        return json_error(
            503,
            code,
            message,
            headers=retry_after_headers(DATABASE_RETRY_AFTER_SECONDS),
            retry_after=DATABASE_RETRY_AFTER_SECONDS,
        )
