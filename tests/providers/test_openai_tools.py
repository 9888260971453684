"""Client tools through the Chat Completions adapter: what it sends, and the calls it reads back from
the fake upstream's OpenAI wire (real openai SDK, real HTTP)."""

from __future__ import annotations

import json

import pytest

from providers.base import (
    ChatMessage,
    ProviderChunk,
    ProviderRequest,
    ToolCall,
    ToolCallAssembler,
    ToolCallChunk,
    ToolResult,
    ToolSpec,
    Unavailable,
)
from providers.openai_chat import OpenAIChatProvider
from providers.openai_compatible import OpenAICompatibleProvider
from providers.openai_responses import OpenAIResponsesProvider
from tests.fake_upstream import expected_reply, expected_tool_arguments, expected_tool_reply
from tests.providers.conftest import ask, collect

PATH = "/v1/chat/completions"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
    "required": ["city"],
}
WEATHER = ToolSpec("weather", "Current weather in a city", WEATHER_SCHEMA)
CLOCK_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string"}}}
CLOCK = ToolSpec("clock", parameters=CLOCK_SCHEMA, strict=True)
TOOLS = (WEATHER, CLOCK)


def pieces(chunks: list[ProviderChunk]) -> list[ToolCallChunk]:
    return [piece for chunk in chunks for piece in chunk.tool_calls]


def assembled(chunks: list[ProviderChunk]) -> tuple[ToolCall, ...]:
    calls = ToolCallAssembler()
    for chunk in chunks:
        calls.add(chunk.tool_calls)
    return calls.calls()


# ---- calls read back ------------------------------------------------------------------------------


async def test_a_streamed_call_arrives_as_a_header_piece_then_three_argument_fragments(make_provider):
    text = 'Florence "old town"'
    chunks = await collect(make_provider("openai"), ask(text, tools=TOOLS))

    header, *fragments = pieces(chunks)
    assert (header.index, header.name, header.arguments) == (0, "weather", "")
    assert header.id.startswith("call_0_")
    assert len(fragments) == 3 and all((f.index, f.id, f.name) == (0, "", "") for f in fragments)
    arguments = "".join(f.arguments for f in fragments)
    assert arguments == expected_tool_arguments(WEATHER_SCHEMA, text)
    assert json.loads(arguments) == {"city": 'Florence "old town"', "days": 1, "metric": True}
    assert "".join(c.text for c in chunks) == ""
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].response_id.startswith("chatcmpl-")


async def test_parallel_calls_come_one_after_the_other_by_index(make_provider):
    text = "Paris [[tools=weather,clock]]"
    chunks = await collect(make_provider("openai"), ask(text, tools=TOOLS))

    assert [p.index for p in pieces(chunks)] == [0, 0, 0, 0, 1, 1, 1, 1]
    weather, clock = assembled(chunks)
    assert (weather.name, clock.name) == ("weather", "clock")
    assert weather.id.startswith("call_0_") and clock.id.startswith("call_1_")
    assert weather.arguments == expected_tool_arguments(WEATHER_SCHEMA, text)
    assert json.loads(clock.arguments) == {"zone": "Paris"}


async def test_parallel_tool_calls_false_is_sent_and_leaves_one_call(make_provider, fake_upstream):
    chunks = await collect(
        make_provider("openai"), ask("Rome [[tools=weather,clock]]", tools=TOOLS, parallel_tool_calls=False)
    )

    assert [call.name for call in assembled(chunks)] == ["weather"]
    assert fake_upstream.last_request(PATH).json["parallel_tool_calls"] is False


async def test_text_said_before_the_calls_arrives_first(make_provider):
    text = "Oslo [[text_first=1 tools=clock]]"
    chunks = await collect(make_provider("openai"), ask(text, tools=TOOLS))

    first_call = next(i for i, c in enumerate(chunks) if c.tool_calls)
    assert "".join(c.text for c in chunks[:first_call]) == expected_reply(text)
    assert not any(c.text for c in chunks[first_call:])
    assert [call.name for call in assembled(chunks)] == ["clock"]
    assert chunks[-1].finish_reason == "tool_calls"


async def test_a_stream_cut_mid_arguments_raises_unavailable_after_the_pieces_received(make_provider):
    text = "Lima [[tools=weather fault=drop:2]]"
    received: list[ToolCallChunk] = []

    with pytest.raises(Unavailable):
        async for chunk in make_provider("openai").stream(ask(text, tools=TOOLS)):
            received += chunk.tool_calls

    header, fragment = received
    assert header.name == "weather" and header.id.startswith("call_0_")
    assert expected_tool_arguments(WEATHER_SCHEMA, text).startswith(fragment.arguments)
    assert len(fragment.arguments) < len(expected_tool_arguments(WEATHER_SCHEMA, text))


