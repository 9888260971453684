"""Client tools through ``POST /v1/responses``, as OpenAI's Responses API and SDK do them.

The codec reads flat ``tools``, ``tool_choice``, ``parallel_tool_calls`` and ``input`` with the
client's ``function_call`` and ``function_call_output`` items; an answer that called tools is a
``completed`` response with ``function_call`` output items, streamed as OpenAI streams them. End to
end, the official openai SDK drives a live server whose provider is the fake upstream (through
OpenAI chat, the Responses adapter, or the offline demo): streamed and not, the SDK's stream
helper, a round continued with ``previous_response_id`` (and a branch from an older response),
the whole transcript resent instead, a resume inside a call's arguments, input items, background
responses, a cut stream, and refusals that store nothing.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from openai import APIStatusError

from accounts.callers import Caller
from conversations.codecs.base import Inbound
from conversations.codecs.openai_response_input import read_input
from conversations.codecs.openai_responses import OpenAIResponsesCodec
from conversations.edge.http_errors import HttpError
from conversations.events import (
    Completed,
    Delta,
    Failed,
    Started,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStarted,
    UsageReported,
)
from conversations.models import Conversation, Message
from conversations.turns.responses import response_for_owner
from conversations.turns.stored_replay import stored_turn_events
from conversations.wire.openai_response_events import ResponseEventEncoder
from conversations.wire.openai_response_store import stored_shell
from conversations.wire.openai_responses import ResponseShell, response_id
from providers.base import ChatMessage, ToolCall, ToolResult, ToolSpec
from tests.fake_upstream import expected_reply, expected_tool_arguments, expected_tool_reply
from tests.test_openai_responses import answer_id

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
TIME_SCHEMA = {
    "type": "object",
    "properties": {"zone": {"type": "string"}},
    "required": ["zone"],
    "additionalProperties": False,
}


def tool(name: str, parameters: dict | None = None, **extra) -> dict:
    return {
        "type": "function",
        "name": name,
        "description": f"the {name} tool",
        "parameters": parameters or SCHEMA,
    } | extra


WEATHER, TIME = tool("weather"), tool("time", TIME_SCHEMA)


def call_item(call_id: str, name: str = "weather", arguments: str = '{"city":"Paris","days":1}') -> dict:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def output_item(call_id: str, output) -> dict:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


USER = {"role": "user", "content": "Paris?"}


# --- decoding ------------------------------------------------------------------------------------
def inbound(body: dict) -> Inbound:
    return Inbound(headers={}, body=body, caller=Caller(owner_id=7, ip="1.2.3.4"), params={}, received_at=0.0)


def decode(body: dict):
    return asyncio.run(OpenAIResponsesCodec().decode(inbound(body)))


def refusal(body: dict) -> HttpError:
    with pytest.raises(HttpError) as refused:
        decode(body)
    return refused.value


def test_the_codec_offers_flat_tools_the_choice_and_the_parallel_flag():
    turn = decode(
        {
            "input": "Paris?",
            "tools": [tool("weather", strict=True), TIME],
            "tool_choice": {"type": "function", "name": "time"},
            "parallel_tool_calls": False,
        }
    )
    request = turn.request
    assert request.tools == (
        ToolSpec("weather", "the weather tool", SCHEMA, True),
        ToolSpec("time", "the time tool", TIME_SCHEMA, None),
    )
    assert (request.tool_choice, request.parallel_tool_calls) == ({"name": "time"}, False)
    assert turn.options["tools"][0] == {
        "type": "function",
        "name": "weather",
        "description": "the weather tool",
        "parameters": SCHEMA,
        "strict": True,
    }
    assert (turn.options["tool_choice"], turn.options["parallel_tool_calls"]) == (
        {"type": "function", "name": "time"},
        False,
    )
    for choice in ("none", "auto", "required"):
        assert decode({"input": "x", "tools": [WEATHER], "tool_choice": choice}).request.tool_choice == choice


def test_a_transcript_with_calls_and_outputs_is_the_context_ending_in_the_results():
    transcript = [
        {"role": "developer", "content": "Be brief."},
        USER,
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        call_item("c1"),
        {**call_item("c2", "time", "{}"), "id": "fc_1", "status": "completed"},  # as the output lists it
        output_item("c1", "sunny"),
        output_item("c2", [{"type": "input_text", "text": "no"}, {"type": "input_text", "text": "on"}]),
    ]
    request = decode({"input": transcript, "tools": [WEATHER, TIME]}).request
    results = (ToolResult("c1", "sunny", name="weather"), ToolResult("c2", "noon", name="time"))
    assert request.tool_results == results and request.continues_tools
    assert request.system == "Be brief." and request.session_key.startswith("resp-")
    assert request.context == (
        ChatMessage("user", "Paris?"),
        ChatMessage(
            "assistant",
            "Looking.",
            (ToolCall("c1", "weather", '{"city":"Paris","days":1}'), ToolCall("c2", "time", "{}")),
        ),
        ChatMessage("tool", "", tool_results=results),
    )


def test_with_previous_response_id_only_the_outputs_go_as_a_tool_message():
    parsed = read_input([output_item("c1", "sunny"), output_item("c2", "noon")], continued=True)
    assert parsed.messages == (
        ChatMessage("tool", "", tool_results=(ToolResult("c1", "sunny"), ToolResult("c2", "noon"))),
    )
    assert [i["type"] for i in parsed.items] == ["function_call_output"] * 2


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools_not_supported", "'web_search' tool"),
        (
            {"input": "x", "tools": [{"type": "mcp", "server_label": "s"}]},
            "tools_not_supported",
            "'mcp' tool",
        ),
        (
            {
                "input": "x",
                "tools": [WEATHER],
                "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []},
            },
            "tools_not_supported",
            "allowed_tools",
        ),
        (
            {"input": [USER, {"type": "web_search_call", "id": "ws_1"}]},
            "tools_not_supported",
            "input[1] is a web_search_call",
        ),
        ({"input": [USER, {"type": "mcp_call", "id": "m"}]}, "tools_not_supported", "input[1] is a mcp_call"),
        (
            {"input": [USER, call_item("c1"), output_item("c1", "x"), {"type": "custom_tool_call_output"}]},
            "tools_not_supported",
            "input[3] is a custom_tool_call_output",
        ),
        (
            {"input": [output_item("c1", "x")]},
            "invalid_tool_results",
            "input[0] answers the call 'c1' but follows no function_call",
        ),
        (
            {"input": [USER, call_item("c1"), output_item("c9", "x")]},
            "invalid_tool_results",
            "'c9', which the function_call items",
        ),
        (
            {"input": [USER, call_item("c1"), call_item("c2"), output_item("c1", "x"), USER]},
            "invalid_tool_results",
            "the calls c2 (from input[1]) have no function_call_output",
        ),
        ({"input": [USER, call_item("c1")]}, "invalid_tool_results", "the calls c1 (from input[1])"),
        (
            {"input": [USER, call_item("c1"), output_item("c1", "a"), output_item("c1", "b")]},
            "invalid_input",
            "input[3] is a second function_call_output for the call 'c1'",
        ),
        (
            {
                "input": [
                    USER,
                    call_item("c1"),
                    output_item("c1", [{"type": "input_image", "image_url": "u"}]),
                ]
            },
            "attachments_not_supported",
            "input[2].output[0] is input_image",
        ),
        (
            {"input": [USER, call_item("c1"), output_item("c1", 7)]},
            "invalid_input",
            "input[2].output must be",
        ),
        (
            {"input": [USER, {"type": "function_call", "name": "f", "arguments": "{}"}]},
            "invalid_input",
            "input[1].call_id",
        ),
        (
            {"input": [USER, {"type": "reasoning", "summary": []}]},
            "invalid_input",
            "input[1] must be a message item",
        ),
    ],
)
def test_tool_input_that_does_not_fit_is_refused_naming_the_item(body, code, words):
    error = refusal(body)
    assert (error.status, error.code) == (422, code)
    assert error.details["field"] in ("input", "tools", "tool_choice")
    assert words in error.message, error.message


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([call_item("c1"), output_item("c1", "x")], "leave its function_call items out"),
        ([output_item("c1", "x"), USER], "not both"),
        (
            [output_item("c1", "x"), output_item("c1", "y")],
            "Two function_call_output items answer the call 'c1'",
        ),
    ],
)
def test_with_previous_response_id_the_calls_are_the_stored_ones(items, words):
    with pytest.raises(HttpError) as refused:
        read_input(items, continued=True)
    assert refused.value.code == "invalid_input" and words in refused.value.message


# --- encoding ------------------------------------------------------------------------------------
MID = "0b7f3c2e-9d1a-4c55-8e0f-3a9b6c1d2e4f"
HEX = MID.replace("-", "")
SHELL = ResponseShell(response_id(MID), 7, "g")
STARTED = Started(
    1, MID, session_key="s", conversation_id="c", user_message_id="u", provider="openai", model="g"
)
TEXT_AND_CALLS = [
    STARTED,
    Delta(2, MID, "Looking."),
    ToolCallStarted(3, MID, 0, "call_a", "weather"),
    ToolCallDelta(4, MID, 0, "call_a", '{"city":'),
    ToolCallDelta(5, MID, 0, "call_a", '"Paris"}'),
    ToolCallStarted(6, MID, 1, "call_b", "time"),
    ToolCallDelta(7, MID, 1, "call_b", "{}"),
    ToolCallDone(8, MID, 0, "call_a", "weather", '{"city":"Paris"}', {"city": "Paris"}),
    ToolCallDone(9, MID, 1, "call_b", "time", "{}", {}),
    UsageReported(10, MID, 5, 4, 9, False),
    Completed(11, MID, "Looking.", "tool_calls", "r1", "openai", "g"),
]


def encode(events, **options) -> list[dict]:
    encoder = ResponseEventEncoder(SHELL, **options)
    out = b"".join(encoder.encode(e.to_dict()) for e in events)
    frames = [f for f in out.split(b"\n\n") if f]
    parsed = []
    for frame in frames:
        kind, data = frame.split(b"\n")
        event = json.loads(data.removeprefix(b"data: "))
        assert kind == b"event: " + event["type"].encode()
        parsed.append(event)
    return parsed


def test_text_then_calls_stream_as_items_one_after_the_other():
    events = encode(TEXT_AND_CALLS)
    assert [(e["type"], e.get("output_index")) for e in events] == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[8]["item"] == {
        "id": f"fc_{HEX}_0",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_a",
        "name": "weather",
    }
    assert events[9] | {"sequence_number": 0} == {
        "type": "response.function_call_arguments.delta",
        "sequence_number": 0,
        "item_id": f"fc_{HEX}_0",
        "output_index": 1,
        "delta": '{"city":',
    }
    assert events[13]["arguments"] == '{"city":"Paris"}' and events[13]["item_id"] == f"fc_{HEX}_0"
    assert (
        events[14]["item"]["status"] == "completed" and events[14]["item"]["arguments"] == '{"city":"Paris"}'
    )
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["output_text"] == "Looking."
    assert [(i["type"], i["id"], i["status"]) for i in final["output"]] == [
        ("message", f"msg_{HEX}", "completed"),
        ("function_call", f"fc_{HEX}_0", "completed"),
        ("function_call", f"fc_{HEX}_1", "completed"),
    ]


def test_an_answer_that_only_calls_has_no_message_item():
    events = encode(
        [
            STARTED,
            *TEXT_AND_CALLS[2:5],
            TEXT_AND_CALLS[7],
            *TEXT_AND_CALLS[9:10],
            Completed(11, MID, "", "tool_calls", "r1", "openai", "g"),
        ]
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["output_index"] == 0
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["function_call"]


def test_the_same_turn_encoded_again_numbers_its_events_alike_and_resumes_inside_the_arguments():
    whole = encode(TEXT_AND_CALLS)
    assert encode(TEXT_AND_CALLS) == whole
    inside = next(
        e["sequence_number"] for e in whole if e["type"] == "response.function_call_arguments.delta"
    )
    assert encode(TEXT_AND_CALLS, starting_after=inside) == whole[inside + 1 :]


def test_a_call_cut_mid_arguments_is_never_done_and_shows_incomplete():
    cut = [
        STARTED,
        *TEXT_AND_CALLS[2:4],
        UsageReported(5, MID, 5, 1, 6, True),
        Failed(6, MID, "failed", "provider_unavailable", "gone", ""),
    ]
    events = encode(cut)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.failed",
    ]
    (item,) = events[-1]["response"]["output"]
    assert (item["type"], item["status"], item["arguments"]) == ("function_call", "incomplete", '{"city":')


# --- end to end: the openai SDK against the live server ------------------------------------------
live = pytest.mark.django_db(transaction=True)


def run_tool(name: str, arguments: str) -> str:
    """The client's own tool: what a real app would run locally."""
    values = json.loads(arguments)
    return f"{name}:{values.get('city') or values.get('zone')}"


