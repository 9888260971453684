"""The offline demo provider and client tools: one deterministic call, then a reply to its result."""

from __future__ import annotations

import json
import re

from providers.base import ChatMessage, ProviderRequest, ToolCall, ToolResult, ToolSpec
from providers.demo import DemoProvider

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "ratio": {"type": "number"},
        "metric": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "options": {"type": "object"},
        "anything": {},
    },
}
WEATHER = ToolSpec("weather", "Current weather", SCHEMA)
CLOCK = ToolSpec("clock", parameters={"type": "object", "properties": {"zone": {"type": "string"}}})


def asking(text: str, **fields: object) -> ProviderRequest:
    return ProviderRequest(
        model="demo", messages=(ChatMessage("user", "earlier"), ChatMessage("user", text)), **fields
    )


async def test_offered_tools_the_demo_calls_the_first_with_arguments_from_its_schema():
    chunks = [
        c async for c in DemoProvider(delay=0).stream(asking("  Paris today \n", tools=(WEATHER, CLOCK)))
    ]

    header, first, second = [p for c in chunks for p in c.tool_calls]
    assert (header.index, header.name, header.arguments) == (0, "weather", "")
    assert re.fullmatch(r"call_demo_[0-9a-f]{8}", header.id)
    assert (first.id, first.name, second.id, second.name) == ("", "", "", "")
    arguments = first.arguments + second.arguments
    assert abs(len(first.arguments) - len(second.arguments)) <= 1  # cut in the middle
    assert list(json.loads(arguments).items()) == [
        ("city", "Paris today"),
        ("days", 1),
        ("ratio", 1),
        ("metric", True),
        ("tags", []),
        ("options", {}),
        ("anything", None),
    ]
    assert not any(c.text for c in chunks)
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage.estimated and chunks[-1].usage.output_tokens > 0


async def test_complete_returns_the_demo_call_whole():
    result = await DemoProvider(delay=0).complete(asking("Oslo", tools=(CLOCK,)))

    (call,) = result.tool_calls
    assert (call.name, json.loads(call.arguments), result.text) == ("clock", {"zone": "Oslo"}, "")
    assert result.finish_reason == "tool_calls"


async def test_the_tool_tool_choice_names_is_the_one_called():
    result = await DemoProvider(delay=0).complete(
        asking("Rome", tools=(WEATHER, CLOCK), tool_choice={"name": "clock"})
    )

    assert [c.name for c in result.tool_calls] == ["clock"]


async def test_tool_choice_none_gets_the_usual_text_reply():
    result = await DemoProvider(delay=0).complete(asking("Rome", tools=(WEATHER,), tool_choice="none"))

    assert result.tool_calls == () and result.finish_reason == "stop"
    assert "> Rome" in result.text


async def test_tools_offered_after_an_assistant_message_get_text():
    request = ProviderRequest(
        model="demo", messages=(ChatMessage("user", "hi"), ChatMessage("assistant", "ok")), tools=(WEATHER,)
    )

    result = await DemoProvider(delay=0).complete(request)

    assert result.tool_calls == () and result.finish_reason == "stop"


async def test_a_tool_message_is_answered_with_what_each_tool_returned():
    request = ProviderRequest(
        model="demo",
        messages=(
            ChatMessage("user", "Paris"),
            ChatMessage(
                "assistant", "", tool_calls=(ToolCall("c1", "weather", "{}"), ToolCall("c2", "", "{}"))
            ),
            ChatMessage(
                "tool",
                "",
                tool_results=(
                    ToolResult("c1", "21 C", name="weather"),
                    ToolResult("c2", "failed", is_error=True),
                ),
            ),
        ),
        tools=(WEATHER,),
    )
    chunks = [c async for c in DemoProvider(delay=0).stream(request)]

    assert "".join(c.text for c in chunks) == (
        "The tool weather returned: 21 C\n"
        "The tool tool returned: failed\n"
        "(offline demo provider: no language model was called.)"
    )
    assert all(len(c.text.split()) <= 1 for c in chunks)  # word pieces, as for any reply
    assert chunks[-1].finish_reason == "stop" and not any(c.tool_calls for c in chunks)


async def test_a_tool_message_in_json_mode_gets_a_json_reply():
    request = ProviderRequest(
        model="demo",
        messages=(ChatMessage("tool", "", tool_results=(ToolResult("c1", "21 C", name="weather"),)),),
        json_output=True,
    )

    data = json.loads((await DemoProvider(delay=0).complete(request)).text)

    assert data["tool_results"] == [{"name": "weather", "output": "21 C"}]


def test_the_demo_declares_tools():
    assert DemoProvider(delay=0).tools_supported("demo")
