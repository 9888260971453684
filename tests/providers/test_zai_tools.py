"""Client tools through the Z.AI adapter: the request pieces it sends, whole calls (each chunk already
marked ``tool_calls``) and ``tool_stream`` fragments read back, the history replayed, and the
``tool_choice`` values Z.AI cannot honour (real zai-sdk, real HTTP, the fake upstream's Z.AI wire)."""

from __future__ import annotations

import json
import re

import pytest
from zai import ZaiClient
from zai.core import _errors as zai_errors

from providers.base import (
    ChatMessage,
    ProviderChunk,
    ProviderRequest,
    ToolCall,
    ToolCallAssembler,
    ToolResult,
    ToolSpec,
    Unavailable,
)
from providers.zai import ZaiProvider
from providers.zai_tools import streams_tool_arguments
from tests.fake_upstream import expected_reply, expected_tool_arguments, expected_tool_reply
from tests.providers.conftest import ZAI_KEY, ask, collect

PATH = "/api/paas/v4/chat/completions"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
    "required": ["city"],
}
WEATHER = ToolSpec("weather", "Current weather in a city", WEATHER_SCHEMA)
CLOCK_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string"}}}
CLOCK = ToolSpec("clock", parameters=CLOCK_SCHEMA)
TOOLS = (WEATHER, CLOCK)
WHOLE = "glm-4.5"  # calls come whole
STREAMED = "glm-4.6"  # tool_stream: argument fragments
ZAI_ID = re.compile(r"^call_-\d{19}$")


def assembled(chunks: list[ProviderChunk]) -> tuple[ToolCall, ...]:
    calls = ToolCallAssembler()
    for chunk in chunks:
        calls.add(chunk.tool_calls)
    return calls.calls()


def sent(fake_upstream) -> dict:
    return fake_upstream.last_request(PATH).json


# ---- what goes on the wire ------------------------------------------------------------------------


async def test_tools_go_in_the_chat_shape_with_auto_and_never_a_parallel_flag(make_provider, fake_upstream):
    strict = ToolSpec("strict_one", parameters=CLOCK_SCHEMA, strict=False)
    await make_provider("zai").complete(
        ask("Rome", tools=(WEATHER, strict), tool_choice="auto", parallel_tool_calls=False, model=WHOLE)
    )

    body = sent(fake_upstream)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Current weather in a city",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {"type": "function", "function": {"name": "strict_one", "parameters": CLOCK_SCHEMA, "strict": False}},
    ]
    assert body["tool_choice"] == "auto"
    assert "parallel_tool_calls" not in body and "tool_stream" not in body


async def test_without_a_tool_choice_none_is_sent(make_provider, fake_upstream):
    await make_provider("zai").complete(ask("Rome", tools=TOOLS))

    assert "tool_choice" not in sent(fake_upstream) and len(sent(fake_upstream)["tools"]) == 2


@pytest.mark.parametrize(
    ("model", "streams"),
    [
        ("glm-4.5", False),
        ("glm-4.5-air", False),
        ("glm-4.6", True),
        ("glm-4.6v", False),
        ("glm-4.7-flash", True),
        ("glm-5", True),
        ("glm-5.1", True),
        ("GLM-4.6", True),
    ],
)
async def test_tool_stream_is_sent_for_the_models_that_stream_arguments(
    model, streams, make_provider, fake_upstream
):
    await make_provider("zai").complete(ask("Rome", tools=TOOLS, model=model))

    assert streams_tool_arguments(model) is streams
    assert sent(fake_upstream).get("tool_stream") is (True if streams else None)


async def test_tool_choice_none_offers_no_tools(make_provider, fake_upstream):
    result = await make_provider("zai").complete(ask("Rome", tools=TOOLS, tool_choice="none", model=STREAMED))

    body = sent(fake_upstream)
    assert not {"tools", "tool_choice", "tool_stream"} & body.keys()
    assert (result.text, result.tool_calls, result.finish_reason) == (expected_reply("Rome"), (), "stop")


def test_required_and_a_named_tool_are_refused_with_a_sentence_naming_them():
    provider = ZaiProvider(default_model="glm-4.6", api_key=ZAI_KEY, base_url="http://127.0.0.1:9")

    assert provider.supports_tools and provider.tools_supported("glm-4.5-flash")
    assert provider.check_tool_choice("glm-4.6", "auto") is None
    assert provider.check_tool_choice("glm-4.6", "none") is None
    required = provider.check_tool_choice("glm-4.6", "required")
    named = provider.check_tool_choice("glm-4.6", {"name": "clock"})
    assert required.startswith("tool_choice is 'required', which the model zai:glm-4.6 cannot honour")
    assert named.startswith("tool_choice names the tool 'clock', which the model zai:glm-4.6 cannot honour")
    assert "auto" in named and provider.check_tools("glm-4.6", TOOLS) is None


