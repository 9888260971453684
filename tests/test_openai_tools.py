"""Client tools through ``POST /v1/chat/completions``, as OpenAI's API and SDK do them.

The codec reads ``tools``/``tool_choice``/``parallel_tool_calls`` and a transcript with assistant
``tool_calls`` and ``tool`` messages; the encoders send calls as OpenAI streams them. End to end, the
official openai SDK drives a live server whose provider is the fake upstream (it calls the offered
tools, and answers tool results with ``expected_tool_reply``): streamed and not, a two-round loop in
both styles (the whole history each time, or a server-side session), parallel calls, the
``tool_choice`` forms, refusals that store nothing, and a stream cut mid-arguments.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from openai import APIError, APIStatusError

from accounts.callers import Caller
from conversations.codecs.base import Inbound
from conversations.codecs.messages import read_messages
from conversations.codecs.openai_chat import OpenAIChatCodec
from conversations.edge.http_errors import HttpError
from conversations.events import (
    Completed,
    Delta,
    Started,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStarted,
    UsageReported,
)
from conversations.models import Conversation, Message
from conversations.wire.openai_chat import ChatChunkEncoder, chat_completion
from conversations.wire.summary import summarize_turn
from providers.base import ChatMessage, ToolCall, ToolResult, ToolSpec
from tests.fake_upstream import expected_reply, expected_tool_arguments, expected_tool_reply
from tests.js_clients import run_js

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
    function = {"name": name, "description": f"the {name} tool", "parameters": parameters or SCHEMA}
    return {"type": "function", "function": function | extra}


WEATHER, TIME = tool("weather"), tool("time", TIME_SCHEMA)


def call(call_id: str, name: str = "weather", arguments: str = '{"city":"Paris","days":1}') -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def result(call_id: str, content) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


USER = {"role": "user", "content": "Paris?"}


# --- decoding ------------------------------------------------------------------------------------
def inbound(body: dict, **headers: str) -> Inbound:
    return Inbound(
        headers=headers, body=body, caller=Caller(owner_id=7, ip="1.2.3.4"), params={}, received_at=0.0
    )


def decode(body: dict, **headers: str):
    return asyncio.run(OpenAIChatCodec().decode(inbound(body, **headers)))


def decode_refusal(body: dict) -> HttpError:
    with pytest.raises(HttpError) as refused:
        decode(body)
    return refused.value


def test_the_codec_offers_the_tools_the_choice_and_the_parallel_flag():
    request = decode(
        {
            "messages": [USER],
            "tools": [tool("weather", strict=True), TIME],
            "tool_choice": {"type": "function", "function": {"name": "time"}},
            "parallel_tool_calls": False,
        }
    )
    assert request.tools == (
        ToolSpec("weather", "the weather tool", SCHEMA, True),
        ToolSpec("time", "the time tool", TIME_SCHEMA, None),
    )
    assert (request.tool_choice, request.parallel_tool_calls) == ({"name": "time"}, False)
    assert (request.content, request.tool_results) == ("Paris?", ())
    for choice in ("none", "auto", "required"):
        request = decode({"messages": [USER], "tools": [WEATHER], "tool_choice": choice})
        assert (request.tool_choice, request.parallel_tool_calls) == (choice, None)  # absent: the default
    assert decode({"messages": [USER], "tools": [WEATHER]}).tool_choice is None


def test_empty_tools_ask_for_nothing():
    request = decode({"messages": [USER], "tools": [], "tool_choice": "auto", "parallel_tool_calls": True})
    assert (request.tools, request.tool_choice, request.parallel_tool_calls) == ((), None, None)


def test_a_continuation_is_the_trailing_tool_messages_with_the_transcript_as_context():
    messages = [
        {"role": "system", "content": "Be brief."},
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call("c1"), call("c2", "time", "{}")]},
        result("c1", "sunny"),
        result("c2", [{"type": "text", "text": "noon"}]),
    ]
    request = decode({"messages": messages, "tools": [WEATHER, TIME]}, **{"X-Session-Id": "s1"})
    results = (ToolResult("c1", "sunny", name="weather"), ToolResult("c2", "noon", name="time"))
    assert request.tool_results == results and request.content == ""
    assert request.continues_tools and request.system == "Be brief." and request.session_key == "s1"
    assert request.context == (
        ChatMessage("user", "Paris?"),
        ChatMessage(
            "assistant",
            "",
            (ToolCall("c1", "weather", '{"city":"Paris","days":1}'), ToolCall("c2", "time", "{}")),
        ),
        ChatMessage("tool", "", tool_results=results),  # the two tool messages: one message
    )


def test_an_earlier_round_stays_in_the_context_and_text_beside_calls_is_kept():
    messages = [
        USER,
        {"role": "assistant", "content": "Let me look.", "tool_calls": [call("c1")]},
        result("c1", "sunny"),
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": "And tomorrow?"},
    ]
    request = decode({"messages": messages, "tools": [WEATHER]})
    assert request.tool_results == () and request.content == "And tomorrow?"
    assert [m.role for m in request.context] == ["user", "assistant", "tool", "assistant", "user"]
    assert request.context[1].content == "Let me look." and request.context[1].tool_calls[0].id == "c1"


@pytest.mark.parametrize(
    ("messages", "code", "param", "words"),
    [
        (  # a result for a call the assistant message did not make
            [USER, {"role": "assistant", "tool_calls": [call("c1")]}, result("c9", "x")],
            "invalid_tool_results",
            "messages[2]",
            "'c9', which messages[1] did not make",
        ),
        (  # two results for one call
            [
                USER,
                {"role": "assistant", "tool_calls": [call("c1"), call("c2")]},
                result("c1", "a"),
                result("c1", "b"),
            ],
            "invalid_input",  # as the turn core words two results for one call
            "messages",
            "messages[3] is a second result for the call 'c1'",
        ),
        (  # a result after no calls
            [USER, {"role": "assistant", "content": "hi"}, result("c1", "x")],
            "invalid_tool_results",
            "messages[2]",
            "does not follow an assistant message with tool_calls",
        ),
        (  # a call left unanswered before the conversation goes on
            [
                USER,
                {"role": "assistant", "tool_calls": [call("c1"), call("c2")]},
                result("c1", "a"),
                {"role": "user", "content": "next"},
            ],
            "invalid_tool_results",
            "messages[1].tool_calls",
            "calls without a result (c2)",
        ),
        (  # the legacy function role and function_call stay refused
            [USER, {"role": "function", "name": "weather", "content": "x"}, USER],
            "tools_not_supported",
            "messages[1].role",
            "legacy function role",
        ),
        (
            [USER, {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}, USER],
            "tools_not_supported",
            "messages[1].function_call",
            "legacy function call",
        ),
        (
            [USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "custom"}]}, USER],
            "tools_not_supported",
            "messages[1].tool_calls[0].type",
            "only function calls",
        ),
    ],
)
def test_a_transcript_whose_tool_messages_do_not_fit_is_refused_naming_the_message(
    messages, code, param, words
):
    error = decode_refusal({"messages": messages, "tools": [WEATHER]})
    assert (error.status, error.code, error.details["field"]) == (422, code, param)
    assert words in error.message and param in error.message


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}, "id"),
        ({"role": "assistant", "tool_calls": [{"id": "c1", "function": {"arguments": "{}"}}]}, "function"),
        ({"role": "assistant", "tool_calls": [call("c1", arguments={"a": 1})]}, "function.arguments"),
    ],
)
def test_a_malformed_call_is_refused_naming_its_field(item, field):
    error = decode_refusal({"messages": [USER, item, USER]})
    assert (error.code, error.details["field"]) == ("invalid_input", "messages")
    assert f"messages[1].tool_calls[0].{field}" in error.message


def test_a_tool_message_needs_the_call_id_it_answers():
    messages = [USER, {"role": "assistant", "tool_calls": [call("c1")]}, {"role": "tool", "content": "x"}]
    error = decode_refusal({"messages": messages})
    assert "messages[2].tool_call_id" in error.message


def test_an_unknown_role_names_the_tool_role_among_those_taken():
    error = decode_refusal({"messages": [{"role": "robot", "content": "x"}, USER]})
    assert error.message == "messages[0].role must be system, user, assistant or tool."


def test_the_last_message_is_the_users_or_tool_results():
    error = decode_refusal({"messages": [USER, {"role": "assistant", "content": "x"}]})
    assert error.details["field"] == "messages" and "last message" in error.message
    error = decode_refusal({"messages": [USER, {"role": "assistant", "tool_calls": [call("c1")]}]})
    assert (error.code, error.details["field"]) == ("invalid_tool_results", "messages[1].tool_calls")


def test_protocols_without_the_keyword_refuse_tool_messages_as_before():
    """The seeds (Z.AI, the coding agent) read messages without ``tools``: unchanged."""
    parsed = read_messages([USER, {"role": "assistant", "tool_calls": [call("c1")]}, result("c1", "x")])
    assert [(p.field, p.code) for p in parsed.problems] == [
        ("messages[1].tool_calls", "tools_not_supported"),
        ("messages[2].role", "tools_not_supported"),
    ]
    assert parsed.messages == (ChatMessage("user", "Paris?"),)


# --- encoding ------------------------------------------------------------------------------------
MID = "m-1"
CALL_EVENTS = [
    Started(1, MID, session_key="s", conversation_id="c", user_message_id="u", provider="openai", model="g"),
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


def frames(out: bytes) -> list:
    data = [f.removeprefix(b"data: ") for f in out.split(b"\n\n") if f]
    assert data[-1] == b"[DONE]"
    return [json.loads(f) for f in data[:-1]]


def test_streamed_calls_are_chunks_exactly_as_openai_sends_them():
    encoder = ChatChunkEncoder(completion_id="chatcmpl-1", model="g", created=7, include_usage=True)
    chunks = frames(b"".join(encoder.encode(event) for event in CALL_EVENTS))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Looking."},
        {
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ],
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        {
            "content": None,
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "time", "arguments": ""},
                }
            ],
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},  # the finish chunk: the done events add nothing
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


def test_the_role_rides_on_the_first_call_when_nothing_carried_it_before():
    encoder = ChatChunkEncoder(completion_id="c", model="g", created=1, include_usage=False)
    first = frames(encoder.encode(CALL_EVENTS[2]) + b"data: [DONE]\n\n")[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    second = frames(encoder.encode(CALL_EVENTS[5]) + b"data: [DONE]\n\n")[0]["choices"][0]["delta"]
    assert "role" not in second


def test_the_summary_and_the_completion_carry_the_calls_in_order():
    events = [*CALL_EVENTS[:7], CALL_EVENTS[8], CALL_EVENTS[7], *CALL_EVENTS[9:]]  # done events: any order
    summary = summarize_turn(events)
    assert summary["tool_calls"] == [
        {"id": "call_a", "name": "weather", "arguments": '{"city":"Paris"}', "input": {"city": "Paris"}},
        {"id": "call_b", "name": "time", "arguments": "{}", "input": {}},
    ]
    message = chat_completion(summary, completion_id="c", model="g", created=1)["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] == "Looking."
    assert message["message"]["tool_calls"] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    ended = Completed(11, MID, "", "tool_calls", "r1", "openai", "g")
    only_calls = summarize_turn([e for e in events[:-1] if not isinstance(e, Delta)] + [ended])
    message = chat_completion(only_calls, completion_id="c", model="g", created=1)["choices"][0]["message"]
    assert message["content"] is None


def test_a_text_answer_has_no_tool_calls_key():
    summary = summarize_turn([CALL_EVENTS[0], CALL_EVENTS[1], CALL_EVENTS[9], CALL_EVENTS[10]])
    assert "tool_calls" not in summary
    message = chat_completion(summary, completion_id="c", model="g", created=1)["choices"][0]["message"]
    assert "tool_calls" not in message and message["content"] == "Looking."


# --- end to end: the openai SDK against the live server ------------------------------------------
live = pytest.mark.django_db(transaction=True)


def ask(sdk, text: str, **options):
    return sdk.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": text}], **options
    )


def run_tool(name: str, arguments: str) -> str:
    """The client's own tool: what a real app would run locally."""
    values = json.loads(arguments)
    return f"{name}:{values.get('city') or values.get('zone')}"


