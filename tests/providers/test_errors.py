"""The shared error translation (retry-after, status mapping, redaction) and the usage estimate."""

from __future__ import annotations

import email.utils
import time

import pytest

from providers._errors import error_for_status, redact, retry_after_from_headers
from providers.base import (
    AuthenticationFailed,
    ChatMessage,
    InvalidRequest,
    ProviderRequest,
    RateLimited,
    Timeout,
    Unavailable,
    Usage,
    estimate_usage,
)


def test_retry_after_reads_seconds():
    assert retry_after_from_headers({"Retry-After": "3"}) == 3.0


def test_retry_after_prefers_milliseconds():
    assert retry_after_from_headers({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_retry_after_reads_an_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)

    assert 28 <= retry_after_from_headers({"retry-after": when}) <= 30


def test_retry_after_ignores_missing_or_garbage_values():
    assert retry_after_from_headers({}) is None
    assert retry_after_from_headers({"retry-after": "soon"}) is None


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RateLimited),
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (400, InvalidRequest),
        (404, InvalidRequest),
        (422, InvalidRequest),
        (408, Timeout),
        (500, Unavailable),
        (502, Unavailable),
        (503, Unavailable),
    ],
)
def test_status_maps_to_the_taxonomy(status, error):
    assert type(error_for_status("openai", status, key_setting="OPENAI_API_KEY")) is error


def test_auth_error_names_the_setting_to_fix():
    assert "check OPENAI_API_KEY" in str(error_for_status("openai", 401, key_setting="OPENAI_API_KEY"))


def test_redact_removes_keys_and_bearer_tokens():
    text = redact("bad key sk-abcdef123456 and Bearer abc.def sent with my-own-secret", ["my-own-secret"])

    assert "sk-abcdef123456" not in text and "abc.def" not in text and "my-own-secret" not in text


def test_redact_truncates_long_upstream_messages():
    assert len(redact("x" * 1000)) <= 200


def test_estimate_usage_counts_about_four_characters_per_token_and_says_so():
    request = ProviderRequest(model="m", messages=(ChatMessage("user", "x" * 10),), system="y" * 8)

    usage = estimate_usage(request, "z" * 5)

    assert usage == Usage(input_tokens=5, output_tokens=2, total_tokens=7, estimated=True)
