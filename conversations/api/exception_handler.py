"""DRF errors in the project's shape: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from conversations.errors import TurnRejected

CODES = {
    exceptions.NotAuthenticated: "authentication_required",
    exceptions.AuthenticationFailed: "invalid_api_key",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.ParseError: "malformed_json",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_input",
}


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()), ("", ""))
        return (
            f"{field}: {_message(value)}" if field not in ("detail", "non_field_errors") else _message(value)
        )
    if isinstance(detail, list):
        return _message(detail[0]) if detail else "invalid input"
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, TurnRejected):
        return Response(
            {"error": {"code": exc.code, "message": exc.message, **exc.details}}, status=exc.status
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "error_code", None) or next(
        (c for kind, c in CODES.items() if isinstance(exc, kind)), "error"
    )
    if isinstance(exc, exceptions.AuthenticationFailed) and response.status_code == status.HTTP_403_FORBIDDEN:
        response.status_code = status.HTTP_401_UNAUTHORIZED
    if isinstance(exc, exceptions.NotAuthenticated):
        response.status_code = status.HTTP_401_UNAUTHORIZED
    body: dict[str, Any] = {"code": code, "message": _message(response.data)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict | list):
        body["details"] = response.data
    response.data = {"error": body}
    return response
