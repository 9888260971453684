"""Nothing a client sends is dropped: each endpoint refuses what it cannot honour with 422 naming
the field (``tools_not_supported``, ``attachments_not_supported``, ``unsupported_parameter``), in
its protocol's error shape, and stores nothing. Driven by the real clients: the official openai
SDK, the AI SDK's own transport, plain HTTP for the native API."""

from __future__ import annotations

import httpx
import pytest
from openai import UnprocessableEntityError

from accounts.keys import api_key_create
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply
from tests.js_clients import run_js

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}


def refused(call) -> dict:
    with pytest.raises(UnprocessableEntityError) as info:
        call()
    assert not Message.objects.exists() and not Conversation.objects.exists()
    return info.value.body  # the SDK's body: the inner error object


def test_chat_completions_refuses_the_legacy_functions_and_web_search_naming_them(sdk, openai_upstream):
    """Tools are honoured (tests/test_openai_tools.py); the legacy ``functions``/``function_call``
    and OpenAI's built-in web search are not, and are refused by name."""
    user = [{"role": "user", "content": "weather?"}]
    body = refused(
        lambda: sdk.chat.completions.create(
            model="gpt-test", messages=user, extra_body={"functions": [WEATHER["function"]]}
        )
    )
    assert (body["code"], body["param"], body["type"]) == (
        "tools_not_supported",
        "functions",
        "invalid_request_error",
    )
    assert "tools and tool_choice" in body["message"]
    body = refused(
        lambda: sdk.chat.completions.create(
            model="gpt-test",
            messages=user,
            tools=[WEATHER],
            extra_body={"function_call": {"name": "weather"}},
        )
    )
    assert (body["code"], body["param"]) == ("tools_not_supported", "function_call")
    body = refused(
        lambda: sdk.chat.completions.create(model="gpt-test", messages=user, web_search_options={})
    )
    assert (body["code"], body["param"]) == ("tools_not_supported", "web_search_options")
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [WEATHER]}}
    body = refused(
        lambda: sdk.chat.completions.create(
            model="gpt-test", messages=user, tools=[WEATHER], tool_choice=allowed
        )
    )
    assert (body["code"], body["param"]) == ("tools_not_supported", "tool_choice")
    assert openai_upstream.requests == []


def test_chat_completions_refuses_an_audio_part_and_a_malformed_image_naming_the_part(sdk):
    """Images and files are read (tests/test_attachments_protocols.py); audio is not taken."""
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    content = [{"type": "text", "text": "what is this?"}, audio]
    body = refused(
        lambda: sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": content}])
    )
    assert (body["code"], body["param"]) == ("attachments_not_supported", "messages[0].content[1]")
    assert "input_audio" in body["message"]
    content[1] = {"type": "image_url", "image_url": {"url": "data:,"}}
    body = refused(
        lambda: sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": content}])
    )
    assert (body["code"], body["param"]) == ("invalid_attachment", "messages[0].content[1].image_url.url")
    assert body["message"].startswith("messages[0].content[1].image_url.url must be a base64 data URL")


def test_chat_completions_refuses_the_legacy_function_role_in_the_history(sdk):
    """``tool_calls`` and ``role: "tool"`` are read (tests/test_openai_tools.py); the legacy
    ``function_call`` and ``role: "function"`` messages are refused naming the message."""
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": "{}"}},
        {"role": "function", "name": "weather", "content": "sunny"},
        {"role": "user", "content": "so?"},
    ]
    body = refused(lambda: sdk.chat.completions.create(model="gpt-test", messages=messages))
    assert (body["code"], body["param"]) == ("tools_not_supported", "messages[1].function_call")
    body = refused(
        lambda: sdk.chat.completions.create(model="gpt-test", messages=[messages[0], *messages[2:]])
    )
    assert (body["code"], body["param"]) == ("tools_not_supported", "messages[1].role")
    assert "tool message" in body["message"]


@pytest.mark.parametrize(
    ("extra", "param"), [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"seed": 7}, "seed")]
)
def test_chat_completions_refuses_what_would_change_the_answer(sdk, extra, param):
    body = refused(
        lambda: sdk.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "x"}], **extra
        )
    )
    assert (body["code"], body["param"]) == ("unsupported_parameter", param)


