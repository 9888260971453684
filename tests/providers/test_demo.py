"""The offline demo provider: deterministic, self-describing, streamed, cancellable."""

from __future__ import annotations

import asyncio
import json
import re
import time

from providers.base import ChatMessage, ProviderRequest
from providers.demo import DemoProvider


def question(text: str, **fields: object) -> ProviderRequest:
    return ProviderRequest(
        model="demo",
        messages=(ChatMessage("user", "earlier"), ChatMessage("assistant", "ok"), ChatMessage("user", text)),
        **fields,
    )


async def test_demo_says_it_is_the_offline_demo_and_how_to_configure_a_real_provider():
    result = await DemoProvider(delay=0).complete(question("What is Django?"))

    assert "offline demo provider" in result.text
    assert "LLM_PROVIDER" in result.text and "GEMINI_API_KEY" in result.text


async def test_demo_echoes_the_last_user_question():
    result = await DemoProvider(delay=0).complete(question("What is Django?"))

    assert "> What is Django?" in result.text
    assert "earlier" not in result.text


async def test_demo_reply_contains_a_python_code_block():
    result = await DemoProvider(delay=0).complete(question("show me code"))

    assert re.search(r"```python\n.+?\n```", result.text, re.DOTALL)


async def test_demo_streams_word_sized_pieces():
    chunks = [c async for c in DemoProvider(delay=0).stream(question("hello"))]

    pieces = [c.text for c in chunks if c.text]
    assert len(pieces) > 20
    assert all(len(p.split()) <= 1 for p in pieces)


async def test_demo_is_deterministic():
    provider = DemoProvider(delay=0)

    first, second = await provider.complete(question("same")), await provider.complete(question("same"))

    assert first.text == second.text


async def test_demo_reports_estimated_word_count_usage_stop_and_a_demo_response_id():
    result = await DemoProvider(delay=0).complete(question("count these words", system="be nice"))

    assert result.finish_reason == "stop"
    assert re.fullmatch(r"demo-[0-9a-f-]{36}", result.response_id)
    assert result.usage.estimated
    assert result.usage.input_tokens == len(["be", "nice", "earlier", "ok", "count", "these", "words"])
    assert result.usage.output_tokens == len(result.text.split())
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens


async def test_demo_json_mode_returns_a_json_object():
    result = await DemoProvider(delay=0).complete(question("as json please", json_output=True))

    data = json.loads(result.text)
    assert data["echo"] == "as json please"
    assert data["provider"] == "demo"


async def test_demo_honours_max_tokens_with_length():
    result = await DemoProvider(delay=0).complete(question("hi", max_tokens=3))

    assert result.finish_reason == "length"
    assert result.usage.output_tokens == 3


async def test_demo_streams_with_the_configured_delay():
    started = time.monotonic()
    await DemoProvider(delay=0.01).complete(question("hi", max_tokens=10))

    assert time.monotonic() - started >= 0.09


async def test_demo_stops_when_the_consumer_is_cancelled():
    provider = DemoProvider(delay=0.05)
    received: list[str] = []

    async def consume() -> None:
        async for chunk in provider.stream(question("hi")):
            received.append(chunk.text)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    count = len(received)
    await asyncio.sleep(0.1)

    assert 1 <= count <= 4
    assert len(received) == count