@live
def test_a_streamed_call_is_accumulated_by_the_sdk_and_stored(sdk, openai_upstream):
    text = "Paris [[tools=weather]]"
    stream = ask(sdk, text, tools=[WEATHER], stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(piece.index, {"id": piece.id, "name": piece.function.name, "args": ""})
            entry["args"] += piece.function.arguments or ""
    arguments = expected_tool_arguments(SCHEMA, text)
    assert list(calls.values()) == [{"id": calls[0]["id"], "name": "weather", "args": arguments}]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage.completion_tokens > 0
    sent = openai_upstream.requests[-1].json
    assert sent["tools"] == [WEATHER]
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.finish_reason, answer.content) == ("complete", "tool_calls", "")
    assert answer.parts == [
        {
            "type": "tool_call",
            "id": calls[0]["id"],
            "name": "weather",
            "arguments": arguments,
            "input": json.loads(arguments),
        }
    ]


@live
def test_the_sdk_stream_helper_parses_strict_calls(sdk, openai_upstream):
    strict = tool("weather", strict=True)
    with sdk.chat.completions.stream(
        model="gpt-test", messages=[{"role": "user", "content": "Rome [[tools=weather]]"}], tools=[strict]
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [(e.name, e.index, e.parsed_arguments) for e in done] == [
        ("weather", 0, {"city": "Rome", "days": 1})
    ]
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls[0].function.parsed_arguments == {"city": "Rome", "days": 1}
    assert openai_upstream.requests[-1].json["tools"][0]["function"]["strict"] is True


@live
def test_a_call_not_streamed(sdk):
    completion = ask(sdk, "Oslo [[tools=weather]]", tools=[WEATHER])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (called,) = choice.message.tool_calls
    assert (called.type, called.function.name) == ("function", "weather")
    assert called.function.arguments == expected_tool_arguments(SCHEMA, "Oslo [[tools=weather]]")


@live
def test_text_before_the_calls_is_kept(sdk):
    text = "Lima [[tools=weather text_first=1 chunks=2]]"
    completion = ask(sdk, text, tools=[WEATHER])
    message = completion.choices[0].message
    assert message.content == expected_reply(text)
    assert message.tool_calls[0].function.name == "weather"
    answer = Message.objects.get(role="assistant")
    assert answer.parts[0] == {"type": "text", "text": expected_reply(text)}
    assert answer.parts[1]["type"] == "tool_call"


def loop(sdk, text: str, tools: list, *, stream: bool, **options) -> tuple[list, object]:
    """Two rounds the way an app runs them: ask, run each call locally, send the results back."""
    messages = [{"role": "user", "content": text}]
    first = sdk.chat.completions.create(model="gpt-test", messages=messages, tools=tools, **options)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    messages.append(message.model_dump(exclude_none=True))
    for called in message.tool_calls:
        messages.append(result(called.id, run_tool(called.function.name, called.function.arguments)))
    if not stream:
        return messages, sdk.chat.completions.create(
            model="gpt-test", messages=messages, tools=tools, **options
        )
    chunks = list(
        sdk.chat.completions.create(model="gpt-test", messages=messages, tools=tools, stream=True, **options)
    )
    return messages, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@live
@pytest.mark.parametrize("stream", [False, True])
def test_a_two_round_loop_with_the_whole_history(sdk, openai_upstream, stream):
    messages, final = loop(sdk, "Paris [[tools=weather]]", [WEATHER], stream=stream)
    expected = expected_tool_reply(["weather:Paris"])
    text = final if stream else final.choices[0].message.content
    assert text == expected
    if not stream:
        assert final.choices[0].finish_reason == "stop" and final.choices[0].message.tool_calls is None
    sent = openai_upstream.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == messages[1]["tool_calls"][0]["id"]
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": messages[2]["tool_call_id"],
        "content": "weather:Paris",
    }
    # each request was a session of its own: the tool message opened the second
    tool_message = Message.objects.get(role="tool")
    assert tool_message.parts == [
        {
            "type": "tool_result",
            "call_id": messages[2]["tool_call_id"],
            "name": "weather",
            "output": "weather:Paris",
            "is_error": False,
        }
    ]
    answer = Message.objects.get(parent=tool_message)
    assert (answer.status, answer.content, answer.finish_reason) == ("complete", expected, "stop")


