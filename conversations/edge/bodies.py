"""Request bodies: JSON objects read within the limits, and typed access to their fields."""

from __future__ import annotations

import re
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from conversations.edge.http_errors import HttpError


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
    refusal = json_refusal(data)
    if refusal is not None:
        raise refusal
    return data


# Deep enough for any request of ours (a JSON schema included); far below what would recurse out
# of Python's stack or orjson's encoder (255 levels) when the value is stored and read back.
MAX_JSON_DEPTH = 64
NUL_MESSAGE = "Strings must not contain NUL (\\u0000) characters: remove them."
SURROGATE_MESSAGE = (
    "Strings must not contain lone UTF-16 surrogates (\\ud800-\\udfff without their pair): "
    "send valid Unicode."
)
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a valid pair decodes to one code point
DEPTH_MESSAGE = f"The JSON nests deeper than {MAX_JSON_DEPTH} levels: flatten it."


def json_refusal(value: Any) -> HttpError | None:
    """Why decoded JSON cannot be taken, or None.

    Nested deeper than :data:`MAX_JSON_DEPTH` (400 ``body_too_deep``); a key or string holding a
    NUL or a lone surrogate (422 ``invalid_input``): PostgreSQL stores neither, in text or in
    JSONB. Walked with a stack of its own, not recursion: any depth a parser hands over is checked
    without exhausting Python's (a recursive walk of an 814-byte body nested 330 deep was a
    RecursionError, a 500 and a 100 kB traceback).
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return HttpError(400, "body_too_deep", DEPTH_MESSAGE)
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            message = _text_problem(item)
            if message is not None:
                return HttpError(422, "invalid_input", message)
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii() and LONE_SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


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
