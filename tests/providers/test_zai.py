"""The Z.AI adapter: request shape, temperature pass-through, and a sync SDK kept off the event loop."""

from __future__ import annotations

import asyncio

import pytest

from providers.base import ChatMessage
from tests.providers.conftest import ZAI_KEY, ask

PATH = "/api/paas/v4/chat/completions"


async def test_zai_sends_system_prompt_then_history_as_messages(make_provider, fake_upstream):
    history = (ChatMessage("user", "first question"), ChatMessage("assistant", "first answer"))

    await make_provider("zai").complete(ask("second question", history=history, system="Be terse."))

    body = fake_upstream.last_request(PATH).json
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    assert body["stream"] is True


@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0])
async def test_zai_passes_temperature_through_unchanged(temperature, make_provider, fake_upstream):
    await make_provider("zai").complete(ask("hi", temperature=temperature))

    body = fake_upstream.last_request(PATH).json
    assert body["temperature"] == temperature
    assert "do_sample" not in body


async def test_zai_forwards_max_tokens_and_json_mode(make_provider, fake_upstream):
    await make_provider("zai").complete(ask("hi", max_tokens=25, json_output=True))

    body = fake_upstream.last_request(PATH).json
    assert body["max_tokens"] == 25
    assert body["response_format"] == {"type": "json_object"}


async def test_zai_authenticates_with_the_plain_key_as_bearer(make_provider, fake_upstream):
    await make_provider("zai").complete(ask("hi"))

    assert fake_upstream.last_request(PATH).headers["authorization"] == f"Bearer {ZAI_KEY}"


async def test_zai_stream_keeps_the_event_loop_free(make_provider, fake_upstream):
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        result = await make_provider("zai").complete(ask("slow start [[first_byte=0.3 chunks=3 delay=0.05]]"))
    finally:
        ticker.cancel()

    assert result.text == "Echo: slow start"
    assert ticks >= 20  # ~0.4 s of waiting on the upstream, the loop kept running
