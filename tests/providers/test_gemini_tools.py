"""Client tools through the Gemini adapter: the declarations and schema translation it sends, the
calls it reads back, the thought signature's round trip, and the schemas it refuses before any
call (real google-genai SDK, real HTTP, the fake upstream's Gemini wire)."""

from __future__ import annotations

import base64
import json

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from providers.base import (
    ChatMessage,
    InvalidRequest,
    ProviderChunk,
    ProviderRequest,
    ToolCall,
    ToolCallAssembler,
    ToolResult,
    ToolSpec,
    Unavailable,
)
from providers.gemini import GeminiProvider
from providers.gemini_tools import SKIP_SIGNATURE, schema_refusal, translate
from tests.fake_upstream import expected_reply, expected_tool_arguments, expected_tool_reply
from tests.fake_upstream.gemini_wire import thought_signature
from tests.providers.conftest import GEMINI_KEY, ask, collect

PATH = ":streamGenerateContent"
GEMINI_3 = "gemini-3-flash-preview"  # the fake checks signatures for Gemini 3 models, as Gemini does
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
    "required": ["city"],
}
WEATHER = ToolSpec("weather", "Current weather in a city", WEATHER_SCHEMA)
CLOCK_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string"}}}
CLOCK = ToolSpec("clock", parameters=CLOCK_SCHEMA)
TOOLS = (WEATHER, CLOCK)


def assembled(chunks: list[ProviderChunk]) -> tuple[ToolCall, ...]:
    calls = ToolCallAssembler()
    for chunk in chunks:
        calls.add(chunk.tool_calls)
    return calls.calls()


def sent(fake_upstream) -> dict:
    return fake_upstream.last_request(PATH).json


def stored(calls: tuple[ToolCall, ...]) -> tuple[ToolCall, ...]:
    """The calls as the transcript stores them: a call Gemini gave no id gets one of ours."""
    return tuple(
        call if call.id else ToolCall(f"call_ours{n}", call.name, call.arguments, call.metadata)
        for n, call in enumerate(calls)
    )


def raw(signature: str) -> bytes:
    """A base64 signature's bytes, whichever alphabet (the SDK sends them URL-safe)."""
    return base64.b64decode(signature.replace("-", "+").replace("_", "/"))


# ---- what goes on the wire ------------------------------------------------------------------------


async def test_declarations_carry_the_schema_translated_to_geminis_subset(make_provider, fake_upstream):
    schema = {
        "type": "object",
        "title": "Trip",
        "description": "A trip to plan",
        "properties": {
            "city": {"type": ["string", "null"], "minLength": 1, "maxLength": 80, "pattern": "^[A-Z]"},
            "mode": {"const": "train"},
            "unit": {"type": "string", "enum": ["C", "F", None], "default": "C"},
            "when": {"type": "string", "format": "date-time", "example": "2026-01-01T00:00:00Z"},
            "stops": {
                "type": "array",
                "minItems": 1,
                "maxItems": 5,
                "items": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            },
            "budget": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1e6}, {"type": "null"}]},
            "extras": {"type": "object", "properties": {"wifi": {"type": "boolean"}}, "minProperties": 1},
        },
        "required": ["city"],
        "propertyOrdering": ["city", "mode"],
    }
    await make_provider("gemini").complete(ask("Rome", tools=(ToolSpec("trip", "Plan it", schema),)))

    (tool,) = sent(fake_upstream)["tools"]
    assert tool["functionDeclarations"] == [
        {
            "name": "trip",
            "description": "Plan it",
            "parameters": {
                "type": "OBJECT",
                "title": "Trip",
                "description": "A trip to plan",
                "properties": {
                    "city": {
                        "type": "STRING",
                        "nullable": True,
                        "min_length": 1,
                        "max_length": 80,
                        "pattern": "^[A-Z]",
                    },
                    "mode": {"type": "STRING", "enum": ["train"]},
                    "unit": {"type": "STRING", "enum": ["C", "F"], "nullable": True, "default": "C"},
                    "when": {"type": "STRING", "format": "date-time", "example": "2026-01-01T00:00:00Z"},
                    "stops": {
                        "type": "ARRAY",
                        "min_items": 1,
                        "max_items": 5,
                        "items": {
                            "type": "OBJECT",
                            "properties": {"name": {"type": "STRING"}},
                            "required": ["name"],
                        },
                    },
                    "budget": {
                        "any_of": [{"type": "NUMBER", "minimum": 0, "maximum": 1e6}, {"type": "NULL"}]
                    },
                    "extras": {
                        "type": "OBJECT",
                        "properties": {"wifi": {"type": "BOOLEAN"}},
                        "min_properties": 1,
                    },
                },
                "required": ["city"],
                "property_ordering": ["city", "mode"],
            },
        }
    ]


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"type": "object"},
        {"type": "object", "properties": {}},
        {"type": "object", "properties": {}, "required": []},
    ],
)
async def test_a_tool_without_parameters_is_declared_without_them(parameters, make_provider, fake_upstream):
    result = await make_provider("gemini").complete(
        ask("now", tools=(ToolSpec("ping", parameters=parameters),))
    )

    assert sent(fake_upstream)["tools"] == [{"functionDeclarations": [{"name": "ping"}]}]
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("ping", "{}")]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (None, None),
        ("auto", {"functionCallingConfig": {"mode": "AUTO"}}),
        ("none", {"functionCallingConfig": {"mode": "NONE"}}),
        ("required", {"functionCallingConfig": {"mode": "ANY"}}),
        ({"name": "clock"}, {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["clock"]}}),
    ],
)
async def test_tool_choice_becomes_the_function_calling_mode(choice, config, make_provider, fake_upstream):
    await make_provider("gemini").complete(ask("Oslo", tools=TOOLS, tool_choice=choice))

    assert sent(fake_upstream).get("toolConfig") == config


