"""Client tools through the Responses API adapter: what it sends, and the ``function_call`` items it
reads back from the fake upstream's Responses wire (real openai SDK, real HTTP)."""

from __future__ import annotations

import json

import pytest

from providers.base import (
    ChatMessage,
    InvalidRequest,
    ProviderChunk,
    ProviderRequest,
    ResponseIdNotFound,
    ToolCall,
    ToolCallAssembler,
    ToolCallChunk,
    ToolResult,
    ToolSpec,
    Unavailable,
)
from tests.fake_upstream import expected_reply, expected_tool_arguments, expected_tool_reply
from tests.providers.conftest import ask, collect

PATH = "/v1/responses"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
WEATHER = ToolSpec("weather", "Current weather in a city", WEATHER_SCHEMA)
CLOCK_SCHEMA = {
    "type": "object",
    "properties": {"zone": {"type": "string"}},
    "required": ["zone"],
    "additionalProperties": False,
}
CLOCK = ToolSpec("clock", parameters=CLOCK_SCHEMA, strict=True)
TOOLS = (WEATHER, CLOCK)


def pieces(chunks: list[ProviderChunk]) -> list[ToolCallChunk]:
    return [piece for chunk in chunks for piece in chunk.tool_calls]


def assembled(chunks: list[ProviderChunk]) -> tuple[ToolCall, ...]:
    calls = ToolCallAssembler()
    for chunk in chunks:
        calls.add(chunk.tool_calls)
    return calls.calls()


# ---- what is sent ---------------------------------------------------------------------------------


async def test_tools_go_flat_with_strict_false_unless_asked_and_the_choice_and_flag(
    make_provider, fake_upstream
):
    provider = make_provider("openai-responses")
    await provider.complete(
        ask("Paris", tools=TOOLS, tool_choice={"name": "clock"}, parallel_tool_calls=False)
    )

    body = fake_upstream.last_request(PATH).json
    assert body["tools"] == [
        {
            "type": "function",
            "name": "weather",
            "description": "Current weather in a city",
            "parameters": WEATHER_SCHEMA,
            "strict": False,
        },
        {"type": "function", "name": "clock", "parameters": CLOCK_SCHEMA, "strict": True},
    ]
    assert body["tool_choice"] == {"type": "function", "name": "clock"}
    assert body["parallel_tool_calls"] is False
    for choice in ("none", "auto", "required"):
        await provider.complete(ask("Paris", tools=TOOLS, tool_choice=choice))
        assert fake_upstream.last_request(PATH).json["tool_choice"] == choice


async def test_a_tool_without_parameters_gets_an_empty_object_schema(make_provider, fake_upstream):
    await make_provider("openai-responses").complete(ask("x", tools=(ToolSpec("ping"),)))
    (sent,) = fake_upstream.last_request(PATH).json["tools"]
    assert sent == {
        "type": "function",
        "name": "ping",
        "parameters": {"type": "object", "properties": {}},
        "strict": False,
    }


async def test_without_tools_no_tool_field_is_sent(make_provider, fake_upstream):
    await make_provider("openai-responses").complete(ask("plain"))
    body = fake_upstream.last_request(PATH).json
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(body)


# ---- calls read back ------------------------------------------------------------------------------


async def test_a_streamed_call_is_a_header_piece_then_three_argument_fragments(make_provider):
    text = 'Florence "old town"'
    chunks = await collect(make_provider("openai-responses"), ask(text, tools=TOOLS))

    header, *fragments = pieces(chunks)
    assert (header.index, header.name, header.arguments) == (0, "weather", "")
    assert header.id.startswith("call_0_") and header.metadata["item_id"].startswith("fc_")
    assert len(fragments) == 3 and all((f.index, f.id, f.name) == (0, "", "") for f in fragments)
    arguments = "".join(f.arguments for f in fragments)
    assert arguments == expected_tool_arguments(WEATHER_SCHEMA, text)
    assert "".join(c.text for c in chunks) == ""
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].response_id.startswith("resp_")


async def test_complete_assembles_the_call_with_its_item_id(make_provider, fake_upstream):
    done = await make_provider("openai-responses").complete(ask("Oslo", tools=TOOLS))
    (called,) = done.tool_calls
    assert (called.name, called.arguments) == ("weather", expected_tool_arguments(WEATHER_SCHEMA, "Oslo"))
    assert done.finish_reason == "tool_calls" and done.text == ""
    stored = fake_upstream.state.get_response(done.response_id).body["output"]
    assert called.metadata == {"item_id": stored[0]["id"]} and called.id == stored[0]["call_id"]


async def test_a_reasoning_item_before_the_call_takes_output_index_0(make_provider):
    text = "Oslo [[reasoning_item=1 tools=weather,clock]]"
    chunks = await collect(make_provider("openai-responses"), ask(text, tools=TOOLS))

    assert [p.index for p in pieces(chunks)] == [0, 0, 0, 0, 1, 1, 1, 1]
    weather, clock = assembled(chunks)
    assert weather.arguments == expected_tool_arguments(WEATHER_SCHEMA, text)
    assert json.loads(clock.arguments) == {"zone": "Oslo"}
    assert weather.metadata["item_id"] != clock.metadata["item_id"]
    assert chunks[-1].finish_reason == "tool_calls"


