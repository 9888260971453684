"""Codecs in isolation: the one message-list parser, decoding without a server, and the rule that
a codec touches no database, provider, Redis or request framework."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from accounts.callers import Caller
from conversations.codecs.ai_sdk import UIMessageStreamCodec
from conversations.codecs.base import Inbound
from conversations.codecs.coding_agent import CodingAgentCodec
from conversations.codecs.messages import read_messages
from conversations.codecs.native import NativeCodec
from conversations.codecs.openai_chat import OpenAIChatCodec
from conversations.codecs.openai_responses import OpenAIResponsesCodec
from conversations.codecs.zai import ZaiCodec
from conversations.edge.http_errors import HttpError
from providers.base import ChatMessage

CODECS = Path(__file__).resolve().parent.parent / "conversations" / "codecs"
FORBIDDEN = (
    "conversations.models",
    "conversations.db",
    "conversations.db_errors",
    "conversations.selectors",
    "conversations.session_writes",
    "conversations.ratelimit",
    "providers.registry",
    "django.db",
    "django.http",
    "redis",
    "channels",
    "psycopg",
    "httpx",
)
ALLOWED_TURN_MODULES = ("conversations.turns.request",)


def imports_of(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CODECS.glob("*.py")), ids=lambda p: p.name)
def test_a_codec_imports_no_database_provider_redis_or_framework(path):
    wrong = [
        name
        for name in imports_of(path)
        if name.startswith(FORBIDDEN)
        or (name.startswith("conversations.turns") and name not in ALLOWED_TURN_MODULES)
        or (name.startswith("providers") and name not in ("providers.base", "providers.defaults"))
    ]
    assert wrong == []


def test_the_message_list_is_read_with_every_problem_at_once():
    parsed = read_messages(
        [
            {"role": "robot", "content": "x"},
            "hi",
            {"role": "user", "content": 3},
            {"role": "user", "content": "ok"},
        ]
    )
    assert [(p.field, p.message) for p in parsed.problems] == [
        ("messages[0].role", "must be system, user or assistant"),
        ("messages[1]", "must be an object with role and content"),
        ("messages[2].content", "must be a string or text parts"),
    ]
    assert parsed.messages == (ChatMessage("user", "ok"),)


def test_system_messages_become_the_prompt_and_text_parts_are_joined():
    parsed = read_messages(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use French."},
            {"role": "user", "content": [{"type": "text", "text": "Bon"}, {"type": "text", "text": "jour"}]},
        ]
    )
    assert parsed.problems == ()
    assert parsed.system == "Be brief.\n\nUse French."
    assert parsed.last == ChatMessage("user", "Bonjour")


def test_a_protocol_may_refuse_text_parts_and_roles():
    parsed = read_messages(
        [{"role": "developer", "content": [{"type": "text", "text": "x"}]}],
        text_parts=False,
        roles={"user": "user"},
    )
    assert [p.field for p in parsed.problems] == ["messages[0].role", "messages[0].content"]
    assert read_messages([]).problems[0].field == "messages"


def inbound(body: dict, **headers: str) -> Inbound:
    return Inbound(
        headers=headers, body=body, caller=Caller(owner_id=7, ip="1.2.3.4"), params={}, received_at=0.0
    )


def test_the_openai_codec_decodes_the_clients_transcript():
    body = {
        "model": "gemini:gm-1",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 5,
        "response_format": {"type": "json_object"},
    }
    request = asyncio.run(OpenAIChatCodec().decode(inbound(body, **{"X-Session-Id": "s1"})))
    assert (request.session_key, request.provider, request.model) == ("s1", "gemini", "gm-1")
    assert (request.content, request.system, request.max_tokens, request.json_output) == ("Hi", "S", 5, True)
    assert request.context == (ChatMessage("user", "Hi"),)
    assert request.rate_limit_key == "user:7"


def test_the_openai_codec_names_the_first_problem_and_checks_the_reply_fields_first():
    with pytest.raises(HttpError) as bad:
        asyncio.run(OpenAIChatCodec().decode(inbound({"messages": [{"role": "assistant", "content": "x"}]})))
    assert bad.value.status == 422 and bad.value.message.startswith("the last message must have role user")
    with pytest.raises(HttpError) as bad_stream:
        asyncio.run(
            OpenAIChatCodec().decode(inbound({"messages": [{"role": "user", "content": "x"}], "stream": 1}))
        )
    assert bad_stream.value.details["field"] == "stream"


def test_the_zai_codec_lists_every_problem_in_a_400():
    codec = ZaiCodec(lambda: "zai", lambda: None)
    with pytest.raises(HttpError) as bad:
        asyncio.run(codec.decode(inbound({"messages": [{"role": "robot", "content": 1}]})))
    assert bad.value.status == 400
    assert [d["field"] for d in bad.value.details["details"]] == ["messages[0].role", "messages[0].content"]
    reply = codec.reject(bad.value)
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_messages"


def test_the_native_codec_takes_the_path_and_the_branch():
    codec = NativeCodec("regenerate_of")
    request = asyncio.run(
        codec.decode(
            Inbound(
                headers={},
                body={},
                caller=Caller(owner_id=None, ip="9.9.9.9"),
                params={"session_key": "s", "message_id": "m"},
                received_at=0.0,
            )
        )
    )
    assert (request.session_key, request.regenerate_of, request.content) == ("s", "m", "")
    assert request.rate_limit_key == "ip:9.9.9.9"


def test_the_import_rule_would_catch_a_mount_module():
    mount = CODECS.parent / "dialects" / "zai.py"  # wiring, not a codec: it reads the registry
    assert "providers.registry" in imports_of(mount)
    assert "providers.registry".startswith(FORBIDDEN)


def refusal(codec, body: dict, **params: str) -> HttpError:
    with pytest.raises(HttpError) as refused:
        asyncio.run(
            codec.decode(
                Inbound(
                    headers={},
                    body=body,
                    caller=Caller(owner_id=7, ip="1.2.3.4"),
                    params=params,
                    received_at=0.0,
                )
            )
        )
    return refused.value


USER = {"role": "user", "content": "Hi"}


def test_tool_results_tool_calls_and_attachments_are_problems_of_their_own():
    parsed = read_messages(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {}}],
            },
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "user", "content": [{"type": "refusal", "refusal": "x"}]},
            {"role": "assistant", "content": "ok", "tool_calls": []},  # empty: nothing called
        ]
    )
    assert [(p.field, p.code) for p in parsed.problems] == [
        ("messages[0].content[1]", "attachments_not_supported"),
        ("messages[1].tool_calls", "tools_not_supported"),
        ("messages[2].role", "tools_not_supported"),
        ("messages[3].content", "invalid_input"),  # an unknown part was dropped before: refused now
    ]
    assert parsed.messages == (ChatMessage("assistant", "ok"),)


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools_not_supported", "tools"),  # function tools only
        ({"tools": [{"type": "function", "function": {"name": 5}}]}, "invalid_input", "tools"),
        ({"tool_choice": {"type": "allowed_tools"}}, "tools_not_supported", "tool_choice"),
        ({"functions": [{"name": "f"}]}, "tools_not_supported", "functions"),
        ({"function_call": {"name": "f"}}, "tools_not_supported", "function_call"),
        ({"web_search_options": {}}, "tools_not_supported", "web_search_options"),
        ({"audio": {"voice": "alloy"}}, "attachments_not_supported", "audio"),
        ({"n": 2}, "unsupported_parameter", "n"),
        ({"n": True}, "unsupported_parameter", "n"),
        ({"logprobs": True}, "unsupported_parameter", "logprobs"),
        ({"stop": ["\n"]}, "unsupported_parameter", "stop"),
        ({"seed": 1}, "unsupported_parameter", "seed"),
        ({"top_p": 0.5}, "unsupported_parameter", "top_p"),
        ({"presence_penalty": 1}, "unsupported_parameter", "presence_penalty"),
        ({"modalities": ["text", "audio"]}, "unsupported_parameter", "modalities"),
        ({"top_k": 5}, "unsupported_parameter", "top_k"),  # not OpenAI's: unknown, as OpenAI refuses it
        ({"response_format": {"type": "xml"}}, "invalid_input", "response_format"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "attachments_not_supported",
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "function", "content": "r"}, USER]},
            "tools_not_supported",
            "messages[0].role",
        ),
        (
            {"messages": [{"role": "tool", "content": "r"}, USER]},
            "invalid_input",
            "messages",
        ),  # no tool_call_id
    ],
)
def test_the_openai_codec_refuses_what_it_would_drop_naming_the_field(extra, code, field):
    error = refusal(OpenAIChatCodec(), {"messages": [USER], **extra})
    assert (error.status, error.code, error.details["field"]) == (422, code, field)
    assert field.split(".")[0].split("[")[0] in error.message
    reply = OpenAIChatCodec().reject(error)
    assert reply.body["error"]["param"] == field and reply.body["error"]["type"] == "invalid_request_error"


def test_the_openai_codec_accepts_the_no_ops():
    body = {
        "messages": [USER],
        "tools": [],
        "tool_choice": "none",
        "parallel_tool_calls": False,
        "functions": [],
        "n": 1,
        "top_p": 1,
        "stop": None,
        "logprobs": False,
        "frequency_penalty": 0.0,
        "modalities": ["text"],
        "store": True,
        "metadata": {"a": "b"},
        "service_tier": "auto",
        "stream_options": {"include_usage": True},
        "response_format": {"type": "text"},
    }
    request = asyncio.run(OpenAIChatCodec().decode(inbound(body)))
    assert (request.content, request.json_output) == ("Hi", False)


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools_not_supported", "tools"),
        (
            {"tools": [{"name": "f"}], "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}},
            "tools_not_supported",
            "tool_choice",
        ),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "unsupported_parameter", "text"),
        ({"reasoning": {"effort": "high"}}, "unsupported_parameter", "reasoning"),
        ({"include": ["message.output_text.logprobs"]}, "unsupported_parameter", "include"),
        ({"prompt": {"id": "pmpt_1"}}, "unsupported_parameter", "prompt"),
        ({"frequency_penalty": 1}, "unsupported_parameter", "frequency_penalty"),  # a chat field
        (  # images are read: an image_url that is neither a data URL nor https is not
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]},
            "url_not_allowed",
            "input",
        ),
        (
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "x"}, {"type": "input_file"}]}
                ]
            },
            "invalid_input",
            "input",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "attachments_not_supported",
            "input",
        ),
        (
            {"input": [{"role": "user", "content": "x"}, {"type": "file_search_call", "id": "fs"}]},
            "tools_not_supported",
            "input",
        ),
    ],
)
def test_the_responses_codec_refuses_what_it_would_drop_naming_the_field(extra, code, field):
    error = refusal(OpenAIResponsesCodec(), {"input": "Hi", **extra})
    assert (error.status, error.code, error.details["field"]) == (422, code, field)
    body = OpenAIResponsesCodec().reject(error).body["error"]
    assert (body["code"], body["param"], body["type"]) == (code, field, "invalid_request_error")


def test_the_responses_codec_accepts_the_no_ops():
    body = {
        "input": "Hi",
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "text": {"format": {"type": "text"}},
        "reasoning": None,
        "include": [],
        "truncation": "disabled",
        "user": "u1",
        "top_p": 1.0,
    }
    turn = asyncio.run(OpenAIResponsesCodec().decode(inbound(body)))
    assert turn.request.content == "Hi"


def ui_body(*parts: dict, **extra) -> dict:
    return {"id": "c1", "messages": [{"id": "u1", "role": "user", "parts": list(parts)}], **extra}


TEXT = {"type": "text", "text": "Hi"}


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (  # files are read: a data URL that is not base64 is not
            ui_body(TEXT, {"type": "file", "mediaType": "image/png", "url": "data:,"}),
            "invalid_attachment",
            "messages",
        ),
        (
            ui_body(
                TEXT,
                {
                    "type": "file",
                    "mediaType": "image/png",
                    "url": "https://e.x/a.png",
                    "providerReference": {"openai": "f"},
                },
            ),
            "unsupported_parameter",
            "messages",
        ),
        (  # a call and its result belong to the assistant's message
            ui_body(TEXT, {"type": "tool-weather", "toolCallId": "t", "state": "input-available"}),
            "invalid_input",
            "messages",
        ),
        (  # the server runs no tools: no approval to answer
            {
                "id": "c1",
                "messages": [
                    {
                        "id": "a1",
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "dynamic-tool",
                                "toolName": "w",
                                "toolCallId": "t",
                                "state": "approval-responded",
                                "approval": {"id": "a", "approved": True},
                            }
                        ],
                    }
                ],
            },
            "tools_not_supported",
            "messages",
        ),
        (ui_body(TEXT, webSearch=True), "unsupported_parameter", "webSearch"),
        (ui_body(TEXT, tools=[{"name": "f"}]), "invalid_input", "tools"),  # {name: {inputSchema}}
    ],
)
def test_the_ai_sdk_codec_refuses_what_it_would_drop(body, code, field):
    error = refusal(UIMessageStreamCodec(), body)
    assert (error.status, error.code, error.details["field"]) == (422, code, field)


def test_the_ai_sdk_codec_reads_tools_and_the_results_of_the_last_step():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = {"weather": {"description": "The weather", "inputSchema": schema}, "clock": {}}
    earlier = {"type": "tool-weather", "toolCallId": "c0", "state": "output-available", "output": "old"}
    parts = [
        {"type": "step-start"},
        earlier,
        {"type": "step-start"},
        {"type": "tool-weather", "toolCallId": "c1", "state": "output-available", "output": {"temp": 21}},
        {
            "type": "dynamic-tool",
            "toolName": "clock",
            "toolCallId": "c2",
            "state": "output-error",
            "errorText": "down",
        },
    ]
    assistant = {"id": "a1", "role": "assistant", "parts": parts}
    body = {**ui_body(TEXT), "tools": tools, "messageId": "a1"}
    body["messages"].append(assistant)
    turn = asyncio.run(UIMessageStreamCodec().decode(inbound(body)))
    request = turn.request
    assert [(t.name, t.description, t.parameters) for t in request.tools] == [
        ("weather", "The weather", schema),
        ("clock", "", {}),
    ]
    assert [(r.call_id, r.output, r.is_error) for r in request.tool_results] == [
        ("c1", '{"temp":21}', False),
        ("c2", "down", True),
    ]
    assert request.content == "" and request.client_message_id.startswith("tool-results:")


def test_the_ai_sdk_codec_reads_text_and_leaves_the_apps_own_parts():
    body = ui_body({"type": "step-start"}, TEXT, {"type": "data-note", "data": {}}, provider="demo")
    turn = asyncio.run(UIMessageStreamCodec().decode(inbound(body)))
    assert (turn.request.content, turn.request.provider) == ("Hi", "demo")


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools_not_supported"),  # only function tools
        ({"attachments": []}, "invalid_input"),
        ({"files": ["f"]}, "unsupported_parameter"),
        ({"n": 2}, "unsupported_parameter"),
        ({"stream": True}, "unsupported_parameter"),  # Accept picks the format, not a field
    ],
)
def test_the_native_codec_refuses_any_field_it_does_not_take(extra, code):
    error = refusal(NativeCodec(), {"content": "Hi", **extra}, session_key="s")
    assert (error.status, error.code, error.details["field"]) == (422, code, next(iter(extra)))


def test_the_native_codec_takes_attachment_ids_only():
    error = refusal(NativeCodec(), {"content": "Hi", "attachments": [{"url": "u"}]}, session_key="s")
    assert (error.status, error.code, error.details["field"]) == (422, "invalid_input", "attachments[0]")


def test_the_native_codec_accepts_empty_tools():
    request = asyncio.run(
        NativeCodec().decode(
            Inbound(
                headers={},
                body={"content": "Hi", "tools": []},
                caller=Caller(owner_id=None, ip="9.9.9.9"),
                params={"session_key": "s"},
                received_at=0.0,
            )
        )
    )
    assert request.content == "Hi"


def test_the_zai_codec_refuses_tools_in_the_seeds_400():
    codec = ZaiCodec(lambda: "zai", lambda: None)
    error = refusal(codec, {"messages": [USER], "tools": [{"type": "function"}]})
    reply = codec.reject(error)
    assert reply.status == 400 and reply.body["error"]["code"] == "tools_not_supported"
    assert reply.body["error"]["field"] == "tools"
    error = refusal(codec, {"messages": [{"role": "tool", "content": "r"}, USER]})
    assert (error.status, error.code) == (400, "tools_not_supported")
    assert error.details["details"][0]["field"] == "messages[0].role"
    # the seed's other fields are its clients' (its own backend ignores them): still accepted
    asyncio.run(codec.decode(inbound({"messages": [USER], "top_p": 0.5, "tools": [], "tool_choice": "none"})))


def test_the_coding_agent_codec_refuses_an_image_part():
    error = refusal(
        CodingAgentCodec(lambda: (None, None)),
        {"session_id": "s", "messages": [{"role": "user", "content": [TEXT, {"type": "image_url"}]}]},
    )
    assert (error.status, error.code) == (422, "attachments_not_supported")


def test_the_native_regenerate_refuses_content_it_would_not_read():
    error = refusal(NativeCodec("regenerate_of"), {"content": "new text"}, session_key="s", message_id="m")
    assert (error.status, error.code, error.details["field"]) == (422, "unsupported_parameter", "content")


@pytest.mark.parametrize(
    ("raw", "shape", "where"),
    [
        (
            [{"type": "function", "function": {"name": "f", "cache_control": {}}}],
            "nested",
            "tools[0].function",
        ),
        ([{"type": "function", "function": {"name": "f"}, "defer_loading": True}], "nested", "tools[0]"),
        ([{"type": "function", "name": "f", "defer_loading": True}], "flat", "tools[0]"),
    ],
)
def test_a_tool_definition_key_the_server_does_not_honour_is_refused_naming_it(raw, shape, where):
    from conversations.codecs.tools import read_tools

    with pytest.raises(HttpError) as refused:
        read_tools(raw, shape)
    key = "cache_control" if "cache_control" in str(raw) else "defer_loading"
    assert (refused.value.status, refused.value.code) == (422, "unsupported_parameter")
    assert refused.value.message.startswith(f"{where}.{key} is not supported")
    full = {"type": "function", "name": "f", "description": "d", "parameters": {}, "strict": True}
    assert read_tools([full], "flat")[0].strict is True  # every key of a function tool is taken


def test_a_tool_result_key_the_server_does_not_honour_is_refused_naming_it():
    from conversations.codecs.tools import read_tool_result

    part = {"type": "tool_result", "call_id": "c1", "output": "21 C", "metadata": {"x": 1}}
    with pytest.raises(HttpError) as refused:
        read_tool_result(part, "parts[0]", "parts")
    assert (refused.value.status, refused.value.code) == (422, "unsupported_parameter")
    assert refused.value.message.startswith("parts[0].metadata is not supported")
    del part["metadata"]
    assert read_tool_result(part, "parts[0]", "parts").output == "21 C"