def outputs_for(response) -> list[dict]:
    return [
        output_item(item.call_id, run_tool(item.name, item.arguments))
        for item in response.output
        if item.type == "function_call"
    ]


@live
def test_a_call_not_streamed_is_a_completed_response_with_a_function_call_item(sdk, openai_upstream):
    text = "Oslo [[tools=weather]]"
    response = sdk.responses.create(model="gpt-test", input=text, tools=[WEATHER])
    assert response.status == "completed" and response.output_text == ""
    (called,) = response.output
    arguments = expected_tool_arguments(SCHEMA, text)
    assert (called.type, called.name, called.arguments, called.status) == (
        "function_call",
        "weather",
        arguments,
        "completed",
    )
    hexid = response.id.removeprefix("resp_")
    assert called.id == f"fc_{hexid}_0" and called.call_id.startswith("call_0_")
    assert response.tools[0].name == "weather" and response.tool_choice == "auto"
    sent = openai_upstream.requests[-1].json
    assert sent["tools"] == [
        {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
    ]
    answer = Message.objects.get(pk=answer_id(response.id))
    assert (answer.status, answer.finish_reason) == ("complete", "tool_calls")
    assert answer.parts == [
        {
            "type": "tool_call",
            "id": called.call_id,
            "name": "weather",
            "arguments": arguments,
            "input": json.loads(arguments),
        }
    ]
    assert sdk.responses.retrieve(response.id).output == response.output


@live
def test_a_streamed_call_is_added_fragmented_done_and_completed(sdk):
    text = "Rome [[tools=weather]]"
    events = list(sdk.responses.create(model="gpt-test", input=text, tools=[WEATHER], stream=True))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * 3,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added, done = events[2].item, events[-2].item
    assert (added.type, added.status, added.arguments, added.name) == (
        "function_call",
        "in_progress",
        "",
        "weather",
    )
    arguments = expected_tool_arguments(SCHEMA, text)
    assert "".join(e.delta for e in events[3:6]) == arguments == events[6].arguments == done.arguments
    assert {e.item_id for e in events[3:7]} == {added.id} and {e.output_index for e in events[3:7]} == {0}
    assert (done.status, done.call_id, done.id) == ("completed", added.call_id, added.id)
    final = events[-1].response
    assert final.status == "completed" and final.output == [done]


@live
def test_the_sdk_stream_helper_accumulates_text_and_parallel_calls(sdk):
    text = "Lima [[tools=weather,time text_first=1 chunks=2]]"
    with sdk.responses.stream(model="gpt-test", input=text, tools=[WEATHER, TIME]) as stream:
        deltas = [e for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    assert deltas[2].snapshot == expected_tool_arguments(SCHEMA, text)
    assert deltas[-1].snapshot == expected_tool_arguments(TIME_SCHEMA, text)
    message, weather, clock = final.output
    assert message.type == "message" and final.output_text == expected_reply(text)
    assert (weather.name, weather.arguments) == ("weather", deltas[2].snapshot)
    assert (clock.name, clock.arguments) == ("time", deltas[-1].snapshot)


@live
def test_a_round_continued_with_previous_response_id(sdk, openai_upstream):
    first = sdk.responses.create(model="gpt-test", input="Paris [[tools=weather]]", tools=[WEATHER])
    outputs = outputs_for(first)
    second = sdk.responses.create(
        model="gpt-test", previous_response_id=first.id, input=outputs, tools=[WEATHER]
    )
    assert second.status == "completed" and second.previous_response_id == first.id
    assert second.output_text == expected_tool_reply(["weather:Paris"])
    assert [i.type for i in second.output] == ["message"]
    sent = openai_upstream.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == outputs[0]["call_id"]
    assert sent[2] == {"role": "tool", "tool_call_id": outputs[0]["call_id"], "content": "weather:Paris"}
    called = Message.objects.get(pk=answer_id(first.id))
    tool_message = Message.objects.get(role="tool")
    assert (tool_message.parent_id, tool_message.conversation_id) == (called.pk, called.conversation_id)
    [part] = tool_message.parts  # its name: the turn core's (from the call it answers), as natively
    assert {k: v for k, v in part.items() if k != "name"} == {
        "type": "tool_result",
        "call_id": outputs[0]["call_id"],
        "output": "weather:Paris",
        "is_error": False,
    }
    final = Message.objects.get(pk=answer_id(second.id))
    assert (final.parent_id, final.finish_reason, final.content) == (
        tool_message.pk,
        "stop",
        second.output_text,
    )
    items = sdk.responses.input_items.list(second.id)
    assert [(i.type, i.call_id, i.output) for i in items.data] == [
        ("function_call_output", outputs[0]["call_id"], "weather:Paris")
    ]
    assert items.data[0].id.startswith("fco_")


@live
def test_branching_from_an_older_response_answers_its_calls_again(sdk, openai_upstream):
    first = sdk.responses.create(
        model="gpt-test", input="Tokyo [[tools=weather,time]]", tools=[WEATHER, TIME]
    )
    call_ids = [i.call_id for i in first.output]
    b = sdk.responses.create(
        model="gpt-test",
        previous_response_id=first.id,
        input=[output_item(c, "one") for c in call_ids],
        tools=[WEATHER, TIME],
    )
    sdk.responses.create(model="gpt-test", previous_response_id=b.id, input="thanks")
    c = sdk.responses.create(
        model="gpt-test",
        previous_response_id=first.id,
        input=[output_item(c, "two") for c in call_ids],
        tools=[WEATHER, TIME],
    )
    assert c.output_text == expected_tool_reply(["two", "two"])
    sent = openai_upstream.requests[-1].json["messages"]
    assert [(m["role"], m.get("content")) for m in sent[2:]] == [("tool", "two"), ("tool", "two")]
    tool_messages = Message.objects.filter(role="tool").order_by("created_at")
    assert [m.parent_id for m in tool_messages] == [answer_id(first.id)] * 2
    assert Message.objects.filter(conversation=tool_messages[0].conversation).count() == 8


@live
def test_the_whole_transcript_resent_without_previous_response_id(sdk, openai_upstream):
    text = "Bern [[tools=weather text_first=1 chunks=2]]"
    first = sdk.responses.create(model="gpt-test", input=text, tools=[WEATHER])
    transcript = [
        {"role": "user", "content": text},
        *[i.model_dump(exclude_none=True) for i in first.output],
        *outputs_for(first),
    ]
    second = sdk.responses.create(model="gpt-test", input=transcript, tools=[WEATHER], stream=True)
    events = list(second)
    assert events[-1].response.output_text == expected_tool_reply(["weather:Bern"])
    sent = openai_upstream.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert (
        sent[1]["content"] == expected_reply(text)
        and sent[1]["tool_calls"][0]["function"]["name"] == "weather"
    )
    final = Message.objects.get(pk=answer_id(events[-1].response.id))
    assert final.conversation_id != Message.objects.get(pk=answer_id(first.id)).conversation_id
    listed = sdk.responses.input_items.list(events[-1].response.id, order="asc")
    assert [i.type for i in listed.data] == ["message", "message", "function_call", "function_call_output"]
    assert listed.data[2].call_id == listed.data[3].call_id == first.output[1].call_id


@live
def test_retrieve_resumes_inside_a_calls_arguments(sdk):
    events = list(
        sdk.responses.create(
            model="gpt-test", input="Kyiv [[tools=weather,time]]", tools=[WEATHER, TIME], stream=True
        )
    )
    response_id_ = events[-1].response.id
    fragments = [e.sequence_number for e in events if e.type == "response.function_call_arguments.delta"]
    for n in (fragments[1], fragments[4]):
        rest = list(sdk.responses.retrieve(response_id_, stream=True, starting_after=n))
        assert [e.model_dump() for e in rest] == [e.model_dump() for e in events[n + 1 :]]
    assert [e.output_index for e in events if e.type == "response.output_item.added"] == [0, 1]


@live
def test_parallel_calls_and_their_outputs(sdk, openai_upstream):
    first = sdk.responses.create(
        model="gpt-test", input="Tokyo [[tools=weather,time]]", tools=[WEATHER, TIME]
    )
    assert [i.name for i in first.output] == ["weather", "time"]
    assert len({i.call_id for i in first.output}) == 2 and len({i.id for i in first.output}) == 2
    second = sdk.responses.create(model="gpt-test", previous_response_id=first.id, input=outputs_for(first))
    assert second.output_text == expected_tool_reply(["weather:Tokyo", "time:Tokyo"])
    only_one = sdk.responses.create(
        model="gpt-test",
        input="Tokyo [[tools=weather,time]]",
        tools=[WEATHER, TIME],
        parallel_tool_calls=False,
    )
    assert [i.name for i in only_one.output] == ["weather"] and only_one.parallel_tool_calls is False
    assert openai_upstream.requests[-1].json["parallel_tool_calls"] is False


@live
@pytest.mark.parametrize(
    ("choice", "sent", "called"),
    [
        ("required", "required", "weather"),
        ({"type": "function", "name": "time"}, {"type": "function", "function": {"name": "time"}}, "time"),
        ("none", "none", None),
    ],
)
def test_each_tool_choice_reaches_the_model(sdk, openai_upstream, choice, sent, called):
    response = sdk.responses.create(model="gpt-test", input="Kyiv", tools=[WEATHER, TIME], tool_choice=choice)
    assert openai_upstream.requests[-1].json["tool_choice"] == sent
    names = [i.name for i in response.output if i.type == "function_call"]
    assert names == ([called] if called else [])
    assert response.tool_choice == choice if isinstance(choice, str) else response.tool_choice.name == "time"
    if called is None:
        assert response.output_text == expected_reply("Kyiv")


@live
def test_a_background_response_ending_in_calls_completes_with_the_items(sdk):
    created = sdk.responses.create(
        model="gpt-test", input="Riga [[tools=weather delay=0.05]]", tools=[WEATHER], background=True
    )
    deadline = time.monotonic() + 10
    response = created
    while response.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.1)
        response = sdk.responses.retrieve(created.id)
    assert response.status == "completed" and response.background is True
    (called,) = response.output
    assert (called.type, called.status) == ("function_call", "completed")
    assert called.arguments == expected_tool_arguments(SCHEMA, "Riga [[tools=weather delay=0.05]]")
    events = list(sdk.responses.retrieve(created.id, stream=True))
    assert events[0].response.status == "queued" and events[-1].response.output == [called]


@live
def test_a_running_response_shows_its_call_so_far(sdk):
    text = "Oslo [[tools=weather delay=0.3]]"
    created = sdk.responses.create(model="gpt-test", input=text, tools=[WEATHER], background=True)
    deadline, running = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        running = sdk.responses.retrieve(created.id)
        if running.status != "in_progress" or running.output:
            break
        time.sleep(0.05)
    assert running.status == "in_progress"
    (item,) = running.output
    assert (item.type, item.status, item.name) == ("function_call", "in_progress", "weather")
    assert expected_tool_arguments(SCHEMA, text).startswith(item.arguments)
    sdk.responses.cancel(created.id)


@live
def test_a_stream_cut_mid_arguments_fails_and_shows_the_call_incomplete(sdk):
    text = "Paris [[tools=weather fault=drop:2]]"
    events = list(sdk.responses.create(model="gpt-test", input=text, tools=[WEATHER], stream=True))
    types = [e.type for e in events]
    assert types[-1] == "response.failed" and "response.function_call_arguments.done" not in types
    (item,) = events[-1].response.output
    assert item.status == "incomplete" and expected_tool_arguments(SCHEMA, text).startswith(item.arguments)
    assert sdk.responses.retrieve(events[-1].response.id).output[0].status == "incomplete"
    answer = Message.objects.get(pk=answer_id(events[-1].response.id))
    assert answer.status == "failed" and answer.parts[0]["incomplete"] is True


def refused(call) -> dict:
    before = (Message.objects.count(), Conversation.objects.count())
    with pytest.raises(APIStatusError) as info:
        call()
    assert 400 <= info.value.status_code < 500
    assert (Message.objects.count(), Conversation.objects.count()) == before
    return {**info.value.body, "status": info.value.status_code}


@live
def test_a_non_function_tool_is_refused_storing_nothing(sdk, openai_upstream):
    body = refused(lambda: sdk.responses.create(model="gpt-test", input="x", tools=[{"type": "web_search"}]))
    assert (body["status"], body["code"], body["param"], body["type"]) == (
        422,
        "tools_not_supported",
        "tools",
        "invalid_request_error",
    )
    assert "web_search" in body["message"]
    assert openai_upstream.requests == []


@live
def test_an_output_for_a_call_the_response_did_not_make_is_refused_storing_nothing(sdk, openai_upstream):
    first = sdk.responses.create(model="gpt-test", input="Paris [[tools=weather]]", tools=[WEATHER])
    calls = len(openai_upstream.requests)
    body = refused(
        lambda: sdk.responses.create(
            model="gpt-test", previous_response_id=first.id, input=[output_item("call_nope", "x")]
        )
    )
    assert (body["status"], body["code"], body["param"]) == (422, "invalid_tool_results", "tool_results")
    assert "call_nope" in body["message"]
    body = refused(
        lambda: sdk.responses.create(model="gpt-test", input=[USER, call_item("c1"), output_item("c2", "x")])
    )
    assert (body["status"], body["code"]) == (422, "invalid_tool_results")
    assert len(openai_upstream.requests) == calls


@live
def test_outputs_for_calls_already_answered_are_refused_storing_nothing(sdk, openai_upstream):
    first = sdk.responses.create(model="gpt-test", input="Paris [[tools=weather]]", tools=[WEATHER])
    second = sdk.responses.create(model="gpt-test", previous_response_id=first.id, input=outputs_for(first))
    body = refused(
        lambda: sdk.responses.create(
            model="gpt-test", previous_response_id=second.id, input=outputs_for(first)
        )
    )
    assert (body["status"], body["code"], body["param"]) == (409, "tool_calls_answered", "tool_results")
    assert first.output[0].call_id in body["message"]


@live
def test_the_demo_provider_runs_a_round_through_the_endpoint(sdk, settings):
    settings.DEMO_DELAY = 0
    first = sdk.responses.create(
        model="demo:demo",
        input="Bern",
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "name": "time"},
        stream=True,
    )
    events = list(first)
    (called,) = events[-1].response.output
    assert (called.type, called.name) == ("function_call", "time") and called.call_id.startswith("call_demo_")
    assert json.loads(called.arguments) == {"zone": "Bern"}
    second = sdk.responses.create(
        model="demo:demo",
        previous_response_id=events[-1].response.id,
        input=[output_item(called.call_id, "14:00")],
    )
    assert "The tool time returned: 14:00" in second.output_text