async def test_tool_choice_none_gets_text_and_a_named_tool_is_the_one_called(make_provider):
    provider = make_provider("gemini")
    silent = await provider.complete(ask("Oslo", tools=TOOLS, tool_choice="none"))
    named = await provider.complete(ask("Oslo", tools=TOOLS, tool_choice={"name": "clock"}))

    assert (silent.text, silent.tool_calls, silent.finish_reason) == (expected_reply("Oslo"), (), "stop")
    assert [c.name for c in named.tool_calls] == ["clock"]


async def test_a_request_without_tools_sends_no_tool_fields(make_provider, fake_upstream):
    await make_provider("gemini").complete(ask("hi"))

    assert "tools" not in sent(fake_upstream) and "toolConfig" not in sent(fake_upstream)


# ---- calls read back ------------------------------------------------------------------------------


async def test_each_call_arrives_whole_in_one_piece_with_the_first_ones_signature(make_provider):
    text = 'Florence "old town" [[tools=weather,clock]]'
    chunks = await collect(make_provider("gemini"), ask(text, tools=TOOLS, model=GEMINI_3))

    weather, clock = [piece for chunk in chunks for piece in chunk.tool_calls]
    assert (weather.index, weather.id, weather.name) == (0, "", "weather")
    assert json.loads(weather.arguments) == json.loads(expected_tool_arguments(WEATHER_SCHEMA, text))
    assert json.loads(weather.arguments) == {"city": 'Florence "old town"', "days": 1, "metric": True}
    assert weather.metadata == {"thought_signature": thought_signature(0, text)}
    assert (clock.index, clock.id, clock.name, clock.metadata) == (1, "", "clock", {})
    assert json.loads(clock.arguments) == {"zone": 'Florence "old town"'}
    assert "".join(c.text for c in chunks) == ""
    assert chunks[-1].finish_reason == "tool_calls"  # Gemini said STOP
    assert chunks[-1].usage is not None and chunks[-1].response_id


async def test_text_said_before_the_calls_arrives_first(make_provider):
    text = "Oslo [[text_first=1 tools=clock]]"
    chunks = await collect(make_provider("gemini"), ask(text, tools=TOOLS))

    first_call = next(i for i, c in enumerate(chunks) if c.tool_calls)
    assert "".join(c.text for c in chunks[:first_call]) == expected_reply(text)
    assert [call.name for call in assembled(chunks)] == ["clock"]
    assert chunks[-1].finish_reason == "tool_calls"


