"""The Chat Completions adapter's own SSE reading (it streams through the SDK's raw-response API).

The contract tests cover what the fake upstream can do; here: the event decoder on awkward byte
boundaries, payloads the fake never sends (errors inside the stream, no ``[DONE]``, no usage), the
exact request body, and the HTTP client (pool size, timeouts, connection reuse after ``[DONE]``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx2
import orjson
import pytest

from providers.asyncio_transport import AsyncioTransport
from providers.base import Provider, RateLimited, Timeouts, Unavailable, Usage
from providers.openai_chat import POOL_LIMITS, SSEDataDecoder
from tests.providers.conftest import OPENAI_KEY, ask, collect

CHAT_KINDS = ("openai", "openai-compatible")


# ---- the event decoder --------------------------------------------------------------------------------


def decode(raw: bytes, *, piece: int) -> list[bytes]:
    decoder = SSEDataDecoder()
    events: list[bytes] = []
    for start in range(0, len(raw), piece):
        events += decoder.feed(raw[start : start + piece])
    return events + decoder.finish()


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1000])
def test_decoder_finds_every_event_whatever_the_line_ends_and_read_sizes(newline, piece):
    raw = newline.join(
        [
            b'data: {"a":1}',
            b"",
            b": keep-alive comment",
            b"",
            b"event: x",
            b'data:{"b":2}',
            b"",
            b"data: [DONE]",
        ]
    )
    raw += newline * 2

    assert decode(raw, piece=piece) == [b'{"a":1}', b'{"b":2}', b"[DONE]"]


def test_decoder_joins_the_data_lines_of_one_event_and_skips_events_without_data():
    raw = b"data: first\ndata:  second\nid: 7\n\nevent: ping\n\nretry: 10\n\ndata: third\n\n"

    assert decode(raw, piece=1000) == [b"first\n second", b"third"]


def test_decoder_returns_an_event_the_stream_ended_without_its_blank_line():
    assert decode(b"data: one\n\ndata: two", piece=4) == [b"one", b"two"]
    assert decode(b"data: one\n\ndata: two\n", piece=4) == [b"one", b"two"]


def test_decoder_keeps_a_crlf_split_across_reads_as_one_line_end():
    decoder = SSEDataDecoder()

    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [b"a\nb"]


@pytest.mark.parametrize("piece", [1, 2, 3])
def test_decoder_reads_a_lf_after_a_crlf_as_a_blank_line(piece):
    assert decode(b"data: a\r\n\ndata: b\r\r", piece=piece) == [b"a", b"b"]


# ---- scripted upstreams (payloads the fake upstream never sends) --------------------------------------


def sse(*payloads: object) -> list[bytes]:
    return [b"data: " + (p if isinstance(p, bytes) else orjson.dumps(p)) + b"\n\n" for p in payloads]


def delta(text: str | None, finish: str | None = None, chunk_id: str = "chatcmpl-x") -> dict:
    content = {} if text is None else {"content": text}
    return {"id": chunk_id, "choices": [{"index": 0, "delta": content, "finish_reason": finish}]}


async def scripted(make_provider: Callable[..., Provider], kind: str, events: list[bytes]) -> Provider:
    """An adapter whose upstream answers every request with ``events``, one network read each."""

    async def body() -> AsyncIterator[bytes]:
        for event in events:
            yield event

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    provider = make_provider(kind)
    sdk_client = provider._client
    provider._client = sdk_client.with_options(
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    )
    await sdk_client.close()
    return provider


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_an_error_object_inside_the_stream_is_mapped_after_the_text_before_it(kind, make_provider):
    error = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    provider = await scripted(make_provider, kind, sse(delta("Hel"), delta("lo"), error, delta("never")))
    received: list[str] = []

    with pytest.raises(RateLimited):
        async for chunk in provider.stream(ask("hi")):
            received.append(chunk.text)

    assert received == ["Hel", "lo"]


async def test_an_in_stream_error_quotes_the_upstream_message_without_the_key(make_provider):
    error = {"error": {"message": f"server overloaded for key {OPENAI_KEY}", "code": "server_error"}}
    provider = await scripted(make_provider, "openai", sse(delta("a"), error))

    with pytest.raises(Unavailable) as caught:
        await provider.complete(ask("hi"))

    assert "server overloaded" in str(caught.value)
    assert OPENAI_KEY not in str(caught.value)


@pytest.mark.parametrize("error", ["boom", {"code": 500}, {"message": ""}])
async def test_an_in_stream_error_without_a_message_gets_the_stock_one(error, make_provider):
    provider = await scripted(make_provider, "openai", sse({"error": error}))

    with pytest.raises(Unavailable, match="An error occurred during streaming"):
        await provider.complete(ask("hi"))


async def test_a_null_error_member_is_not_an_error(make_provider):
    provider = await scripted(make_provider, "openai", sse({**delta("ok", "stop"), "error": None}, b"[DONE]"))

    assert (await provider.complete(ask("hi"))).text == "ok"


async def test_usage_only_chunk_with_empty_choices_supplies_usage_and_id(make_provider):
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    events = sse(
        delta("a"),
        delta("b"),
        delta(None, "length"),
        {"id": "chatcmpl-x", "choices": [], "usage": usage},
        b"[DONE]",
    )
    provider = await scripted(make_provider, "openai", events)

    chunks = await collect(provider, ask("hi"))

    assert [c.text for c in chunks[:-1]] == ["a", "b"]
    assert chunks[-1].usage == Usage(3, 2, 5)
    assert (chunks[-1].finish_reason, chunks[-1].response_id) == ("length", "chatcmpl-x")


async def test_null_usage_details_are_recorded_as_not_reported(make_provider):
    usage = {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "prompt_tokens_details": None,  # as some OpenAI-compatible servers send it
        "completion_tokens_details": {"reasoning_tokens": None},
    }
    events = sse(delta("a", "stop"), {"id": "chatcmpl-x", "choices": [], "usage": usage}, b"[DONE]")
    provider = await scripted(make_provider, "openai-compatible", events)

    assert (await provider.complete(ask("hi"))).usage == Usage(3, 2, 5)


async def test_a_stream_that_ends_without_done_or_usage_still_finishes(make_provider):
    provider = await scripted(make_provider, "openai-compatible", sse(delta("a"), delta("b", "stop")))

    result = await provider.complete(ask("hi"))

    assert (result.text, result.finish_reason, result.usage) == ("ab", "stop", None)


async def test_nothing_after_done_is_read_as_the_reply(make_provider):
    provider = await scripted(make_provider, "openai", sse(delta("a", "stop"), b"[DONE]", delta("late")))

    assert (await provider.complete(ask("hi"))).text == "a"


async def test_a_payload_that_is_not_json_is_unavailable(make_provider):
    provider = await scripted(make_provider, "openai", sse(delta("a"), b"{not json"))

    with pytest.raises(Unavailable):
        await provider.complete(ask("hi"))


# ---- against the fake upstream ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_the_request_body_is_exactly_the_chat_completions_body(kind, make_provider, fake_upstream):
    await make_provider(kind).complete(ask("hi", system="Be brief.", temperature=0.5, max_tokens=9))

    cap = "max_completion_tokens" if kind == "openai" else "max_tokens"
    assert fake_upstream.last_request("/v1/chat/completions").json == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        cap: 9,
    }


@pytest.mark.parametrize("transport", ["asyncio", "httpx"])
async def test_the_connection_is_reused_after_a_complete_stream(transport, make_provider, fake_upstream):
    provider = make_provider("openai", http_transport=transport)
    streams: list[object] = []

    async def note(response: httpx2.Response) -> None:
        streams.append(response.extensions["network_stream"])

    provider._client._client.event_hooks["response"].append(note)

    for _ in range(3):
        await provider.complete(ask("hi [[chunks=3]]"))

    assert len(streams) == 3
    assert streams[0] is streams[1] is streams[2]


def test_the_http_client_has_a_large_pool_and_our_timeouts(make_provider):
    provider = make_provider("openai", timeouts=Timeouts(connect=3.0, read=7.0), http_transport="httpx")
    http_client = provider._client._client
    pool = http_client._transport._pool

    assert isinstance(http_client, httpx2.AsyncClient)
    assert pool._max_connections == POOL_LIMITS.max_connections > 1000
    assert pool._max_keepalive_connections == POOL_LIMITS.max_keepalive_connections > 100
    assert provider._client.timeout == httpx2.Timeout(7.0, connect=3.0)
    assert http_client.timeout == httpx2.Timeout(7.0, connect=3.0)


def test_the_default_transport_is_ours_with_the_same_keepalive_cap_and_our_timeouts(make_provider):
    provider = make_provider("openai", timeouts=Timeouts(connect=3.0, read=7.0))
    http_client = provider._client._client

    assert isinstance(http_client._transport, AsyncioTransport)
    assert http_client._transport._max_keepalive == POOL_LIMITS.max_keepalive_connections > 100
    assert provider._client.timeout == httpx2.Timeout(7.0, connect=3.0)
    assert http_client.timeout == httpx2.Timeout(7.0, connect=3.0)
