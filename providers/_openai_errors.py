"""Translation of the ``openai`` SDK's exceptions, shared by the Chat Completions and Responses adapters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import openai

from ._errors import (
    body_message,
    error_for_status,
    redact,
    retry_after_from_headers,
    transport_error,
    unexpected_error,
)
from .base import ProviderError, RateLimited, ResponseIdNotFound, Timeout, Unavailable

PREVIOUS_RESPONSE_NOT_FOUND = "previous_response_not_found"
#: What the SDK says for an in-stream error object that carries no message of its own.
STREAM_ERROR_MESSAGE = "An error occurred during streaming"


def error_from_code(
    provider: str, code: str | None, message: str | None, *, secrets: Iterable[str | None] = ()
) -> ProviderError:
    """An error reported inside a stream (``error`` / ``response.failed`` events) with no HTTP status."""
    code = (code or "").lower()
    if code == PREVIOUS_RESPONSE_NOT_FOUND:
        return ResponseIdNotFound(
            provider, "the provider no longer knows the previous response: resend the history"
        )
    if "rate_limit" in code:
        return RateLimited(
            provider, "rate limited by the provider: wait and retry, or lower the request rate"
        )
    said = f" ({redact(message, secrets)})" if message else ""
    return Unavailable(provider, f"the provider stopped the reply with an error{said}: try again later")


def error_from_stream_payload(
    provider: str, error: object, *, secrets: Iterable[str | None] = ()
) -> ProviderError:
    """The ``error`` member of a ``data: {"error": ...}`` payload inside a Chat Completions stream.

    Mapped exactly as :func:`translate_openai_error` maps the ``openai.APIError`` the SDK's own stream
    raises for it: the code (stringified) and message of the object, or a stock message.
    """
    code: str | None = None
    message: str | None = None
    if isinstance(error, Mapping):
        raw_code = error.get("code")
        code = str(raw_code) if raw_code is not None else None
        if isinstance(error.get("message"), str):
            message = error["message"]
    return error_from_code(provider, code, message or STREAM_ERROR_MESSAGE, secrets=secrets)


def translate_openai_error(
    provider: str, exc: BaseException, *, key_setting: str | None, secrets: Iterable[str | None] = ()
) -> ProviderError:
    """Map any exception raised while calling or reading an ``openai`` stream to the taxonomy."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        if exc.code == PREVIOUS_RESPONSE_NOT_FOUND or (
            exc.status_code in (400, 404) and exc.param == "previous_response_id"
        ):
            return ResponseIdNotFound(
                provider,
                "the provider no longer knows the previous response: resend the history",
                status=exc.status_code,
            )
        message = body_message(exc.body) or (exc.body if isinstance(exc.body, str) else None)
        return error_for_status(
            provider,
            exc.status_code,
            key_setting=key_setting,
            retry_after=retry_after_from_headers(exc.response.headers),
            detail=redact(message, secrets) if message else None,
        )
    mapped = transport_error(provider, exc)
    if mapped is not None:
        return mapped
    if isinstance(exc, openai.APITimeoutError):
        return Timeout(provider, "no answer from the provider in time: try again, or raise LLM_READ_TIMEOUT")
    if isinstance(exc, openai.APIConnectionError):
        return Unavailable(provider, "could not reach the provider: check the base URL, or try again later")
    if isinstance(exc, openai.APIError):  # an error payload inside the stream
        return error_from_code(provider, exc.code, body_message(exc.body) or exc.message, secrets=secrets)
    return unexpected_error(provider, exc)