async def test_an_id_gemini_gives_is_kept_and_marked_as_geminis(make_provider):
    text = "Lima [[tools=weather call_ids=1]]"
    (call,) = (await make_provider("gemini").complete(ask(text, tools=TOOLS))).tool_calls

    assert call.id.startswith("call_0_")
    assert call.metadata == {"thought_signature": thought_signature(0, text), "gemini_id": True}


async def test_a_stream_cut_before_the_calls_leaves_none(make_provider):
    received = []
    with pytest.raises(Unavailable):
        async for chunk in make_provider("gemini").stream(
            ask("Lima [[tools=weather fault=drop:0]]", tools=TOOLS)
        ):
            received += chunk.tool_calls
    assert received == []


# ---- the next round -------------------------------------------------------------------------------


async def test_the_signature_goes_back_with_its_call_and_results_as_named_function_responses(
    make_provider, fake_upstream
):
    provider = make_provider("gemini")
    user = ChatMessage("user", "Paris [[text_first=1 tools=weather,clock]]")
    first = await provider.complete(ask(user.content, tools=TOOLS, model=GEMINI_3))
    calls = stored(first.tool_calls)
    results = (
        ToolResult(calls[0].id, "21 C", name="weather"),
        ToolResult(calls[1].id, "clock is broken", is_error=True, name="clock"),
    )
    history = (
        user,
        ChatMessage("assistant", first.text, calls),
        ChatMessage("tool", "", tool_results=results),
    )

    second = await provider.complete(ask_history(history, model=GEMINI_3))

    assert second.text == expected_tool_reply(["21 C", "clock is broken"])
    assert second.tool_calls == () and second.finish_reason == "stop"
    contents = sent(fake_upstream)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    text_part, weather, clock = contents[1]["parts"]
    assert text_part == {"text": expected_reply(user.content)}
    assert weather["functionCall"] == {"name": "weather", "args": json.loads(calls[0].arguments)}
    assert raw(weather["thoughtSignature"]) == raw(
        thought_signature(0, user.content)
    )  # the bytes as received
    assert weather["thoughtSignature"] != thought_signature(0, user.content)  # sent URL-safe by the SDK
    assert clock == {"functionCall": {"name": "clock", "args": json.loads(calls[1].arguments)}}
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"output": "21 C"}}},
        {"functionResponse": {"name": "clock", "response": {"error": "clock is broken"}}},
    ]


def ask_history(history: tuple[ChatMessage, ...], **fields: object) -> ProviderRequest:
    return ProviderRequest(model=fields.pop("model", "test-model"), messages=history, tools=TOOLS, **fields)


async def test_geminis_own_ids_go_back_with_the_call_and_its_response(make_provider, fake_upstream):
    provider = make_provider("gemini")
    user = ChatMessage("user", "Lima [[tools=weather call_ids=1]]")
    (call,) = (await provider.complete(ask(user.content, tools=TOOLS, model=GEMINI_3))).tool_calls
    history = (
        user,
        ChatMessage("assistant", "", (call,)),
        ChatMessage("tool", "", tool_results=(ToolResult(call.id, "sunny", name="weather"),)),
    )

    assert (await provider.complete(ask_history(history, model=GEMINI_3))).text == expected_tool_reply(
        ["sunny"]
    )

    model, answer = sent(fake_upstream)["contents"][1:]
    assert model["parts"][0]["functionCall"]["id"] == call.id
    assert answer["parts"] == [
        {"functionResponse": {"id": call.id, "name": "weather", "response": {"output": "sunny"}}}
    ]


async def test_a_result_without_its_name_is_named_after_the_call_it_answers(make_provider, fake_upstream):
    call = ToolCall("call_1", "clock", '{"zone": "UTC"}', {"thought_signature": thought_signature(0, "x")})
    history = (
        ChatMessage("user", "time?"),
        ChatMessage("assistant", "", (call,)),
        ChatMessage("tool", "", tool_results=(ToolResult("call_1", "noon"),)),
    )

    await make_provider("gemini").complete(ask_history(history, model=GEMINI_3))

    assert sent(fake_upstream)["contents"][2]["parts"] == [
        {"functionResponse": {"name": "clock", "response": {"output": "noon"}}}
    ]


