"""The OpenAI-compatible adapter: any Chat Completions server, key optional."""

from __future__ import annotations

from tests.providers.conftest import ask


async def test_openai_compatible_sends_a_placeholder_key_when_none_is_configured(
    make_provider, fake_upstream
):
    result = await make_provider("openai-compatible").complete(ask("hi"))

    assert result.text == "Echo: hi"
    assert fake_upstream.last_request("/v1/chat/completions").headers["authorization"] == "Bearer not-needed"


async def test_openai_compatible_sends_a_configured_key(make_provider, fake_upstream):
    await make_provider("openai-compatible", api_key="local-secret").complete(ask("hi"))

    assert (
        fake_upstream.last_request("/v1/chat/completions").headers["authorization"] == "Bearer local-secret"
    )


async def test_openai_compatible_caps_output_with_max_tokens(make_provider, fake_upstream):
    await make_provider("openai-compatible").complete(ask("hi", max_tokens=64))

    body = fake_upstream.last_request("/v1/chat/completions").json
    assert body["max_tokens"] == 64
    assert "max_completion_tokens" not in body