async def test_text_before_the_calls_is_kept(make_provider):
    text = "Lima [[tools=weather text_first=1 chunks=2]]"
    chunks = await collect(make_provider("openai-responses"), ask(text, tools=TOOLS))
    assert "".join(c.text for c in chunks) == expected_reply(text)
    (called,) = assembled(chunks)
    assert called.name == "weather" and chunks[-1].finish_reason == "tool_calls"


async def test_tool_choice_none_is_answered_with_text(make_provider):
    done = await make_provider("openai-responses").complete(ask("Kyiv", tools=TOOLS, tool_choice="none"))
    assert (done.text, done.tool_calls, done.finish_reason) == (expected_reply("Kyiv"), (), "stop")


async def test_a_stream_cut_mid_arguments_raises_after_the_pieces_read(make_provider):
    seen: list[ProviderChunk] = []
    with pytest.raises(Unavailable):
        async for chunk in make_provider("openai-responses").stream(
            ask("Paris [[fault=drop:2]]", tools=TOOLS)
        ):
            seen.append(chunk)
    header, fragment = pieces(seen)
    assert header.name == "weather" and expected_tool_arguments(
        WEATHER_SCHEMA, "Paris [[fault=drop:2]]"
    ).startswith(fragment.arguments)


# ---- a tool round ---------------------------------------------------------------------------------


def round_history(text: str, first) -> tuple[ChatMessage, ...]:
    """The first round as the turn core sends it: the user message, the answer with its calls, the
    results (named after the calls)."""
    results = tuple(ToolResult(c.id, f"{c.name} ok", name=c.name) for c in first.tool_calls)
    return (
        ChatMessage("user", text),
        ChatMessage("assistant", first.text, first.tool_calls),
        ChatMessage("tool", "", tool_results=results),
    )


async def test_a_round_without_previous_response_id_sends_the_calls_and_their_outputs(
    make_provider, fake_upstream
):
    provider = make_provider("openai-responses")
    text = "Rome [[tools=weather,clock text_first=1 chunks=2]]"
    first = await provider.complete(ask(text, tools=TOOLS))
    history = round_history(text, first)
    second = await provider.complete(ProviderRequest(model="test-model", messages=history, tools=TOOLS))

    body = fake_upstream.last_request(PATH).json
    weather, clock = first.tool_calls
    assert body["input"] == [
        {"role": "user", "content": text},
        {"role": "assistant", "content": expected_reply(text)},
        {"type": "function_call", "call_id": weather.id, "name": "weather", "arguments": weather.arguments},
        {"type": "function_call", "call_id": clock.id, "name": "clock", "arguments": clock.arguments},
        {"type": "function_call_output", "call_id": weather.id, "output": "weather ok"},
        {"type": "function_call_output", "call_id": clock.id, "output": "clock ok"},
    ]
    assert "previous_response_id" not in body
    assert (second.text, second.tool_calls, second.finish_reason) == (
        expected_tool_reply(["weather ok", "clock ok"]),
        (),
        "stop",
    )


async def test_a_chained_round_sends_only_the_outputs(make_provider, fake_upstream):
    provider = make_provider("openai-responses")
    text = "Tokyo [[tools=weather]]"
    first = await provider.complete(ask(text, tools=TOOLS))
    history = round_history(text, first)
    chained = ProviderRequest(
        model="test-model", messages=history, tools=TOOLS, previous_response_id=first.response_id
    )
    second = await provider.complete(chained)

    body = fake_upstream.last_request(PATH).json
    (called,) = first.tool_calls
    assert body["previous_response_id"] == first.response_id
    assert body["input"] == [{"type": "function_call_output", "call_id": called.id, "output": "weather ok"}]
    assert second.text == expected_tool_reply(["weather ok"]) and second.finish_reason == "stop"


async def test_the_upstream_refuses_an_output_for_a_call_it_did_not_make(make_provider):
    provider = make_provider("openai-responses")
    first = await provider.complete(ask("Tokyo [[tools=weather]]", tools=TOOLS))
    wrong = (ChatMessage("tool", "", tool_results=(ToolResult("call_nope", "x"),)),)
    with pytest.raises(InvalidRequest) as refused:
        await provider.complete(
            ProviderRequest(model="test-model", messages=wrong, previous_response_id=first.response_id)
        )
    assert "call_nope" in refused.value.message


async def test_a_chain_whose_calls_the_input_leaves_unanswered_asks_for_the_history(make_provider):
    """A user who wrote instead of sending the results: OpenAI refuses to continue the chain (400
    "No tool output found for function call …"), so the turn core resends the history instead."""
    provider = make_provider("openai-responses")
    first = await provider.complete(ask("Tokyo [[tools=weather]]", tools=TOOLS))
    with pytest.raises(ResponseIdNotFound):
        await provider.complete(ask("never mind", previous_response_id=first.response_id))