def test_chat_completions_accepts_the_no_ops(sdk):
    completion = sdk.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "plain [[chunks=2]]"}],
        tools=[],
        tool_choice="none",
        n=1,
        user="no-ops",
        store=True,
        metadata={"k": "v"},
    )
    assert completion.choices[0].message.content == expected_reply("plain [[chunks=2]]")


def test_responses_refuses_tools_but_functions_and_attachments_naming_them(sdk, openai_upstream):
    tool = {"type": "web_search"}  # function tools are honoured (tests/test_responses_tools.py)
    body = refused(lambda: sdk.responses.create(model="gpt-test", input="weather?", tools=[tool]))
    assert (body["code"], body["param"], body["type"]) == (
        "tools_not_supported",
        "tools",
        "invalid_request_error",
    )
    image = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "this?"},
                {"type": "input_image", "image_url": "data:,", "detail": "auto"},
            ],
        }
    ]
    body = refused(lambda: sdk.responses.create(model="gpt-test", input=image))
    assert (body["code"], body["param"]) == ("invalid_attachment", "input")  # images are read: not this one
    assert body["message"].startswith("input[0].content[1].image_url must be a base64 data URL")
    image[0]["content"][1] = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    body = refused(lambda: sdk.responses.create(model="gpt-test", input=image))
    assert (body["code"], body["param"]) == ("attachments_not_supported", "input")
    searched = [
        {"role": "user", "content": "x"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ]
    body = refused(lambda: sdk.responses.create(model="gpt-test", input=searched))
    assert (body["code"], body["param"]) == ("tools_not_supported", "input")
    body = refused(lambda: sdk.responses.create(model="gpt-test", input="x", reasoning={"effort": "high"}))
    assert (body["code"], body["param"]) == ("unsupported_parameter", "reasoning")
    assert openai_upstream.requests == []


def test_responses_accepts_empty_tools_and_tool_choice_none(sdk):
    response = sdk.responses.create(
        model="gpt-test", input="plain [[chunks=2]]", tools=[], tool_choice="none"
    )
    assert response.output_text == expected_reply("plain [[chunks=2]]")


@pytest.fixture
def http(asgi_server, openai_upstream):
    with httpx.Client(base_url=asgi_server.url, timeout=20) as client:
        yield client


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools_not_supported"),  # function tools only
        ({"files": ["f"]}, "unsupported_parameter"),  # files go as attachment ids in attachments
        ({"stop": "x"}, "unsupported_parameter"),
    ],
)
def test_the_native_turn_refuses_a_field_it_does_not_take(http, extra, code):
    response = http.post("/api/sessions/s1/messages", json={"content": "Hi", **extra})
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, next(iter(extra)))
    assert not Conversation.objects.exists()


def test_the_ai_sdk_route_refuses_a_provider_reference_and_an_unknown_body_field(http):
    file = {
        "type": "file",
        "mediaType": "image/png",
        "url": "data:image/png;base64,AA==",
        "providerReference": {"openai": "file-abc"},
    }
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "this?"}, file]}
    response = http.post(
        "/api/ai-sdk/chat", json={"id": "c1", "messages": [message], "trigger": "submit-message"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unsupported_parameter"
    assert error["message"].startswith("messages[0].parts[1].providerReference is not read")
    message["parts"].pop()
    response = http.post("/api/ai-sdk/chat", json={"id": "c1", "messages": [message], "webSearch": True})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "webSearch")
    assert not Conversation.objects.exists()


def test_the_ai_sdk_route_takes_an_empty_tools_list_as_no_tools(http):
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    response = http.post("/api/ai-sdk/chat", json={"id": "c-empty", "messages": [message], "tools": []})
    assert response.status_code == 200, response.text
    assert b"tool-input-start" not in response.content
    response = http.post("/api/ai-sdk/chat", json={"id": "c-list", "messages": [message], "tools": ["x"]})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "tools")