async def test_a_gemini_3_call_stored_without_signature_goes_back_with_googles_placeholder(
    make_provider, fake_upstream
):
    call = ToolCall("call_openai", "clock", '{"zone": "UTC"}')  # e.g. made by another provider
    history = (
        ChatMessage("user", "time?"),
        ChatMessage("assistant", "", (call, ToolCall("call_2", "clock", "{}"))),
        ChatMessage(
            "tool", "", tool_results=(ToolResult("call_openai", "noon"), ToolResult("call_2", "one"))
        ),
    )
    provider = make_provider("gemini")

    assert (await provider.complete(ask_history(history, model=GEMINI_3))).text == expected_tool_reply(
        ["noon", "one"]
    )
    first, second = sent(fake_upstream)["contents"][1]["parts"]
    assert first["thoughtSignature"] == SKIP_SIGNATURE and "thoughtSignature" not in second
    assert "id" not in first["functionCall"]  # not Gemini's id: never sent

    await provider.complete(ask_history(history, model="gemini-2.5-flash"))  # no placeholder before Gemini 3
    assert all("thoughtSignature" not in part for part in sent(fake_upstream)["contents"][1]["parts"])


async def test_a_signature_not_as_received_is_refused_by_the_fake_as_by_gemini(make_provider):
    call = ToolCall("c", "clock", "{}", {"thought_signature": base64.b64encode(b"forged").decode()})
    history = (
        ChatMessage("user", "time?"),
        ChatMessage("assistant", "", (call,)),
        ChatMessage("tool", "", tool_results=(ToolResult("c", "noon", name="clock"),)),
    )
    with pytest.raises(InvalidRequest, match="Thought signature is not valid"):
        await make_provider("gemini").complete(ask_history(history, model=GEMINI_3))


async def test_the_fake_refuses_a_gemini_3_call_replayed_without_its_signature(fake_upstream):
    """What the round trip guards against: Gemini 3 answers 400 to a call without its signature."""
    client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=fake_upstream.url))
    contents = [
        types.Content(role="user", parts=[types.Part(text="time?")]),
        types.Content(
            role="model", parts=[types.Part(function_call=types.FunctionCall(name="clock", args={}))]
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(name="clock", response={"output": "noon"})
                )
            ],
        ),
    ]
    try:
        with pytest.raises(genai_errors.ClientError) as caught:
            await client.aio.models.generate_content(model=GEMINI_3, contents=contents)
        assert caught.value.code == 400
        assert "Function call is missing a thought_signature" in caught.value.message
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents=contents)  # 2.5: no check
    finally:
        await client.aio.aclose()


# ---- schemas Gemini cannot take -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "keyword", "path"),
    [
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {}}},
            "$ref",
            "parameters.properties.a",
        ),
        ({"type": "object", "$defs": {"A": {"type": "string"}}}, "$defs", "parameters"),
        (  # an open map (additionalProperties: a schema): Gemini has no such object
            {
                "type": "object",
                "properties": {"tags": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
            "additionalProperties",
            "parameters.properties.tags",
        ),
        (
            {"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}},
            "oneOf",
            "parameters.properties.a",
        ),
        ({"type": "object", "allOf": [{"type": "object"}]}, "allOf", "parameters"),
        (
            {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
            "not",
            "parameters.properties.a",
        ),
        ({"type": "object", "if": {}, "then": {}}, "if", "parameters"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties", "parameters"),
        (
            {
                "type": "object",
                "properties": {"n": {"type": "array", "items": {"type": "number", "multipleOf": 5}}},
            },
            "multipleOf",
            "parameters.properties.n.items",
        ),
        (
            {"type": "object", "properties": {"n": {"type": "number", "exclusiveMinimum": 0}}},
            "exclusiveMinimum",
            "parameters.properties.n",
        ),
        (
            {"type": "object", "properties": {"a": {"type": ["string", "integer"]}}},
            "type",
            "parameters.properties.a",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 2]}}},
            "enum",
            "parameters.properties.a",
        ),
        ({"type": "object", "properties": {"a": {"const": 3}}}, "const", "parameters.properties.a"),
        (
            {"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
            "items",
            "parameters.properties.a",
        ),
        ({"type": "object", "properties": {"a": True}}, "a boolean schema", "parameters.properties.a"),
        (
            {
                "type": "object",
                "properties": {"a": {"anyOf": [{"type": "string"}, {"additionalProperties": {}}]}},
            },
            "additionalProperties",
            "parameters.properties.a.anyOf[1]",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "minLength": "three"}}},
            "minLength",
            "parameters.properties.a",
        ),
    ],
)
def test_a_keyword_gemini_cannot_take_is_refused_naming_tool_keyword_and_path(schema, keyword, path):
    refusal = schema_refusal((WEATHER, ToolSpec("trip", parameters=schema)))

    assert refusal is not None
    assert f"tools[1] (trip): {keyword} at {path}" in refusal
    assert "weather" not in refusal  # the tool that translates is not named


