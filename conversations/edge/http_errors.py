"""Errors over HTTP: ``{"error": {"code", "message", ...}}`` with the right status and ``Retry-After``."""

from __future__ import annotations

from typing import Any, Protocol

from django.http import JsonResponse


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """``{"error": {"code", "message", ...}}``, details that are ``None`` left out."""
    return {
        "error": {"code": code, "message": message, **{k: v for k, v in details.items() if v is not None}}
    }


def json_error(
    status: int, code: str, message: str, *, headers: dict | None = None, **details: Any
) -> JsonResponse:
    return JsonResponse(error_body(code, message, **details), status=status, headers=headers)


# HTTP status of a turn that failed after it was accepted (JSON, non-streamed endpoints).
FAILED_TURN_STATUS = {"rate_limited": 429, "provider_timeout": 504, "provider_auth_failed": 502}


def failed_turn_status(code: str) -> int:
    return FAILED_TURN_STATUS.get(code, 502)


def retry_after_headers(seconds: float | None) -> dict[str, str] | None:
    """``Retry-After`` in whole seconds (at least 1), or None when there is nothing to wait for."""
    return {"Retry-After": str(max(1, round(float(seconds))))} if seconds else None


class Refusal(Protocol):
    """What an error response is made of: an HttpError, or a domain error that carries the same
    (``conversations.errors.TurnRejected``; this kit imports nothing of the app)."""

    status: int
    code: str
    message: str
    details: dict[str, Any]


def error_response(exc: Refusal) -> JsonResponse:
    headers = retry_after_headers(exc.details.get("retry_after"))
    return json_error(exc.status, exc.code, exc.message, headers=headers, **exc.details)