@pytest.mark.parametrize("pkg", ["ai", "ai5"])
def test_the_ai_sdk_transport_throws_the_refusal_of_a_file_that_is_no_allowed_type(
    asgi_server, openai_upstream, user, pkg
):
    key = api_key_create(owner=user, name="ai-sdk")[1]
    out = run_js(
        "ai_sdk_http.mjs",
        {
            "pkg": pkg,
            "base": asgi_server.url,
            "scenario": "send",
            "headers": {"X-API-Key": key},
            "chatId": "files",
            "text": "what is in this picture?",
            "parts": [{"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AA=="}],
        },
    )
    assert "unsupported_attachment_type" in out["thrown"]  # one NUL byte: not an image (415)
    assert not Conversation.objects.exists() and openai_upstream.requests == []


# --- the documented shape is the enforced one (issue 29: the schema from the code) ---------------
BODIES = {
    ("/api/sessions/{session_key}/messages", "post"): "NATIVE",
    ("/v1/chat/completions", "post"): "CHAT_COMPLETIONS",
    ("/v1/responses", "post"): "RESPONSES",
    ("/api/ai-sdk/chat", "post"): "AI_SDK",
}


def _schema(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/json").json()


@pytest.mark.parametrize(("path", "table"), list(BODIES.items()))
def test_each_turn_body_in_the_schema_is_its_codecs_table(client, path, table):
    from conversations.codecs import request_fields

    rules = getattr(request_fields, table)
    before = {name: dict(schema) for name, schema in rules.honoured.items()}
    body = _schema(client)["paths"][path[0]][path[1]]["requestBody"]["content"]["application/json"]["schema"]
    variants = body.get("oneOf", [body])  # the native API: a user message or a tool message
    assert set().union(*(variant["properties"] for variant in variants)) == set(rules.honoured)
    for variant in variants:
        assert variant["additionalProperties"] is False  # anything else is refused, never ignored
        for name, schema in variant["properties"].items():
            if name not in ("model", "provider", "content", "role"):  # the configuration's, or the variant's
                assert schema == rules.honoured[name], name
    if len(variants) == 1:
        assert body.get("required", []) == list(rules.required)
    _schema(client)  # built anew per request: the tables themselves are untouched
    assert {name: dict(schema) for name, schema in rules.honoured.items()} == before


def test_the_schema_quotes_the_limits_the_turn_core_enforces(client, settings):
    settings.MAX_MESSAGE_BYTES = 321
    paths = _schema(client)["paths"]
    native = paths["/api/sessions/{session_key}/messages"]["post"]["requestBody"]["content"]
    props = native["application/json"]["schema"]["oneOf"][0]["properties"]
    assert props["content"]["maxLength"] == 321
    assert (props["temperature"]["minimum"], props["temperature"]["maximum"]) == (0.0, 2.0)
    assert props["provider"]["enum"] == ["demo"]  # the configured providers
    regenerate = paths["/api/sessions/{session_key}/messages/{message_id}/regenerate"]["post"]
    assert "content" not in regenerate["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "parts" not in regenerate["requestBody"]["content"]["application/json"]["schema"]["properties"]
    user, tool = native["application/json"]["schema"]["oneOf"]
    assert (user["required"], tool["required"]) == (["content"], ["role", "parts"])
    assert "content" not in tool["properties"] and "parts" not in user["properties"]
    event = paths["/api/sessions/{session_key}/messages"]["post"]["responses"]["200"]["content"]
    event_types = event["text/event-stream"]["schema"]["properties"]["data"]["x-content-schema"]
    from conversations.events import EVENT_TYPES

    assert event_types["properties"]["type"]["enum"] == list(EVENT_TYPES)


@pytest.mark.parametrize(
    ("path", "body", "name", "wording"),
    [
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "Hi"}], "temperature": "hot"},
            "temperature",
            "a number",
        ),
        ("/v1/responses", {"input": "Hi", "max_output_tokens": 1.5}, "max_output_tokens", "a whole number"),
        ("/api/sessions/s1/messages", {"content": "Hi", "json": "yes"}, "json", "true or false"),
        ("/api/ai-sdk/chat", {"id": "c1", "messages": [], "system": 5}, "system", "a string"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_by_the_same_table(http, path, body, name, wording):
    response = http.post(path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error.get("param", error.get("field")) == name
    assert f"{name} must be {wording}." in error["message"]
    assert not Conversation.objects.exists()
