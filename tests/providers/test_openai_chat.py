"""What the Chat Completions adapter puts on the wire (recorded by the fake upstream)."""

from __future__ import annotations

from providers.base import ChatMessage
from tests.providers.conftest import OPENAI_KEY, ask, collect

HISTORY = (ChatMessage("user", "first question"), ChatMessage("assistant", "first answer"))


async def test_openai_chat_sends_system_prompt_then_history_as_messages(make_provider, fake_upstream):
    await make_provider("openai").complete(ask("second question", history=HISTORY, system="You are terse."))

    body = fake_upstream.last_request("/v1/chat/completions").json
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    assert body["model"] == "test-model"


async def test_openai_chat_forwards_temperature_and_max_completion_tokens(make_provider, fake_upstream):
    await make_provider("openai").complete(ask("hi", temperature=0.3, max_tokens=50))

    body = fake_upstream.last_request("/v1/chat/completions").json
    assert body["temperature"] == 0.3
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body


async def test_openai_chat_leaves_unset_sampling_options_to_the_provider(make_provider, fake_upstream):
    await make_provider("openai").complete(ask("hi"))

    body = fake_upstream.last_request("/v1/chat/completions").json
    assert not {"temperature", "max_completion_tokens", "max_tokens", "response_format"} & body.keys()


async def test_openai_chat_streams_with_usage_requested(make_provider, fake_upstream):
    await make_provider("openai").complete(ask("hi"))

    body = fake_upstream.last_request("/v1/chat/completions").json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_openai_chat_json_mode_uses_response_format(make_provider, fake_upstream):
    provider = make_provider("openai")
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}}

    await provider.complete(ask("hi", json_output=True))
    plain = fake_upstream.last_request("/v1/chat/completions").json["response_format"]
    await provider.complete(ask("hi", json_schema=schema))
    with_schema = fake_upstream.last_request("/v1/chat/completions").json["response_format"]

    assert plain == {"type": "json_object"}
    assert with_schema == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


async def test_openai_chat_response_id_is_the_completion_chunk_id(make_provider, fake_upstream):
    chunks = await collect(make_provider("openai"), ask("hi"))

    assert chunks[-1].response_id.startswith("chatcmpl-")
    assert all(c.response_id is None for c in chunks[:-1])


async def test_openai_chat_authenticates_with_a_bearer_key(make_provider, fake_upstream):
    await make_provider("openai").complete(ask("hi"))

    assert (
        fake_upstream.last_request("/v1/chat/completions").headers["authorization"] == f"Bearer {OPENAI_KEY}"
    )
