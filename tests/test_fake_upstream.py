"""Fidelity tests of the fake LLM upstream, driven by the real SDKs over real HTTP (no SDK patching).

Run: ``.venv/bin/pytest -p no:django tests/test_fake_upstream.py -q``.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from openai import AsyncOpenAI
from zai import ZaiClient
from zai.core import _errors as zai_errors

from tests.fake_upstream import (
    FakeUpstream,
    expected_reply,
    expected_tool_arguments,
    expected_tool_reply,
    split_reply,
)
from tests.fake_upstream.scenario import parse_directives, reply_text, strip_directives

REPO = Path(__file__).resolve().parent.parent


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream():
    up = FakeUpstream().start()
    yield up
    up.stop()


@pytest.fixture(autouse=True)
def _fresh(upstream: FakeUpstream):
    upstream.reset()


@pytest.fixture
async def oai(upstream: FakeUpstream):
    client = AsyncOpenAI(api_key="sk-test", base_url=upstream.openai_base_url, max_retries=0, timeout=5)
    yield client
    await client.close()


def gemini_client(upstream: FakeUpstream, timeout_ms: int = 5000) -> genai.Client:
    return genai.Client(
        api_key="gk-test",
        http_options=types.HttpOptions(base_url=upstream.gemini_base_url, timeout=timeout_ms),
    )


def zai_client(upstream: FakeUpstream, timeout: float = 5.0) -> ZaiClient:
    return ZaiClient(api_key="id.secret", base_url=upstream.zai_base_url, max_retries=0, timeout=timeout)


def user(text: str, system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    return [*msgs, {"role": "user", "content": text}]


async def openai_stream_text(client: AsyncOpenAI, text: str, **kw: Any) -> tuple[str, Any, str | None]:
    stream = await client.chat.completions.create(model="gpt-test", messages=user(text), stream=True, **kw)
    parts: list[str] = []
    usage, finish = None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    return "".join(parts), usage, finish


def zai_stream(client: ZaiClient, text: str, **kw: Any) -> tuple[list[Any], str]:
    chunks = list(client.chat.completions.create(model="glm-4.6", messages=user(text), stream=True, **kw))
    return chunks, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# ---- scenario -------------------------------------------------------------------------------------


def test_split_reply_is_exact_and_deterministic():
    text = "Echo: the quick brown fox jumps over the lazy dog"
    for n in (1, 2, 5, 17, len(text)):
        pieces = split_reply(text, n)
        assert len(pieces) == n and all(pieces) and "".join(pieces) == text
        assert pieces == split_reply(text, n)
    with pytest.raises(ValueError):
        split_reply("abc", 4)


def test_expected_reply_strips_directives_pads_and_json():
    assert expected_reply("hello [[chunks=3 delay=0.5]] world") == "Echo: hello world"
    assert strip_directives("[[fault=429]] hi") == "hi"
    padded = expected_reply("", 20)
    assert padded.startswith("Echo: lorem ipsum") and len(padded) >= 20
    assert expected_reply("hi [[chunks=30]]") == expected_reply("hi", 30)
    assert json.loads(expected_reply("say [[chunks=40]]", json_mode=True)) == {"echo": "say"}
    assert expected_reply("x [[json=invalid]]", json_mode=True) == '{"echo": '
    d = parse_directives("q [[chunks=500 delay=0.01 fault=drop:3 first_byte=0.2 retry_after=7]]")
    assert (d.chunks, d.delay, d.first_byte, d.retry_after) == (500, 0.01, 0.2, 7.0)
    assert (d.fault.kind, d.fault.after) == ("drop", 3)


def test_usage_breakdown_directives_are_non_negative_counts():
    d = parse_directives("q [[cached=4 reasoning=0]]")
    assert (d.cached, d.reasoning, d.extra) == (4, 0, {})
    assert (parse_directives("q").cached, parse_directives("q").reasoning) == (None, None)
    for bad in ("[[cached=-1]]", "[[reasoning=some]]"):
        with pytest.raises(ValueError):
            parse_directives(bad)


def test_fenced_code_is_cut_across_chunks():
    text = reply_text("see\n```python\nprint('hi')\nx = 1\n```\ndone", 12)
    pieces = split_reply(text, 12)
    assert not any("```python\nprint('hi')\nx = 1\n```" in p for p in pieces)


# ---- OpenAI chat ----------------------------------------------------------------------------------


async def test_openai_chat_stream_with_usage(upstream: FakeUpstream, oai: AsyncOpenAI):
    prompt = "hello ```py\nx=1\n``` there [[chunks=9]]"
    stream = await oai.chat.completions.create(
        model="gpt-test",
        messages=user(prompt, system="be brief"),
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.3,
        max_tokens=100,
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(prompt)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 2 + len(prompt.split())  # "be brief" + prompt words
    assert chunks[-1].usage.completion_tokens == 9
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 9
    req = upstream.last_request("/v1/chat/completions")
    assert req.method == "POST" and req.headers["authorization"] == "Bearer sk-test"
    assert req.json["messages"][0] == {"role": "system", "content": "be brief"}
    assert (req.json["temperature"], req.json["max_tokens"], req.json["stream"]) == (0.3, 100, True)


async def test_openai_chat_raw_wire_shape(upstream: FakeUpstream):
    body = {
        "model": "gpt-test",
        "messages": user("wire [[chunks=3]]"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with httpx.AsyncClient() as client:
        resp = await client.post(upstream.openai_base_url + "/chat/completions", json=body)
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = [e for e in resp.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    data = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all("usage" in d for d in data) and all(d["usage"] is None for d in data[:-1])
    assert data[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [d["choices"][0]["delta"]["content"] for d in data[1:4]] == split_reply("Echo: wire", 3)
    assert data[4]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert data[5]["choices"] == [] and data[5]["usage"]["completion_tokens"] == 3
    assert {d["object"] for d in data} == {"chat.completion.chunk"} and len({d["id"] for d in data}) == 1


async def test_openai_chat_non_stream_json_mode_and_length(oai: AsyncOpenAI):
    resp = await oai.chat.completions.create(
        model="gpt-test", messages=user("data please"), response_format={"type": "json_object"}
    )
    assert json.loads(resp.choices[0].message.content) == {"echo": "data please"}
    assert resp.choices[0].finish_reason == "stop" and resp.usage.completion_tokens == 5
    bad = await oai.chat.completions.create(
        model="gpt-test", messages=user("x [[json=invalid]]"), response_format={"type": "json_object"}
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.choices[0].message.content)
    text, usage, finish = await openai_stream_text(
        oai, "truncate me [[chunks=6]]", max_tokens=2, stream_options={"include_usage": True}
    )
    assert finish == "length" and usage.completion_tokens == 2
    assert text == "".join(split_reply(expected_reply("truncate me", 6), 6)[:2])


async def test_openai_chat_usage_details_only_with_breakdown_directives(oai: AsyncOpenAI):
    plain = await oai.chat.completions.create(model="gpt-test", messages=user("no breakdown"))
    assert plain.usage.prompt_tokens_details is None and plain.usage.completion_tokens_details is None

    prompt = "cached and thinking [[chunks=4 cached=2 reasoning=3]]"
    _, usage, _ = await openai_stream_text(oai, prompt, stream_options={"include_usage": True})
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (len(prompt.split()), 2)
    assert (usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (4 + 3, 3)
    assert usage.total_tokens == usage.prompt_tokens + 7
    only_cached = await oai.chat.completions.create(model="gpt-test", messages=user("c [[cached=99]]"))
    assert only_cached.usage.prompt_tokens_details.cached_tokens == only_cached.usage.prompt_tokens == 2
    assert only_cached.usage.completion_tokens_details.reasoning_tokens == 0  # OpenAI sends both


# ---- OpenAI Responses ---------------------------------------------------------------------------


TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}
TOOLS = [
    {"type": "function", "function": {"name": "weather", "parameters": TOOL_SCHEMA}},
    {"type": "function", "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}}},
]


async def test_openai_chat_tool_call_raw_wire_shape(upstream: FakeUpstream):
    text = '"Florence" [[tools=weather]]'
    body = {
        "model": "gpt-test",
        "messages": user(text),
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": TOOLS,
    }
    async with httpx.AsyncClient() as client:
        resp = await client.post(upstream.openai_base_url + "/chat/completions", json=body)
    events = [e for e in resp.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    data = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    call_id = data[0]["choices"][0]["delta"]["tool_calls"][0]["id"]
    assert re.fullmatch(r"call_0_[0-9a-f]{8}", call_id)
    assert data[0]["choices"][0] == {
        "index": 0,
        "delta": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ],
            "refusal": None,
        },
        "logprobs": None,
        "finish_reason": None,
    }
    deltas = [d["choices"][0]["delta"] for d in data[1:4]]
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas]
    assert deltas == [{"tool_calls": [{"index": 0, "function": {"arguments": f}}]} for f in fragments]
    arguments = expected_tool_arguments(TOOL_SCHEMA, text)
    assert arguments == '{"city":"\\"Florence\\"","days":1}'
    n = len(arguments)  # cut at its thirds
    assert fragments == [arguments[: n // 3], arguments[n // 3 : 2 * n // 3], arguments[2 * n // 3 :]]
    assert fragments[0] == '{"city":"\\'  # cut mid-escape: a fragment is no JSON of its own
    assert data[4]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert data[5]["choices"] == [] and data[5]["usage"]["completion_tokens"] == 4
    assert all("role" not in d["choices"][0]["delta"] for d in data[1:5])


async def test_openai_chat_tool_calls_through_the_sdk(upstream: FakeUpstream, oai: AsyncOpenAI):
    text = "Paris [[tools=weather,clock]]"
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=user(text), tools=TOOLS, stream=True
    )
    calls: dict[int, list[str]] = {}
    finish = None
    async for chunk in stream:
        for piece in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(piece.index, [piece.id, piece.function.name, ""])
            call[2] += piece.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [(name, args) for _, name, args in calls.values()] == [
        ("weather", expected_tool_arguments(TOOL_SCHEMA, text)),
        ("clock", "{}"),
    ]
    assert [c[0][:7] for c in calls.values()] == ["call_0_", "call_1_"]

    whole = await oai.chat.completions.create(
        model="gpt-test", messages=user(text), tools=TOOLS, parallel_tool_calls=False
    )
    message = whole.choices[0].message
    assert whole.choices[0].finish_reason == "tool_calls" and message.content is None
    assert [(c.id, c.function.name) for c in message.tool_calls] == [(calls[0][0], "weather")]


async def test_openai_chat_tool_choice_and_text_first(oai: AsyncOpenAI):
    named = await oai.chat.completions.create(
        model="gpt-test",
        messages=user("Rome"),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "clock"}},
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["clock"]
    refused = await oai.chat.completions.create(
        model="gpt-test", messages=user("Rome"), tools=TOOLS, tool_choice="none"
    )
    assert (
        refused.choices[0].message.content == expected_reply("Rome")
        and not refused.choices[0].message.tool_calls
    )

    text = "Oslo [[text_first=1 chunks=3]]"
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=user(text), tools=TOOLS, stream=True
    )
    kinds = [
        "text" if chunk.choices[0].delta.content else "call"
        async for chunk in stream
        if chunk.choices and (chunk.choices[0].delta.content or chunk.choices[0].delta.tool_calls)
    ]
    assert kinds == ["text"] * 3 + ["call"] * 4
    whole = await oai.chat.completions.create(model="gpt-test", messages=user(text), tools=TOOLS)
    assert whole.choices[0].message.content == expected_reply(text)
    assert [c.function.name for c in whole.choices[0].message.tool_calls] == ["weather"]


async def test_openai_chat_tool_results_get_the_tool_reply(upstream: FakeUpstream, oai: AsyncOpenAI):
    call = {"id": "call_x", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    messages = [
        *user("Paris [[chunks=4]]"),
        {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "call_y"}]},
        {"role": "tool", "tool_call_id": "call_x", "content": "21 C"},
        {"role": "tool", "tool_call_id": "call_y", "content": "sunny"},
    ]
    stream = await oai.chat.completions.create(model="gpt-test", messages=messages, tools=TOOLS, stream=True)
    pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == expected_tool_reply(["21 C", "sunny"]) == "Tool results: 21 C | sunny"
    assert len(pieces) == 4
    assert upstream.requests[-1].json["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_y",
        "content": "sunny",
    }


async def test_openai_chat_tool_stream_cut_mid_arguments(oai: AsyncOpenAI):
    text = "Lima [[tools=weather fault=drop:2]]"
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=user(text), tools=TOOLS, stream=True
    )
    arguments: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            arguments += [p.function.arguments for p in chunk.choices[0].delta.tool_calls or []]
    assert arguments == ["", split_thirds(expected_tool_arguments(TOOL_SCHEMA, text))[0]]
    with pytest.raises(openai.BadRequestError, match="not offered"):
        await oai.chat.completions.create(model="gpt-test", messages=user("x [[tools=nope]]"), tools=TOOLS)


def split_thirds(text: str) -> list[str]:
    n = len(text)
    return [text[: n // 3], text[n // 3 : 2 * n // 3], text[2 * n // 3 :]]


async def test_openai_responses_stream_and_chaining(upstream: FakeUpstream, oai: AsyncOpenAI):
    stream = await oai.responses.create(model="gpt-5", input="first turn", instructions="sys", stream=True)
    events = [e async for e in stream]
    types_seen = [e.type for e in events]
    assert types_seen[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types_seen[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == expected_reply("first turn") and len(deltas) == 5
    first = events[-1].response
    assert first.id.startswith("resp_") and first.output_text == expected_reply("first turn")
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (3, 5, 8)

    second = await oai.responses.create(model="gpt-5", input="second turn", previous_response_id=first.id)
    assert second.output_text == expected_reply("second turn")
    assert second.usage.input_tokens == 2 + 2 + len(expected_reply("first turn").split())
    async with oai.responses.stream(model="gpt-5", input="third", previous_response_id=second.id) as helper:
        final = await helper.get_final_response()
    assert final.output_text == expected_reply("third") and final.previous_response_id == second.id
    fetched = await oai.responses.retrieve(final.id)
    assert fetched.output_text == expected_reply("third")
    assert upstream.requests[1].json["previous_response_id"] == first.id


async def test_openai_responses_errors_and_json(oai: AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        await oai.responses.create(model="gpt-5", input="x", previous_response_id="resp_unknown")
    assert info.value.code == "previous_response_not_found"
    assert info.value.param == "previous_response_id" and info.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        await oai.responses.retrieve("resp_missing")
    resp = await oai.responses.create(model="gpt-5", input="js", text={"format": {"type": "json_object"}})
    assert json.loads(resp.output_text) == {"echo": "js"}
    cut = await oai.responses.create(model="gpt-5", input="long [[chunks=8]]", max_output_tokens=3)
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage.output_tokens == 3


async def test_openai_responses_usage_details_only_with_breakdown_directives(oai: AsyncOpenAI):
    plain = await oai.responses.create(model="gpt-5", input="no breakdown")
    assert plain.usage.model_dump(exclude_unset=True).keys() == {
        "input_tokens",
        "output_tokens",
        "total_tokens",
    }

    stream = await oai.responses.create(model="gpt-5", input="think [[cached=1 reasoning=6]]", stream=True)
    usage = [e async for e in stream][-1].response.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (3, 1)
    assert (usage.output_tokens, usage.output_tokens_details.reasoning_tokens) == (5 + 6, 6)
    assert usage.total_tokens == 3 + 11


# ---- Gemini -------------------------------------------------------------------------------------


async def test_gemini_stream_and_non_stream(upstream: FakeUpstream):
    client = gemini_client(upstream)
    config = types.GenerateContentConfig(
        system_instruction="be brief", temperature=0.25, max_output_tokens=64
    )
    prompt = "hola gemini [[chunks=7]]"
    chunks = [
        c
        async for c in await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents=prompt, config=config
        )
    ]
    assert "".join(c.text for c in chunks) == expected_reply(prompt) and len(chunks) == 7
    assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None] * 6
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert (
        last.usage_metadata.candidates_token_count == 7
        and chunks[0].usage_metadata.candidates_token_count is None
    )
    assert last.usage_metadata.prompt_token_count == 2 + len(prompt.split())
    assert last.response_id and last.model_version == "gemini-2.5-flash"
    req = upstream.last_request(":streamGenerateContent")
    assert req.path == "/v1/models/gemini-2.5-flash:streamGenerateContent" and req.query == {"alt": "sse"}
    assert req.headers["x-goog-api-key"] == "gk-test"
    assert req.json["systemInstruction"]["parts"][0]["text"] == "be brief"
    assert req.json["generationConfig"] == {"temperature": 0.25, "maxOutputTokens": 64}

    resp = await client.aio.models.generate_content(
        model="gemini-2.5-flash",
        contents="as json",
        config=types.GenerateContentConfig(response_mime_type="application/json"),
    )
    assert json.loads(resp.text) == {"echo": "as json"} and resp.usage_metadata.total_token_count == 2 + 5
    beta = genai.Client(
        api_key="gk-test", http_options=types.HttpOptions(base_url=upstream.url, api_version="v1beta")
    )
    cut = await beta.aio.models.generate_content(
        model="gemini-2.5-flash", contents="x", config=types.GenerateContentConfig(max_output_tokens=2)
    )
    assert cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert upstream.requests[-1].path.startswith("/v1beta/models/")


async def test_gemini_raw_wire_shape(upstream: FakeUpstream):
    async with httpx.AsyncClient() as client:
        resp = await client.post(
            upstream.url + "/v1beta/models/g:streamGenerateContent?alt=sse",
            json={"contents": [{"role": "user", "parts": [{"text": "raw [[chunks=3]]"}]}]},
        )
    events = [e for e in resp.content.split(b"\r\n\r\n") if e]
    data = [json.loads(e.removeprefix(b"data: ")) for e in events]
    assert len(data) == 3 and resp.content.endswith(b"\r\n\r\n")
    assert ["finishReason" in d["candidates"][0] for d in data] == [False, False, True]
    assert ["candidatesTokenCount" in d["usageMetadata"] for d in data] == [False, False, True]
    assert len({d["responseId"] for d in data}) == 1 and data[0]["modelVersion"] == "g"


async def test_gemini_usage_reports_cache_and_thoughts_only_with_breakdown_directives(upstream: FakeUpstream):
    client = gemini_client(upstream)
    plain = await client.aio.models.generate_content(model="g", contents="no breakdown")
    assert plain.usage_metadata.cached_content_token_count is None
    assert plain.usage_metadata.thoughts_token_count is None

    prompt = "think [[chunks=3 cached=2 reasoning=4]]"
    chunks = [c async for c in await client.aio.models.generate_content_stream(model="g", contents=prompt)]
    assert {c.usage_metadata.thoughts_token_count for c in chunks} == {4}  # thinking came first
    last = chunks[-1].usage_metadata
    assert (last.prompt_token_count, last.cached_content_token_count) == (len(prompt.split()), 2)
    assert last.candidates_token_count == 3  # without the thoughts
    assert last.total_token_count == last.prompt_token_count + 3 + 4


# ---- Z.AI -----------------------------------------------------------------------------------------


async def test_zai_stream_and_non_stream(upstream: FakeUpstream):
    client = zai_client(upstream)
    prompt = "ni hao [[chunks=6]]"
    chunks, text = await asyncio.to_thread(zai_stream, client, prompt, temperature=0.5, max_tokens=50)
    assert text == expected_reply(prompt)
    assert all(c.choices[0].delta.role == "assistant" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[-1].usage.completion_tokens, chunks[-1].usage.prompt_tokens) == (6, len(prompt.split()))
    req = upstream.last_request("/api/paas/v4/chat/completions")
    assert req.headers["authorization"] == "Bearer id.secret"
    assert (req.json["temperature"], req.json["max_tokens"], req.json["stream"]) == (0.5, 50, True)
    resp = await asyncio.to_thread(
        client.chat.completions.create, model="glm-4.6", messages=user("plain", system="sys prompt")
    )
    assert resp.choices[0].message.content == expected_reply("plain")
    assert resp.usage.prompt_tokens == 3 and resp.choices[0].finish_reason == "stop"


async def test_zai_usage_details_only_with_breakdown_directives(upstream: FakeUpstream):
    client = zai_client(upstream)
    chunks, _ = await asyncio.to_thread(zai_stream, client, "no breakdown [[chunks=2]]")
    assert chunks[-1].usage.prompt_tokens_details is None
    assert chunks[-1].usage.completion_tokens_details is None

    resp = await asyncio.to_thread(
        client.chat.completions.create, model="glm-4.6", messages=user("glm [[cached=1 reasoning=2]]")
    )
    assert (resp.usage.prompt_tokens, resp.usage.prompt_tokens_details.cached_tokens) == (3, 1)
    assert (resp.usage.completion_tokens, resp.usage.completion_tokens_details.reasoning_tokens) == (7, 2)
    assert resp.usage.total_tokens == 3 + 7


# ---- faults ----------------------------------------------------------------------------------------

GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
ZAI_CODES = {400: "1210", 401: "1000", 429: "1302", 500: "500", 503: "1305"}
STATUS_CASES = [
    (429, openai.RateLimitError, genai_errors.ClientError, zai_errors.APIReachLimitError),
    (400, openai.BadRequestError, genai_errors.ClientError, zai_errors.APIRequestFailedError),
    (401, openai.AuthenticationError, genai_errors.ClientError, zai_errors.APIAuthenticationError),
    (500, openai.InternalServerError, genai_errors.ServerError, zai_errors.APIInternalError),
    (503, openai.InternalServerError, genai_errors.ServerError, zai_errors.APIServerFlowExceedError),
]


@pytest.mark.parametrize(("status", "oai_exc", "gem_exc", "zai_exc"), STATUS_CASES)
async def test_status_faults_map_to_sdk_exceptions(upstream, oai, status, oai_exc, gem_exc, zai_exc):
    prompt = f"boom [[fault={status} retry_after=3]]"
    with pytest.raises(oai_exc) as o:
        await openai_stream_text(oai, prompt)
    with pytest.raises(gem_exc) as g:
        await gemini_client(upstream).aio.models.generate_content(model="g", contents=prompt)
    with pytest.raises(zai_exc) as z:
        await asyncio.to_thread(zai_stream, zai_client(upstream), prompt)
    assert (g.value.code, g.value.status) == (status, GEMINI_STATUS[status])
    assert z.value.response.json()["error"]["code"] == ZAI_CODES[status]
    assert o.value.status_code == status and o.value.body["message"]
    if status == 429:
        assert o.value.code == "rate_limit_exceeded" and o.value.type == "requests"
        for response in (o.value.response, g.value.response, z.value.response):
            assert response.headers["retry-after"] == "3"


async def test_queued_faults_by_model_and_times(upstream: FakeUpstream, oai: AsyncOpenAI):
    upstream.push_fault("429", times=2, model="gpt-b", retry_after=5)
    text, _, _ = await openai_stream_text(oai, "ok")
    assert text == expected_reply("ok")
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as info:
            await oai.chat.completions.create(model="gpt-b", messages=user("x"))
        assert info.value.response.headers["retry-after"] == "5"
    await oai.chat.completions.create(model="gpt-b", messages=user("x"))
    upstream.push_fault("500")
    with pytest.raises(genai_errors.ServerError):
        await gemini_client(upstream).aio.models.generate_content(model="any", contents="x")


async def test_drop_raises_protocol_errors(upstream: FakeUpstream, oai: AsyncOpenAI):
    prompt = "dropping [[fault=drop:2 chunks=6 delay=0.01]]"
    stream = await oai.chat.completions.create(model="gpt-test", messages=user(prompt), stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "".join(split_reply(expected_reply(prompt), 6)[:2])
    with pytest.raises(httpx2.RemoteProtocolError):
        async for _ in await gemini_client(upstream).aio.models.generate_content_stream(
            model="g", contents=prompt
        ):
            pass
    with pytest.raises(httpx.RemoteProtocolError):
        await asyncio.to_thread(zai_stream, zai_client(upstream), prompt)
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(model="gpt-test", messages=user("x [[fault=drop:0]]"))
    assert upstream.disconnects == []  # a deliberate cut is not a client disconnect
    with pytest.raises(openai.BadRequestError, match="directive"):
        await oai.chat.completions.create(model="gpt-test", messages=user("x [[chunks=lots]]"))


async def test_stall_and_hang_hit_sdk_read_timeouts(upstream: FakeUpstream, oai: AsyncOpenAI):
    short = oai.with_options(timeout=0.3)
    gem = gemini_client(upstream, timeout_ms=300)
    zai = zai_client(upstream, timeout=0.3)
    for fault in ("stall:2", "hang"):
        prompt = f"slow [[fault={fault}]]"
        with pytest.raises(openai.APITimeoutError):
            await openai_stream_text(short, prompt)
        with pytest.raises(httpx2.ReadTimeout):
            async for _ in await gem.aio.models.generate_content_stream(model="g", contents=prompt):
                pass
    with pytest.raises(httpx.ReadTimeout):  # mid-stream: zai does not wrap transport errors
        await asyncio.to_thread(zai_stream, zai, "slow [[fault=stall:1]]")
    with pytest.raises(zai_errors.APITimeoutError):  # before headers: wrapped
        await asyncio.to_thread(zai_stream, zai, "slow [[fault=hang]]")
    assert upstream.wait_for_disconnect(timeout=1.0, count=6)


async def test_first_byte_delay(oai: AsyncOpenAI):
    t0 = time.monotonic()
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=user("wait [[first_byte=0.3]]"), stream=True
    )
    assert time.monotonic() - t0 >= 0.3
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == expected_reply("wait")


# ---- disconnects ----------------------------------------------------------------------------------


async def test_client_close_is_seen_within_a_second(upstream: FakeUpstream, oai: AsyncOpenAI):
    prompt = "long [[chunks=50 delay=0.2]]"
    stream = await oai.chat.completions.create(model="gpt-test", messages=user(prompt), stream=True)
    await stream.__anext__()
    await stream.__anext__()
    closed_at = time.time()
    await stream.close()
    assert await upstream.wait_for_disconnect_async(timeout=1.0)
    path, seen_at = upstream.disconnects[0]
    assert path == "/v1/chat/completions" and seen_at - closed_at < 1.0

    gstream = await gemini_client(upstream).aio.models.generate_content_stream(model="g", contents=prompt)
    await gstream.__anext__()
    await gstream.aclose()
    assert await upstream.wait_for_disconnect_async(timeout=1.0, count=2)

    def zai_partial() -> None:
        resp = zai_client(upstream).chat.completions.create(model="glm", messages=user(prompt), stream=True)
        next(iter(resp))
        resp.response.close()

    await asyncio.to_thread(zai_partial)
    assert await upstream.wait_for_disconnect_async(timeout=1.0, count=3)
    assert upstream.disconnects[-1][0] == "/api/paas/v4/chat/completions"


# ---- control --------------------------------------------------------------------------------------


async def test_http_control_endpoints(upstream: FakeUpstream, oai: AsyncOpenAI):
    async with httpx.AsyncClient(base_url=upstream.url + "/_control") as ctl:
        assert (await ctl.post("/defaults", json={"chunks": 3})).json()["chunks"] == 3
        resp = await oai.chat.completions.create(model="gpt-test", messages=user("three"))
        assert resp.usage.completion_tokens == 3
        r = await ctl.post("/faults", json={"kind": "429", "times": 1, "model": "m2", "retry_after": 2})
        assert r.status_code == 200
        with pytest.raises(openai.RateLimitError) as info:
            await oai.chat.completions.create(model="m2", messages=user("x"))
        assert info.value.response.headers["retry-after"] == "2"
        assert (await ctl.post("/faults", json={"kind": "bogus"})).status_code == 400
        recorded = (await ctl.get("/requests")).json()
        assert [r["json"]["model"] for r in recorded] == ["gpt-test", "m2"]
        assert recorded[0]["headers"]["authorization"] == "Bearer sk-test"
        assert (await ctl.get("/disconnects")).json() == []
        await ctl.post("/reset")
        assert (await ctl.get("/requests")).json() == []
    resp = await oai.chat.completions.create(model="gpt-test", messages=user("back to five"))
    assert resp.usage.completion_tokens == 5


async def test_many_concurrent_streams(oai: AsyncOpenAI):
    results = await asyncio.gather(*(openai_stream_text(oai, f"n{i} [[chunks=20]]") for i in range(60)))
    assert [r[0] for r in results] == [expected_reply(f"n{i}", 20) for i in range(60)]


def test_cli_serves_until_terminated():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--port", "0", "--chunks", "4"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("OPENAI_BASE_URL=http://127.0.0.1:")
        base = first.split("=", 1)[1]
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(base.removesuffix("/v1") + "/_control/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        body = {"model": "m", "messages": user("cli")}
        data = httpx.post(base + "/chat/completions", json=body, timeout=5).json()
        assert data["choices"][0]["message"]["content"] == expected_reply("cli", 4)
        assert data["usage"]["completion_tokens"] == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)