@live
def test_the_responses_adapter_chains_the_round_upstream(sdk, openai_upstream, settings):
    """The server's provider is the Responses adapter: the round continues upstream with the
    upstream's ``previous_response_id`` and only the ``function_call_output`` items."""
    first = sdk.responses.create(
        model="openai-responses:gpt-test", input="Quito [[tools=weather]]", tools=[WEATHER]
    )
    (called,) = first.output
    upstream_first = openai_upstream.requests[-1].json
    assert upstream_first["tools"] == [WEATHER | {"strict": False}]
    second = sdk.responses.create(
        model="openai-responses:gpt-test", previous_response_id=first.id, input=outputs_for(first)
    )
    assert second.output_text == expected_tool_reply(["weather:Quito"])
    sent = openai_upstream.requests[-1].json
    assert sent["previous_response_id"] == Message.objects.get(pk=answer_id(first.id)).response_id
    assert sent["input"] == [output_item(called.call_id, "weather:Quito")]


@live
def test_plain_http_sees_openais_function_call_item(asgi_server, openai_upstream):
    body = {"model": "gpt-test", "input": "Paris [[tools=weather]]", "tools": [WEATHER]}
    response = httpx.post(f"{asgi_server.url}/v1/responses", json=body, timeout=20).json()
    (item,) = response["output"]
    assert set(item) == {"id", "type", "status", "arguments", "call_id", "name"}
    assert response["status"] == "completed" and response["output_text"] == ""


