"""Request bodies: JSON objects read within the limits, and typed access to their fields."""

from __future__ import annotations

from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from conversations.edge.errors import HttpError


def read_json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or an HttpError (415, 413, 400) that says what to send."""
    content_type = request.content_type or ""
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise HttpError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type or '(none)'} is not supported: send JSON with Content-Type: application/json.",
        )
    try:
        raw = request.body
    except RequestDataTooBig:
        raise HttpError(413, "payload_too_large", "The request body is too large.") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"The body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise HttpError(400, "malformed_json", "The body must be a JSON object.")
    return data


NUL_MESSAGE = "Strings must not contain NUL (\\u0000) characters: remove them."


def has_nul(value: Any) -> bool:
    """True when a NUL character hides anywhere in decoded JSON (PostgreSQL cannot store one)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


class Field:
    """Typed access to a decoded JSON body, raising 422 errors that name the field."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _bad(self, name: str, expected: str) -> HttpError:
        return HttpError(422, "invalid_input", f"{name} must be {expected}.", field=name)

    def str(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.data.get(name, default)
        if value is None:
            if required:
                raise HttpError(422, "invalid_input", f"{name} is required.", field=name)
            return None
        if not isinstance(value, str):
            raise self._bad(name, "a string")
        return value

    def number(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(name, "a number")
        return float(value)

    def int(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(name, "a whole number")
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._bad(name, "true or false")
        return value

    def object(self, name: str) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._bad(name, "a JSON object")
        return value