@live
def test_two_parallel_calls_and_their_results(sdk, openai_upstream):
    messages, final = loop(sdk, "Tokyo [[tools=weather,time]]", [WEATHER, TIME], stream=False)
    calls = messages[1]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["weather", "time"]
    assert calls[0]["id"] != calls[1]["id"]
    assert final.choices[0].message.content == expected_tool_reply(["weather:Tokyo", "time:Tokyo"])
    sent = openai_upstream.requests[-1].json["messages"]
    assert [(m["role"], m.get("tool_call_id")) for m in sent[2:]] == [
        ("tool", calls[0]["id"]),
        ("tool", calls[1]["id"]),
    ]


@live
def test_parallel_calls_stream_one_index_after_the_other(sdk):
    chunks = list(ask(sdk, "Tokyo [[tools=weather,time]]", tools=[WEATHER, TIME], stream=True))
    order = [
        (piece.index, piece.id is not None)
        for c in chunks
        if c.choices
        for piece in c.choices[0].delta.tool_calls or []
    ]
    assert order == [
        (0, True),
        (0, False),
        (0, False),
        (0, False),
        (1, True),
        (1, False),
        (1, False),
        (1, False),
    ]


@live
def test_parallel_tool_calls_false_makes_one_call(sdk, openai_upstream):
    completion = ask(sdk, "Tokyo [[tools=weather,time]]", tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert [c.function.name for c in completion.choices[0].message.tool_calls] == ["weather"]
    assert openai_upstream.requests[-1].json["parallel_tool_calls"] is False


@live
@pytest.mark.parametrize(
    ("choice", "called"),
    [
        ("auto", "weather"),
        ("required", "weather"),
        ({"type": "function", "function": {"name": "time"}}, "time"),
        ("none", None),
    ],
)
def test_each_tool_choice_reaches_the_model(sdk, openai_upstream, choice, called):
    completion = ask(sdk, "Kyiv", tools=[WEATHER, TIME], tool_choice=choice)
    assert openai_upstream.requests[-1].json["tool_choice"] == choice
    message = completion.choices[0].message
    if called is None:
        assert message.tool_calls is None and message.content == expected_reply("Kyiv")
    else:
        assert [c.function.name for c in message.tool_calls] == [called]


@live
def test_a_server_side_session_stores_the_round(sdk, openai_upstream):
    session = {"X-Session-Id": "tools-session"}
    messages, final = loop(sdk, "Paris [[tools=weather]]", [WEATHER], stream=True, extra_headers=session)
    expected = expected_tool_reply(["weather:Paris"])
    assert final == expected
    conversation = Conversation.objects.get(session_key="tools-session")
    user, answer, tool_message, final_answer = conversation.messages.order_by("created_at")
    assert (user.role, user.content) == ("user", "Paris [[tools=weather]]")
    (stored_call,) = answer.parts
    assert (answer.role, answer.status, answer.finish_reason, answer.parent_id) == (
        "assistant",
        "complete",
        "tool_calls",
        user.pk,
    )
    assert stored_call["type"] == "tool_call" and stored_call["id"] == messages[1]["tool_calls"][0]["id"]
    assert (tool_message.role, tool_message.parent_id, tool_message.content) == (
        "tool",
        answer.pk,
        "weather:Paris",
    )
    assert tool_message.parts == [
        {
            "type": "tool_result",
            "call_id": stored_call["id"],
            "name": "weather",
            "output": "weather:Paris",
            "is_error": False,
        }
    ]
    assert (final_answer.role, final_answer.parent_id, final_answer.content) == (
        "assistant",
        tool_message.pk,
        expected,
    )
    assert final_answer.finish_reason == "stop" and final_answer.parts == []


def refused(call) -> dict:
    with pytest.raises(APIStatusError) as info:
        call()
    assert 400 <= info.value.status_code < 500
    assert not Message.objects.exists() and not Conversation.objects.exists()
    return info.value.body


@live
def test_a_result_for_an_unknown_call_is_refused_storing_nothing(sdk, openai_upstream):
    messages = [USER, {"role": "assistant", "tool_calls": [call("c1")]}, result("nope", "x")]
    body = refused(lambda: sdk.chat.completions.create(model="gpt-test", messages=messages, tools=[WEATHER]))
    assert (body["code"], body["param"], body["type"]) == (
        "invalid_tool_results",
        "messages[2]",
        "invalid_request_error",
    )
    assert "nope" in body["message"] and "messages[1]" in body["message"]
    assert openai_upstream.requests == []


@live
def test_two_results_for_one_call_are_refused_storing_nothing(sdk):
    messages = [
        USER,
        {"role": "assistant", "tool_calls": [call("c1"), call("c2")]},
        result("c1", "a"),
        result("c1", "b"),
    ]
    body = refused(lambda: sdk.chat.completions.create(model="gpt-test", messages=messages, tools=[WEATHER]))
    assert (body["code"], body["param"]) == ("invalid_input", "messages")
    assert "messages[3] is a second result for the call 'c1'" in body["message"]


@live
def test_a_tool_name_with_spaces_is_refused_storing_nothing(sdk):
    body = refused(lambda: ask(sdk, "x", tools=[tool("get weather")]))
    assert (body["code"], body["param"]) == ("invalid_input", "tools")
    assert "'get weather'" in body["message"] and "letters, digits, _ or -" in body["message"]


@live
def test_more_than_128_tools_are_refused_storing_nothing(sdk):
    body = refused(lambda: ask(sdk, "x", tools=[tool(f"t{n}") for n in range(129)]))
    assert (body["code"], body["param"]) == ("invalid_input", "tools")
    assert "129 tools" in body["message"] and "128" in body["message"]


@live
def test_tools_for_a_model_that_cannot_call_them_are_refused_storing_nothing(sdk, upstream, settings):
    # an OpenAI-compatible server whose operator lists the models that can call tools (none here)
    settings.OPENAI_COMPATIBLE_BASE_URL = upstream.openai_base_url
    settings.OPENAI_COMPATIBLE_MODEL = "llama3.2"
    settings.OPENAI_COMPATIBLE_MODELS = ["llama3.2"]
    settings.OPENAI_COMPATIBLE_TOOL_MODELS = ""
    body = refused(
        lambda: sdk.chat.completions.create(
            model="openai-compatible:llama3.2", messages=[USER], tools=[WEATHER]
        )
    )
    assert (body["code"], body["param"]) == ("tools_not_supported", "tools")
    assert "openai-compatible:llama3.2" in body["message"]
    assert upstream.requests == []


@live
def test_a_stream_cut_mid_arguments_ends_in_an_error_and_keeps_the_partial_call(sdk, openai_upstream):
    stream = ask(sdk, "Paris [[tools=weather fault=drop:2]]", tools=[WEATHER], stream=True)
    seen: list[str] = []
    with pytest.raises(APIError):
        for chunk in stream:
            for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                seen.append(piece.function.arguments or "")
    arguments = expected_tool_arguments(SCHEMA, "Paris [[tools=weather fault=drop:2]]")
    fragment = "".join(seen)
    assert fragment and arguments.startswith(fragment) and fragment != arguments
    answer = Message.objects.get(role="assistant")
    assert answer.status == "failed" and answer.finish_reason != "tool_calls"
    (part,) = answer.parts
    assert part["incomplete"] is True and part["arguments"] == fragment and part["name"] == "weather"


@live
def test_the_demo_provider_calls_a_tool_through_the_endpoint(sdk, settings):
    settings.DEMO_DELAY = 0
    first = sdk.chat.completions.create(
        model="demo:demo",
        messages=[{"role": "user", "content": "Bern"}],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "time"}},
    )
    (called,) = first.choices[0].message.tool_calls
    assert called.function.name == "time" and called.id.startswith("call_demo_")
    assert json.loads(called.function.arguments) == {"zone": "Bern"}
    messages = [
        {"role": "user", "content": "Bern"},
        first.choices[0].message.model_dump(exclude_none=True),
        result(called.id, "14:00"),
    ]
    second = sdk.chat.completions.create(model="demo:demo", messages=messages, tools=[WEATHER, TIME])
    assert "The tool time returned: 14:00" in second.choices[0].message.content