@live
def test_a_user_message_instead_of_the_outputs_sends_the_history_without_the_calls(sdk, openai_upstream):
    """Through the Responses adapter: no provider chains past calls the input leaves unanswered
    (OpenAI: 400 "No tool output found"), so the turn does not chain (rules.skips_calls): it sends
    the history, which leaves the unanswered calls out. One upstream request, none refused."""
    first = sdk.responses.create(
        model="openai-responses:gpt-test", input="Quito [[tools=weather]]", tools=[WEATHER]
    )
    asked = len(openai_upstream.requests)
    second = sdk.responses.create(
        model="openai-responses:gpt-test", previous_response_id=first.id, input="never mind"
    )
    assert second.output_text == expected_reply("never mind")
    assert len(openai_upstream.requests) == asked + 1
    sent = openai_upstream.requests[-1].json
    assert "previous_response_id" not in sent
    assert [i.get("type", "message") for i in sent["input"]] == ["message", "message", "message"]
    assert [i["role"] for i in sent["input"]] == ["user", "assistant", "user"]


@live
def test_a_stored_answer_replayed_streams_the_same_items(sdk):
    """Once the replay buffer has expired, retrieve(stream=True) re-derives the events from the
    stored answer: each call whole, with the same item ids and final output as the live stream."""
    text = "Kyiv [[tools=weather,time text_first=1 chunks=2]]"
    live_events = list(sdk.responses.create(model="gpt-test", input=text, tools=[WEATHER, TIME], stream=True))
    final = live_events[-1].response
    found = response_for_owner(None, str(answer_id(final.id)))
    encoder = ResponseEventEncoder(stored_shell(found))
    frames = b"".join(encoder.encode(e.to_dict()) for e in stored_turn_events(found.message_id))
    replayed = [json.loads(f.split(b"\n")[1].removeprefix(b"data: ")) for f in frames.split(b"\n\n") if f]
    added = [e["item"]["id"] for e in replayed if e["type"] == "response.output_item.added"]
    assert added == [i.id for i in final.output]
    assert replayed[-1]["response"]["output"] == [i.model_dump(exclude_none=True) for i in final.output]