async def test_the_fake_refuses_a_tool_choice_other_than_auto(fake_upstream):
    """What the refusal spares the client: Z.AI documents tool_choice auto only."""
    client = ZaiClient(api_key=ZAI_KEY, base_url=fake_upstream.zai_base_url, max_retries=0)
    tools = [{"type": "function", "function": {"name": "clock", "parameters": CLOCK_SCHEMA}}]
    try:
        with pytest.raises(zai_errors.APIStatusError) as caught:
            client.chat.completions.create(
                model=WHOLE, messages=[{"role": "user", "content": "x"}], tools=tools, tool_choice="required"
            )
    finally:
        client.close()
    assert caught.value.status_code == 400


# ---- calls read back ------------------------------------------------------------------------------


async def test_whole_calls_each_marked_tool_calls_are_all_read_and_the_usage_after_them(make_provider):
    text = 'Florence "old town" [[tools=weather,clock]]'
    chunks = await collect(make_provider("zai"), ask(text, tools=TOOLS, model=WHOLE))

    weather, clock = [piece for chunk in chunks for piece in chunk.tool_calls]
    assert (weather.index, weather.name, weather.arguments) == (
        0,
        "weather",
        expected_tool_arguments(WEATHER_SCHEMA, text),
    )
    assert (clock.index, clock.name, clock.arguments) == (
        1,
        "clock",
        expected_tool_arguments(CLOCK_SCHEMA, text),
    )
    assert ZAI_ID.match(weather.id) and ZAI_ID.match(clock.id) and weather.id != clock.id
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].response_id


async def test_tool_stream_fragments_are_read_by_index(make_provider):
    text = "Kyiv [[tools=weather,clock]]"
    chunks = await collect(make_provider("zai"), ask(text, tools=TOOLS, model=STREAMED))

    pieces = [piece for chunk in chunks for piece in chunk.tool_calls]
    assert [p.index for p in pieces] == [0, 0, 0, 0, 1, 1, 1, 1]
    header = pieces[0]
    assert (header.name, header.arguments) == ("weather", "") and ZAI_ID.match(header.id)
    assert all((p.id, p.name) == ("", "") for p in pieces[1:4])
    weather, clock = assembled(chunks)
    assert weather.arguments == expected_tool_arguments(WEATHER_SCHEMA, text)
    assert (clock.name, json.loads(clock.arguments)) == ("clock", {"zone": "Kyiv"})
    assert chunks[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize("model", [WHOLE, STREAMED])
async def test_text_said_before_the_calls_arrives_first(model, make_provider):
    text = "Oslo [[text_first=1 tools=clock]]"
    chunks = await collect(make_provider("zai"), ask(text, tools=TOOLS, model=model))

    first_call = next(i for i, c in enumerate(chunks) if c.tool_calls)
    assert "".join(c.text for c in chunks[:first_call]) == expected_reply(text)
    assert not any(c.text for c in chunks[first_call:])
    assert [call.name for call in assembled(chunks)] == ["clock"]


async def test_a_tool_stream_cut_mid_arguments_raises_after_the_pieces_received(make_provider):
    text = "Lima [[tools=weather fault=drop:2]]"
    received = []
    with pytest.raises(Unavailable):
        async for chunk in make_provider("zai").stream(ask(text, tools=TOOLS, model=STREAMED)):
            received += chunk.tool_calls

    header, fragment = received
    assert header.name == "weather" and ZAI_ID.match(header.id)
    assert expected_tool_arguments(WEATHER_SCHEMA, text).startswith(fragment.arguments)


# ---- the next round -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [WHOLE, STREAMED])
async def test_the_history_carries_the_calls_with_their_ids_and_one_tool_message_per_result(
    model, make_provider, fake_upstream
):
    provider = make_provider("zai")
    user = ChatMessage("user", "Paris [[tools=weather,clock]]")
    first = await provider.complete(ask(user.content, tools=TOOLS, model=model))
    weather, clock = first.tool_calls
    results = (ToolResult(weather.id, "21 C", name="weather"), ToolResult(clock.id, "broken", is_error=True))
    history = (
        user,
        ChatMessage("assistant", "", first.tool_calls),
        ChatMessage("tool", "", tool_results=results),
    )

    second = await provider.complete(
        ProviderRequest(model=model, messages=history, tools=TOOLS, system="Be brief.")
    )

    assert second.text == expected_tool_reply(["21 C", "broken"]) and second.finish_reason == "stop"
    assert sent(fake_upstream)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": user.content},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in (weather, clock)
            ],
        },
        {"role": "tool", "tool_call_id": weather.id, "content": "21 C"},
        {"role": "tool", "tool_call_id": clock.id, "content": "broken"},
    ]


def test_the_fake_answers_a_non_streamed_request_with_whole_calls_and_their_index(fake_upstream):
    client = ZaiClient(api_key=ZAI_KEY, base_url=fake_upstream.zai_base_url, max_retries=0)
    tools = [{"type": "function", "function": {"name": "clock", "parameters": CLOCK_SCHEMA}}]
    try:
        reply = client.chat.completions.create(
            model=WHOLE, messages=[{"role": "user", "content": "Oslo [[tools=clock,clock]]"}], tools=tools
        )
    finally:
        client.close()
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("clock", '{"zone":"Oslo"}'),
        ("clock", '{"zone":"Oslo"}'),
    ]
    assert all(ZAI_ID.match(c.id) for c in choice.message.tool_calls)