async def test_complete_returns_the_whole_calls(make_provider):
    text = "Kyiv [[tools=weather,clock]]"
    result = await make_provider("openai").complete(ask(text, tools=TOOLS))

    assert result.text == "" and result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("weather", expected_tool_arguments(WEATHER_SCHEMA, text)),
        ("clock", expected_tool_arguments(CLOCK_SCHEMA, text)),
    ]
    assert all(c.id.startswith(f"call_{i}_") for i, c in enumerate(result.tool_calls))


async def test_the_openai_compatible_adapter_reads_calls_too(make_provider, fake_upstream):
    result = await make_provider("openai-compatible").complete(ask("Quito", tools=(CLOCK,)))

    assert [(c.name, c.arguments) for c in result.tool_calls] == [("clock", '{"zone":"Quito"}')]
    assert fake_upstream.last_request(PATH).json["tools"][0]["function"]["name"] == "clock"


# ---- what goes on the wire ------------------------------------------------------------------------


async def test_tools_are_sent_as_functions_with_an_empty_schema_when_none_was_given(
    make_provider, fake_upstream
):
    bare = ToolSpec("ping")
    await make_provider("openai").complete(ask("hi", tools=(WEATHER, CLOCK, bare)))

    assert fake_upstream.last_request(PATH).json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Current weather in a city",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {"type": "function", "function": {"name": "clock", "parameters": CLOCK_SCHEMA, "strict": True}},
        {
            "type": "function",
            "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}},
        },
    ]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("none", "none"),
        ("auto", "auto"),
        ("required", "required"),
        ({"name": "clock"}, {"type": "function", "function": {"name": "clock"}}),
    ],
)
async def test_tool_choice_is_sent_in_the_chat_shape(make_provider, fake_upstream, choice, sent):
    await make_provider("openai").complete(ask("hi", tools=TOOLS, tool_choice=choice))

    assert fake_upstream.last_request(PATH).json["tool_choice"] == sent


async def test_a_named_tool_choice_is_the_call_made_and_none_gets_text(make_provider):
    provider = make_provider("openai")

    named = await provider.complete(ask("Cairo", tools=TOOLS, tool_choice={"name": "clock"}))
    refused = await provider.complete(ask("Cairo", tools=TOOLS, tool_choice="none"))

    assert [c.name for c in named.tool_calls] == ["clock"]
    assert (refused.text, refused.tool_calls, refused.finish_reason) == (expected_reply("Cairo"), (), "stop")


async def test_without_tools_no_tool_field_is_sent(make_provider, fake_upstream):
    await make_provider("openai").complete(ask("hi", tool_choice="required", parallel_tool_calls=True))

    assert not {"tools", "tool_choice", "parallel_tool_calls"} & fake_upstream.last_request(PATH).json.keys()


async def test_unset_choice_and_parallel_flag_are_left_to_the_provider(make_provider, fake_upstream):
    await make_provider("openai").complete(ask("hi", tools=TOOLS))

    body = fake_upstream.last_request(PATH).json
    assert "tools" in body and not {"tool_choice", "parallel_tool_calls"} & body.keys()


async def test_history_calls_and_results_are_sent_as_assistant_tool_calls_and_tool_messages(
    make_provider, fake_upstream
):
    calls = (
        ToolCall("call_a", "weather", '{"city":"Bern"}'),
        ToolCall("call_b", "clock", '{"zone":"CET"}'),
    )
    results = (
        ToolResult("call_a", "21 C", name="weather"),
        ToolResult("call_b", "clock is broken", is_error=True, name="clock"),
    )
    history = (
        ChatMessage("user", "earlier"),
        ChatMessage("assistant", "Let me look.", tool_calls=calls[:1]),
        ChatMessage("tool", "", tool_results=results[:1]),
        ChatMessage("assistant", "", tool_calls=calls),
        ChatMessage("tool", "", tool_results=results),
    )

    result = await make_provider("openai").complete(ProviderRequest("test-model", history, tools=TOOLS))

    function = {"type": "function"}
    assert fake_upstream.last_request(PATH).json["messages"] == [
        {"role": "user", "content": "earlier"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "call_a", **function, "function": {"name": "weather", "arguments": '{"city":"Bern"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "21 C"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", **function, "function": {"name": "weather", "arguments": '{"city":"Bern"}'}},
                {"id": "call_b", **function, "function": {"name": "clock", "arguments": '{"zone":"CET"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "21 C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "clock is broken"},
    ]
    assert (result.text, result.tool_calls) == (expected_tool_reply(["21 C", "clock is broken"]), ())


# ---- capabilities ---------------------------------------------------------------------------------


def test_chat_adapters_declare_tools_and_the_responses_adapter_declares_its_own():
    assert OpenAIChatProvider.supports_tools and OpenAICompatibleProvider.supports_tools
    assert "supports_tools" in vars(OpenAIResponsesProvider)  # its wire is another: not inherited
