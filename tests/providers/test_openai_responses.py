"""The Responses API adapter: request shape and ``previous_response_id`` chaining."""

from __future__ import annotations

import orjson
import pytest

from providers.base import ChatMessage, InvalidRequest, RateLimited, ResponseIdNotFound, Unavailable, Usage
from providers.openai_responses import OpenAIResponsesProvider
from tests.fake_upstream import count_words
from tests.providers.conftest import OPENAI_KEY, ask
from tests.providers.test_openai_raw_stream import scripted


async def test_responses_sends_system_prompt_as_instructions_and_history_as_input(
    make_provider, fake_upstream
):
    history = (ChatMessage("user", "first question"), ChatMessage("assistant", "first answer"))

    await make_provider("openai-responses").complete(
        ask("second question", history=history, system="Be terse.")
    )

    body = fake_upstream.last_request("/v1/responses").json
    assert body["instructions"] == "Be terse."
    assert body["input"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    assert "previous_response_id" not in body


async def test_responses_forwards_temperature_and_max_output_tokens(make_provider, fake_upstream):
    await make_provider("openai-responses").complete(ask("hi", temperature=0.2, max_tokens=40))

    body = fake_upstream.last_request("/v1/responses").json
    assert (body["temperature"], body["max_output_tokens"]) == (0.2, 40)


async def test_responses_json_mode_uses_text_format(make_provider, fake_upstream):
    provider = make_provider("openai-responses")
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}}

    await provider.complete(ask("hi", json_output=True))
    plain = fake_upstream.last_request("/v1/responses").json["text"]
    await provider.complete(ask("hi", json_schema=schema))
    with_schema = fake_upstream.last_request("/v1/responses").json["text"]

    assert plain == {"format": {"type": "json_object"}}
    assert with_schema == {"format": {"type": "json_schema", "name": "response", "schema": schema}}


async def test_responses_chains_with_previous_response_id_sending_only_the_new_message(
    make_provider, fake_upstream
):
    provider = make_provider("openai-responses")
    assert provider.supports_response_chaining
    first = await provider.complete(ask("what is a stream", system="Be terse."))
    history = (ChatMessage("user", "what is a stream"), ChatMessage("assistant", first.text))

    second = await provider.complete(
        ask("and a queue", history=history, system="Be terse.", previous_response_id=first.response_id)
    )

    body = fake_upstream.last_request("/v1/responses").json
    assert first.response_id.startswith("resp_")
    assert body["previous_response_id"] == first.response_id
    assert body["input"] == [{"role": "user", "content": "and a queue"}]
    assert body["instructions"] == "Be terse."
    assert second.text == "Echo: and a queue"
    assert second.response_id not in (None, first.response_id)
    # the upstream counted the stored conversation as input: the chain really was used
    assert second.usage.input_tokens == count_words(
        "Be terse.", "what is a stream", first.text, "and a queue"
    )


async def test_responses_unknown_previous_response_id_raises_response_id_not_found(
    make_provider, fake_upstream
):
    request = ask(
        "hello again",
        history=(ChatMessage("user", "hi"), ChatMessage("assistant", "Echo: hi")),
        previous_response_id="resp_forgotten",
    )

    with pytest.raises(ResponseIdNotFound) as caught:
        await make_provider("openai-responses").complete(request)

    assert isinstance(caught.value, InvalidRequest)
    assert caught.value.code == "previous_response_not_found"
    assert not caught.value.retryable


def test_responses_chaining_is_a_declared_capability():
    assert OpenAIResponsesProvider.supports_response_chaining is True


def responses_sse(*events: dict) -> list[bytes]:
    return [b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events]


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (
            {
                "type": "response.failed",
                "response": {"id": "resp_1", "error": {"code": "rate_limit_exceeded"}},
            },
            RateLimited,
        ),
        ({"type": "error", "code": "server_error", "message": f"overloaded for {OPENAI_KEY}"}, Unavailable),
    ],
)
async def test_a_failure_event_after_some_text_is_mapped_after_the_text(failure, raised, make_provider):
    events = responses_sse(
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_text.delta", "delta": "Hel"},
        {"type": "response.output_text.delta", "delta": "lo"},
        failure,
        {"type": "response.output_text.delta", "delta": "never"},
    )
    provider = await scripted(make_provider, "openai-responses", events)
    received: list[str] = []

    with pytest.raises(raised) as caught:
        async for chunk in provider.stream(ask("hi")):
            received.append(chunk.text)

    assert received == ["Hel", "lo"]
    assert OPENAI_KEY not in str(caught.value)


async def test_usage_finish_and_id_come_from_the_final_event(make_provider):
    events = [
        *responses_sse(
            {"type": "response.created", "response": {"id": "resp_9"}},
            {"type": "response.output_text.delta", "delta": "Hi"},
            {
                "type": "response.incomplete",
                "response": {
                    "id": "resp_9",
                    "usage": {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9},
                    "incomplete_details": {"reason": "max_output_tokens"},
                },
            },
        ),
        b"data: [DONE]\n\n",
    ]
    provider = await scripted(make_provider, "openai-responses", events)

    chunks = [chunk async for chunk in provider.stream(ask("hi"))]

    assert [c.text for c in chunks if c.text] == ["Hi"]
    last = chunks[-1]
    assert (last.usage, last.finish_reason, last.response_id) == (Usage(7, 2, 9), "length", "resp_9")
