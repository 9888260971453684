"""The behaviour every HTTP adapter shares, checked per adapter with its real SDK against the fake upstream."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from providers.base import (
    AuthenticationFailed,
    InvalidRequest,
    RateLimited,
    Timeout,
    Timeouts,
    Unavailable,
)
from tests.fake_upstream import count_words, expected_reply
from tests.providers.conftest import (
    GEMINI_KEY,
    HTTP_ADAPTERS,
    OPENAI_KEY,
    PATHS,
    ZAI_KEY,
    ask,
    collect,
    wait_for_disconnect,
)

pytestmark = pytest.mark.parametrize("kind", HTTP_ADAPTERS)

SHORT_READ = {"timeouts": Timeouts(connect=2.0, read=0.5)}


async def test_streams_the_reply_in_pieces_that_reassemble_exactly(kind, make_provider, fake_upstream):
    text = "Tell me about streams [[chunks=7]]"

    chunks = await collect(make_provider(kind), ask(text))

    pieces = [c.text for c in chunks if c.text]
    assert len(pieces) == 7
    assert "".join(pieces) == expected_reply(text)


async def test_ends_with_usage_finish_reason_and_response_id(kind, make_provider, fake_upstream):
    text = "count my words please [[chunks=4]]"

    result = await make_provider(kind).complete(ask(text, system="Be brief."))

    assert result.text == expected_reply(text)
    assert result.finish_reason == "stop"
    assert result.response_id
    assert result.usage is not None and not result.usage.estimated
    assert (result.usage.input_tokens, result.usage.output_tokens) == (count_words("Be brief.", text), 4)
    assert result.usage.total_tokens == result.usage.input_tokens + 4


async def test_max_tokens_truncation_finishes_with_length(kind, make_provider, fake_upstream):
    result = await make_provider(kind).complete(ask("a long answer [[chunks=6]]", max_tokens=2))

    assert result.finish_reason == "length"
    assert result.usage is not None and result.usage.output_tokens == 2


async def test_json_mode_returns_the_upstream_json_object(kind, make_provider, fake_upstream):
    result = await make_provider(kind).complete(ask("give me json", json_output=True))

    assert json.loads(result.text) == {"echo": "give me json"}


async def test_forwards_configured_and_per_request_extra_headers(kind, make_provider, fake_upstream):
    provider = make_provider(kind, extra_headers={"X-Gateway-Tenant": "acme"})

    await provider.complete(ask("hi", extra_headers={"X-Request-Tag": "turn-42"}))

    headers = fake_upstream.last_request(PATHS[kind]).headers
    assert headers["x-gateway-tenant"] == "acme"
    assert headers["x-request-tag"] == "turn-42"


async def test_maps_429_to_rate_limited_with_retry_after(kind, make_provider, fake_upstream):
    fake_upstream.push_fault("429", retry_after=2)

    with pytest.raises(RateLimited) as caught:
        await make_provider(kind).complete(ask("hi"))

    assert caught.value.retry_after == 2.0
    assert caught.value.status == 429
    assert caught.value.retryable


async def test_maps_401_to_authentication_failed_without_leaking_the_key(kind, make_provider, fake_upstream):
    fake_upstream.push_fault("401")

    with pytest.raises(AuthenticationFailed) as caught:
        await make_provider(kind).complete(ask("hi"))

    message = str(caught.value)
    assert caught.value.provider == kind
    assert "API_KEY" in message or "credentials" in message
    for key in (OPENAI_KEY, GEMINI_KEY, ZAI_KEY):
        assert key not in message


async def test_maps_400_to_invalid_request(kind, make_provider, fake_upstream):
    fake_upstream.push_fault("400")

    with pytest.raises(InvalidRequest) as caught:
        await make_provider(kind).complete(ask("hi"))

    assert caught.value.status == 400


@pytest.mark.parametrize("status", ["500", "503"])
async def test_maps_5xx_to_unavailable(kind, status, make_provider, fake_upstream):
    fake_upstream.push_fault(status)

    with pytest.raises(Unavailable) as caught:
        await make_provider(kind).complete(ask("hi"))

    assert caught.value.status == int(status)


async def test_sdk_does_not_retry_on_its_own(kind, make_provider, fake_upstream):
    fake_upstream.push_fault("503", times=3)

    with pytest.raises(Unavailable):
        await make_provider(kind).complete(ask("hi"))

    assert len(fake_upstream.requests) == 1


async def test_maps_mid_stream_drop_to_unavailable_after_the_partial_text(kind, make_provider, fake_upstream):
    text = "cut me off [[chunks=6 fault=drop:2]]"
    received: list[str] = []

    with pytest.raises(Unavailable):
        async for chunk in make_provider(kind).stream(ask(text)):
            received.append(chunk.text)

    assert received
    assert expected_reply(text).startswith("".join(received))


async def test_maps_connection_refused_to_unavailable(kind, make_provider, closed_port_url):
    with pytest.raises(Unavailable):
        await make_provider(kind, base=closed_port_url).complete(ask("hi"))


async def test_stalled_stream_raises_timeout(kind, make_provider, fake_upstream):
    started = time.monotonic()

    with pytest.raises(Timeout):
        await make_provider(kind, **SHORT_READ).complete(ask("go quiet [[chunks=4 fault=stall:1]]"))

    assert time.monotonic() - started < 3


async def test_hanging_upstream_raises_timeout(kind, make_provider, fake_upstream):
    started = time.monotonic()

    with pytest.raises(Timeout):
        await make_provider(kind, **SHORT_READ).complete(ask("never answer [[fault=hang]]"))

    assert time.monotonic() - started < 3


async def test_closing_the_stream_closes_the_upstream_connection(kind, make_provider, fake_upstream):
    stream = make_provider(kind).stream(ask("a slow answer [[chunks=30 delay=0.2]]"))
    first = await anext(stream)
    assert first.text

    closed_at = time.time()
    await stream.aclose()

    assert await wait_for_disconnect(fake_upstream, closed_at, PATHS[kind], within=1.0)


async def test_cancelling_the_consumer_task_closes_the_upstream_connection(
    kind, make_provider, fake_upstream
):
    provider = make_provider(kind)
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _chunk in provider.stream(ask("a slow answer [[chunks=30 delay=0.2]]")):
            first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), 2)
    cancelled_at = time.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await wait_for_disconnect(fake_upstream, cancelled_at, PATHS[kind], within=1.0)