@live
def test_plain_http_sees_openais_json(asgi_server, openai_upstream):
    body = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "Paris [[tools=weather]]"}],
        "tools": [WEATHER],
    }
    response = httpx.post(f"{asgi_server.url}/v1/chat/completions", json=body, timeout=20)
    message = response.json()["choices"][0]["message"]
    assert set(message) == {"role", "content", "refusal", "tool_calls"}
    assert message["content"] is None and message["tool_calls"][0]["type"] == "function"


@live
def test_the_ai_sdk_runs_the_loop_through_the_endpoint(asgi_server, openai_upstream):
    """AI SDK Core's ``streamText`` with ``@ai-sdk/openai-compatible``, a tool with ``execute`` and
    ``stopWhen: stepCountIs(3)``: the SDK runs the tool and sends the result back itself."""
    out = run_js("ai_sdk_tools.mjs", {"base": asgi_server.url, "prompt": "Paris"})
    assert "thrown" not in out, out
    assert out["ran"] == ["Paris"]
    first, second = out["steps"]
    assert first["finishReason"] == "tool-calls"
    (called,) = first["toolCalls"]
    assert (called["name"], called["input"]) == ("weather", {"city": "Paris"})
    assert first["toolResults"] == [{"id": called["id"], "output": "sunny in Paris"}]
    expected = expected_tool_reply(["sunny in Paris"])
    assert (second["finishReason"], second["text"], second["toolCalls"]) == ("stop", expected, [])
    assert out["text"] == expected and len(out["deltas"]) > 1  # streamed in pieces
    sent = openai_upstream.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[2]["tool_call_id"] == called["id"]
    assert [a.finish_reason for a in Message.objects.filter(role="assistant").order_by("created_at")] == [
        "tool_calls",
        "stop",
    ]