def test_every_problem_of_every_tool_is_counted_and_the_first_gets_a_hint():
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}, "b": {"oneOf": [{"type": "string"}]}},
        "$defs": {"A": {"type": "string"}},
    }
    refusal = schema_refusal((ToolSpec("one", parameters=schema), ToolSpec("two", parameters=schema)))

    assert refusal.startswith("Gemini cannot take these JSON Schema keywords in the tools' parameters: ")
    assert "tools[0] (one): $defs at parameters; tools[0] (one): $ref at parameters.properties.a; " in refusal
    assert "(and 3 more)" in refusal and "For $defs: inline the definitions where they are used." in refusal


def test_what_strict_clients_always_send_is_taken_as_gemini_behaves():
    """OpenAI strict mode and zod (the AI SDK) put additionalProperties: false on every object, and
    zod a $schema: Gemini fills only the declared properties, and annotations constrain nothing."""
    zod = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": False}
        },
        "required": ["a"],
        "additionalProperties": False,
    }
    translated, problems = translate(zod)
    assert problems == []
    assert "additional_properties" not in translated and "additionalProperties" not in str(translated)
    assert translated["properties"]["a"]["properties"]["b"]["type"] in ("STRING", "string")
    assert schema_refusal((ToolSpec("one", parameters=zod),)) is None


def test_a_schema_gemini_takes_is_not_refused():
    assert schema_refusal(TOOLS) is None
    assert translate({"type": "object", "properties": {"a": {"type": "null"}}})[1] == []


def test_the_adapter_checks_tools_for_the_turn_service():
    provider = GeminiProvider(
        default_model="gemini-2.5-flash", api_key=GEMINI_KEY, base_url="http://127.0.0.1:9"
    )
    bad = ToolSpec("trip", parameters={"type": "object", "additionalProperties": {"type": "string"}})

    assert provider.supports_tools and provider.tools_supported("gemini-2.5-pro")
    assert provider.check_tools("gemini-2.5-flash", TOOLS) is None
    assert "tools[0] (trip): additionalProperties at parameters" in provider.check_tools(
        "gemini-2.5-flash", (bad,)
    )
    assert provider.check_tool_choice("gemini-2.5-flash", "required") is None


async def test_the_fake_answers_an_unknown_schema_key_as_gemini_does(fake_upstream):
    """Why the adapter refuses first: the SDK would send ``additional_properties`` and Gemini 400s."""
    client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=fake_upstream.url))
    schema = types.Schema(
        type="OBJECT", properties={"a": types.Schema(type="STRING")}, additional_properties=False
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="f", parameters=schema)])]
    )
    try:
        with pytest.raises(genai_errors.ClientError) as caught:
            await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi", config=config)
    finally:
        await client.aio.aclose()
    assert caught.value.code == 400
    assert 'Unknown name "additional_properties"' in caught.value.message


async def test_the_fake_answers_generate_content_with_the_text_then_the_signed_calls(fake_upstream):
    client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=fake_upstream.url))
    declarations = [
        types.FunctionDeclaration(
            name="clock",
            parameters=types.Schema(type="OBJECT", properties={"zone": types.Schema(type="STRING")}),
        )
    ]
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=declarations)],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    text = "Oslo [[text_first=1]]"
    try:
        response = await client.aio.models.generate_content(model=GEMINI_3, contents=text, config=config)
    finally:
        await client.aio.aclose()
    said, called = response.candidates[0].content.parts
    assert said.text == expected_reply(text) and response.candidates[0].finish_reason == "STOP"
    assert (called.function_call.name, called.function_call.args) == ("clock", {"zone": "Oslo"})
    assert called.thought_signature == raw(thought_signature(0, text))
