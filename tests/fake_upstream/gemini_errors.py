"""Google's RPC error body, as the Gemini API and its Files API answer errors."""

from __future__ import annotations

from typing import Any

from .scenario import DEFAULT_RETRY_AFTER

GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def gemini_error(status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
    """Google RPC error body; a 429 carries a ``RetryInfo`` detail like the real API."""
    details: list[dict[str, Any]] = []
    if status == 429:
        delay = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay:g}s"})
    return {
        "error": {
            "code": status,
            "message": message,
            "status": GEMINI_STATUS.get(status, "UNKNOWN"),
            "details": details,
        }
    }
