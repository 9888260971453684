"""Client tools through the AI SDK's UI message stream: the published `ai` packages' own Chat
(AbstractChat, what useChat runs) with addToolResult and sendAutomaticallyWhen, over
DefaultChatTransport (ai 7 and the strict 5.0 line) and WebSocketChatTransport (ai 7), against the
live server; every chunk checked by both packages' parsers; the wire and the refusals by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from accounts.keys import api_key_create
from conversations.codecs.ai_sdk import continued_message_id
from conversations.events import (
    Completed,
    Delta,
    Failed,
    Started,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStarted,
)
from conversations.models import Conversation, Message
from conversations.turns.parts import text_part, tool_call_part, tool_result_part
from conversations.views.ui_chat import ui_message_id
from conversations.wire.ui_message import UIMessageEncoder
from providers.base import ToolCall, ToolResult
from tests.factories import make_conversation, make_message
from tests.fake_upstream import expected_tool_arguments, expected_tool_reply
from tests.js_clients import run_js
from tests.origins import page_origin

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["ai", "ai5"]  # ai 7 (current) and ai 5.0.0 (strict chunk schemas): tests/js/package.json

LOOKUP_SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
LOOKUP = {"lookup": {"description": "Look a word up.", "inputSchema": LOOKUP_SCHEMA}}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
CLOCK_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string"}}}
WEATHER = {"weather": {"inputSchema": WEATHER_SCHEMA}, "clock": {"inputSchema": CLOCK_SCHEMA}}

# The keys ai 5.0's strict schema takes on each chunk type this server sends (any other fails the stream).
STRICT_KEYS = {
    "start": {"type", "messageId", "messageMetadata"},
    "start-step": {"type"},
    "text-start": {"type", "id"},
    "text-delta": {"type", "id", "delta"},
    "text-end": {"type", "id"},
    "tool-input-start": {"type", "toolCallId", "toolName"},
    "tool-input-delta": {"type", "toolCallId", "inputTextDelta"},
    "tool-input-available": {"type", "toolCallId", "toolName", "input"},
    "message-metadata": {"type", "messageMetadata"},
    "finish-step": {"type"},
    "finish": {"type", "messageMetadata"},
    "error": {"type", "errorText"},
    "abort": {"type"},
    "data-artifact": {"type", "id", "data"},
}


@pytest.fixture
def key(user):
    return api_key_create(owner=user, name="ai-sdk-tools")[1]


@pytest.fixture
def demo(settings):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0.001
    settings.LLM_FALLBACKS = []
    return settings


@pytest.fixture
def js(asgi_server, key):
    def run(pkg: str, scenario: str, **args):
        payload = {"pkg": pkg, "base": asgi_server.url, "headers": {"X-API-Key": key}, "scenario": scenario}
        return run_js("ai_sdk_ui_tools.mjs", {"transport": "http", **payload, **args}, timeout=90)

    return run


def types(chunks: list[dict]) -> list[str]:
    return [c["type"] for c in chunks]


def rows(chat_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation__session_key=chat_id).order_by("created_at"))


def assert_clean(out: dict) -> None:
    assert out.get("thrown") is None and out.get("finishError") is None, out
    assert out["errors"] == [] and out["status"] == "ready", out
    assert out["validation"] == {"ai": None, "ai5": None}  # every chunk, under both packages' parsers
    for chunk in (c for stream in out["streams"] for c in stream):
        assert set(chunk) <= STRICT_KEYS[chunk["type"]], chunk


def assert_one_step(chunks: list[dict]) -> None:
    """One model call: start, start-step … finish-step, finish."""
    assert types(chunks)[:2] == ["start", "start-step"] and types(chunks)[-2:] == ["finish-step", "finish"]
    assert types(chunks).count("start-step") == types(chunks).count("finish-step") == 1


# --- the loop with the SDK's own Chat ---------------------------------------------------------------
@pytest.mark.parametrize("pkg", PACKAGES)
def test_the_demo_calls_the_tool_and_the_chat_sends_the_result_and_gets_the_answer(js, demo, pkg, user):
    chat = f"loop-{pkg}"
    out = js(
        pkg,
        "loop",
        chatId=chat,
        text="kraken",
        tools=LOOKUP,
        outputs={"lookup": "a sea monster"},
        history=True,
    )
    assert_clean(out)
    user_row, answer, tool, final = rows(chat)
    assert (user_row.role, answer.role, tool.role, final.role) == ("user", "assistant", "tool", "assistant")

    # the call, streamed: one step ending in tool calls
    called, answered = out["streams"]
    assert_one_step(called)
    assert types(called) == [
        "start",
        "start-step",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-available",
        "message-metadata",
        "finish-step",
        "finish",
    ]
    (call,) = answer.parts
    assert called[0]["messageId"] == str(answer.pk)
    assert called[2] == {"type": "tool-input-start", "toolCallId": call["id"], "toolName": "lookup"}
    assert (
        "".join(c["inputTextDelta"] for c in called if c["type"] == "tool-input-delta") == call["arguments"]
    )
    assert called[5] == {
        "type": "tool-input-available",
        "toolCallId": call["id"],
        "toolName": "lookup",
        "input": {"query": "kraken"},
    }
    assert called[-1]["messageMetadata"]["finishReason"] == "tool-calls"
    assert (answer.status, answer.finish_reason) == ("complete", "tool_calls")

    # what the SDK sent after addToolResult: the assistant message last, messageId its id
    first, second = out["requests"]
    assert first["trigger"] == "submit-message" and first["messages"][-1]["role"] == "user"
    assert first["tools"] == LOOKUP and second["tools"] == LOOKUP
    assert second["trigger"] == "submit-message"
    assistant = second["messages"][-1]
    assert assistant["role"] == "assistant" and second["messageId"] == assistant["id"] == str(answer.pk)
    tool_part = next(p for p in assistant["parts"] if p["type"] == "tool-lookup")
    assert (tool_part["state"], tool_part["output"]) == ("output-available", "a sea monster")

    # stored: a tool message answering the call, then the answer to it
    assert tool.parent_id == answer.pk and final.parent_id == tool.pk
    assert tool.parts == [
        {
            "type": "tool_result",
            "call_id": call["id"],
            "name": "",
            "output": "a sea monster",
            "is_error": False,
        }
    ]
    assert final.status == "complete" and "The tool lookup returned: a sea monster" in final.content

    # the continuation: one more step in the same UI message, the results not sent back
    assert_one_step(answered)
    assert not [t for t in types(answered) if t.startswith("tool-")]
    assert answered[0]["messageId"] == str(answer.pk)  # the message the client holds, not a new one
    assert answered[0]["messageMetadata"]["userMessageId"] == str(tool.pk)
    assert answered[-1]["messageMetadata"]["finishReason"] == "stop"

    # the Chat holds one assistant message of two steps, as useChat shows it
    _, message = out["messages"]
    assert message["id"] == str(answer.pk) and message["role"] == "assistant"
    step_types = [p["type"] for p in message["parts"]]
    assert step_types == ["step-start", "tool-lookup", "step-start", "text"]
    lookup = message["parts"][1]
    assert (lookup["toolCallId"], lookup["state"], lookup["input"], lookup["output"]) == (
        call["id"],
        "output-available",
        {"query": "kraken"},
        "a sea monster",
    )
    assert message["parts"][3]["text"] == final.content

    # the history rebuilt as docs/ai-sdk.md shows it is what the Chat held live
    assert out["history"] == [normalized(m) for m in out["messages"]]
    assert out["historyValid"] is None  # ai 7's own validateUIMessages takes it


def normalized(message: dict) -> dict:
    """A live UI message without what the history does not keep (metadata; undefined keys are gone)."""
    return {k: v for k, v in message.items() if k != "metadata"}


@pytest.mark.parametrize("pkg", PACKAGES)
def test_the_openai_provider_streams_parallel_calls_and_takes_their_results(js, openai_upstream, pkg):
    chat, text = f"upstream-{pkg}", "Rome [[tools=weather,clock]]"
    outputs = {"weather": {"temp": 21, "sky": "clear"}, "clock": "12:00"}
    out = js(pkg, "loop", chatId=chat, text=text, tools=WEATHER, outputs=outputs)
    assert_clean(out)
    called, answered = out["streams"]
    assert_one_step(called)
    starts = [c for c in called if c["type"] == "tool-input-start"]
    available = [c for c in called if c["type"] == "tool-input-available"]
    assert [c["toolName"] for c in starts] == [c["toolName"] for c in available] == ["weather", "clock"]
    assert available[0]["input"] == json.loads(expected_tool_arguments(WEATHER_SCHEMA, text))
    assert available[1]["input"] == json.loads(expected_tool_arguments(CLOCK_SCHEMA, text))
    for start in starts:  # each call's arguments arrive in fragments, after its start
        fragments = [c for c in called if c.get("toolCallId") == start["toolCallId"]]
        assert types(fragments)[0] == "tool-input-start" and types(fragments)[-1] == "tool-input-available"
        whole = "".join(c["inputTextDelta"] for c in fragments if c["type"] == "tool-input-delta")
        assert json.loads(whole) == fragments[-1]["input"]
    # an object output is sent to the model (and stored) as its JSON text, a string as is
    results = ['{"temp":21,"sky":"clear"}', "12:00"]
    reply = expected_tool_reply(results)
    assert "".join(c["delta"] for c in answered if c["type"] == "text-delta") == reply
    tool = Message.objects.get(conversation__session_key=chat, role="tool")
    assert [p["output"] for p in tool.parts] == results
    sent = openai_upstream.requests[-1].json["messages"]
    assert [m["role"] for m in sent[-3:]] == ["assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in sent[-2:]] == [c["toolCallId"] for c in starts]
    _, message = out["messages"]
    parts = [p for p in message["parts"] if p["type"].startswith("tool-")]
    assert [p["output"] for p in parts] == [outputs["weather"], outputs["clock"]]  # the client's own values
    assert message["parts"][-1] == {"type": "text", "text": reply, "state": "done"}


def test_an_output_error_is_stored_as_an_error_result(js, openai_upstream):
    """ai 7's addToolOutput({state: "output-error"}) (5.0.0 has no error state to send)."""
    chat, text = "output-error", "Oslo [[tools=weather]]"
    out = js(
        "ai", "loop", chatId=chat, text=text, tools=WEATHER, outputs={"weather": {"error": "no network"}}
    )
    assert_clean(out)
    part = next(p for p in out["requests"][1]["messages"][-1]["parts"] if p["type"] == "tool-weather")
    assert (part["state"], part["errorText"]) == ("output-error", "no network")
    tool = Message.objects.get(conversation__session_key=chat, role="tool")
    assert (tool.parts[0]["output"], tool.parts[0]["is_error"]) == ("no network", True)
    assert out["messages"][-1]["parts"][-1]["text"] == expected_tool_reply(["no network"])


def test_the_loop_over_the_websocket_transport(js, demo):
    chat = "ws-loop"
    out = js(
        "ai",
        "loop",
        chatId=chat,
        text="kraken",
        tools=LOOKUP,
        transport="ws",
        outputs={"lookup": "a myth"},
        history=True,
    )
    assert_clean(out)
    _, answer, tool, final = rows(chat)
    called, answered = out["streams"]
    assert types(called)[2:6] == [
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-available",
    ]
    assert answered[0]["messageId"] == called[0]["messageId"] == str(answer.pk)
    second = out["requests"][1]  # the send frame's body: the assistant message last, messageId its id
    assert second["trigger"] == "submit-message" and second["messageId"] == second["messages"][-1]["id"]
    assert tool.parent_id == answer.pk and final.status == "complete"
    _, message = out["messages"]
    assert [p["type"] for p in message["parts"]] == ["step-start", "tool-lookup", "step-start", "text"]
    assert out["history"] == [normalized(m) for m in out["messages"]]
    assert out["historyValid"] is None


# --- refusals ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("pkg", "transport"), [("ai", "http"), ("ai5", "http"), ("ai", "ws")])
def test_a_result_for_a_call_the_answer_did_not_make_is_an_error_and_nothing_is_stored(
    js, demo, pkg, transport
):
    chat = f"unknown-{pkg}-{transport}"
    out = js(
        pkg, "refuse", chatId=chat, text="kraken", tools=LOOKUP, transport=transport, badCallId="call_nope"
    )
    assert out["first"]["errors"] == []
    if transport == "http":
        assert "invalid_tool_results" in out["thrown"] and "call_nope" in out["thrown"]
    else:
        assert any("call_nope" in error for error in out["refused"]["errors"]), out
    assert [m.role for m in rows(chat)] == ["user", "assistant"]  # nothing stored


# --- resume mid-arguments on another process --------------------------------------------------------
@pytest.mark.parametrize(("pkg", "transport"), [("ai", "http"), ("ai5", "http"), ("ai", "ws")])
def test_a_call_resumed_mid_arguments_on_another_process_then_answered_there(
    two_servers, upstream, pkg, transport
):
    a, b = two_servers
    chat, text = f"mp-tools-{pkg}-{transport}", "Lima [[tools=weather delay=0.4]]"
    args = {
        "pkg": pkg,
        "transport": transport,
        "scenario": "resume",
        "base": a,
        "resumeBase": b,
        "chatId": chat,
        "text": text,
        "tools": {"weather": {"inputSchema": WEATHER_SCHEMA}},
        "outputs": {"weather": "sunny"},
    }
    out = run_js("ai_sdk_ui_tools.mjs", args, timeout=90)
    assert out.get("thrown") is None and out.get("finishError") is None, out
    assert out["first"][-2:] == ["tool-input-start", "tool-input-delta"]  # left mid-arguments
    resumed = out["resumed"]
    assert resumed is not None and resumed["errors"] == []
    assert resumed["types"][:3] == ["start", "start-step", "tool-input-start"]
    assert resumed["types"].count("tool-input-delta") == 3 and resumed["types"][-1] == "finish"
    (part,) = [p for p in resumed["message"]["parts"] if p["type"] == "tool-weather"]
    assert part["state"] == "input-available"
    assert part["input"] == json.loads(expected_tool_arguments(WEATHER_SCHEMA, text))
    answer = Message.objects.get(conversation__session_key=chat, role="assistant", parent__role="user")
    assert resumed["message"]["id"] == str(answer.pk)
    assert answer.parts[0]["id"] == part["toolCallId"] and answer.status == "complete"
    # the result went to the second server, which answered it in the same UI message
    assert out["errors"] == [] and out["status"] == "ready", out
    assert out["validation"] == {"ai": None, "ai5": None}
    _, message = out["messages"]
    assert message["id"] == str(answer.pk)
    assert message["parts"][-1]["text"] == expected_tool_reply(["sunny"])
    final = Message.objects.get(conversation__session_key=chat, role="assistant", parent__role="tool")
    assert final.status == "complete" and final.parent.parent_id == answer.pk


# --- the wire by hand --------------------------------------------------------------------------------
def post_chat(url: str, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/api/ai-sdk/chat", json=body, timeout=20, **kwargs)


def data_chunks(body: str) -> list[dict]:
    raw = [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]
    assert raw[-1] == "[DONE]"
    return [json.loads(item) for item in raw[:-1]]


def user_message(text: str, ui_id: str = "u1") -> dict:
    return {"id": ui_id, "role": "user", "parts": [{"type": "text", "text": text}]}


def first_round(
    url: str, chat: str, text: str = "kraken", tools: dict | None = None
) -> tuple[list[dict], dict]:
    """A user message offered the tools: the chunks, and the assistant UI message as the SDK builds it."""
    body = {
        "id": chat,
        "messages": [user_message(text)],
        "trigger": "submit-message",
        "tools": tools or LOOKUP,
    }
    response = post_chat(url, body)
    assert response.status_code == 200, response.text
    chunks = data_chunks(response.text)
    parts = [{"type": "step-start"}]
    for chunk in chunks:
        if chunk["type"] == "tool-input-available":
            parts.append(
                {
                    "type": f"tool-{chunk['toolName']}",
                    "toolCallId": chunk["toolCallId"],
                    "state": "input-available",
                    "input": chunk["input"],
                }
            )
    return chunks, {"id": chunks[0]["messageId"], "role": "assistant", "parts": parts}


def answered(message: dict, **result) -> dict:
    """The message after addToolResult: each call's part with ``result`` (default: an output)."""
    result = result or {"state": "output-available", "output": "found"}
    return {**message, "parts": [{**p, **result} if "toolCallId" in p else p for p in message["parts"]]}


def continuation(chat: str, message: dict, **extra) -> dict:
    body = {"id": chat, "messages": [user_message("kraken"), message], "trigger": "submit-message"}
    return {**body, "messageId": message["id"], "tools": LOOKUP, **extra}


def test_a_retried_continuation_replays_the_stored_answer(asgi_server, demo):
    _, message = first_round(asgi_server.url, "retry-results")
    body = continuation("retry-results", answered(message))
    first, again = post_chat(asgi_server.url, body), post_chat(asgi_server.url, body)
    assert first.status_code == again.status_code == 200
    texts = [
        "".join(c["delta"] for c in data_chunks(r.text) if c["type"] == "text-delta") for r in (first, again)
    ]
    assert texts[0] == texts[1] and "returned: found" in texts[0]
    assert [m.role for m in rows("retry-results")] == ["user", "assistant", "tool", "assistant"]
    assert data_chunks(again.text)[0]["messageId"] == message["id"]


def test_other_results_for_answered_calls_are_409_and_not_taken_for_a_retry(asgi_server, demo):
    _, message = first_round(asgi_server.url, "moved-on")
    assert post_chat(asgi_server.url, continuation("moved-on", answered(message))).status_code == 200
    other = answered(message, state="output-available", output="something else")
    late = post_chat(asgi_server.url, continuation("moved-on", other))
    assert late.status_code == 409 and late.json()["error"]["code"] == "tool_calls_answered"
    assert [m.role for m in rows("moved-on")] == ["user", "assistant", "tool", "assistant"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"state": "input-available"}, 422, "invalid_tool_results", "messages"),  # a call left unanswered
        ({"state": "approval-requested", "approval": {"id": "a1"}}, 422, "tools_not_supported", "messages"),
        (
            {"state": "output-available", "output": "x", "providerExecuted": True},
            422,
            "tools_not_supported",
            "messages",
        ),
        ({"state": "output-error"}, 422, "invalid_input", "messages"),  # no errorText
        ({"state": "output-available", "output": "x", "preliminary": True}, 422, "invalid_input", "messages"),
        (
            {"state": "output-available", "output": "x", "toolCallId": "call_other"},
            422,
            "invalid_tool_results",
            "tool_results",
        ),
        ({"state": "output-available", "output": "x" * 300_000}, 413, "payload_too_large", "tool_results"),
    ],
)
def test_a_bad_result_is_refused_naming_it_and_nothing_is_stored(
    asgi_server, demo, change, status, code, field
):
    chat = f"bad-{code}-{len(str(change))}"
    _, message = first_round(asgi_server.url, chat)
    response = post_chat(asgi_server.url, continuation(chat, answered(message, **change)))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("field")) == (code, field), error
    assert [m.role for m in rows(chat)] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"messageId": "not-the-assistant"}, "messageId", "the assistant message"),
        (
            {"tools": {"lookup": {"inputSchema": {"type": "object"}, "execute": "x"}}},
            "tools",
            "tools.lookup.execute",
        ),
        ({"tools": {"lookup": {"inputSchema": "object"}}}, "tools", "JSON Schema"),
        ({"tools": {"lookup": "a tool"}}, "tools", "tool definition"),
        ({"tools": ["lookup"]}, "tools", "must be an object"),
        ({"tools": {"not a name": {}}}, "tools", "the tool name"),
    ],
)
def test_a_bad_request_is_422_naming_the_field(asgi_server, demo, body, field, words):
    _, message = first_round(asgi_server.url, "bad-fields")
    response = post_chat(asgi_server.url, {**continuation("bad-fields", answered(message)), **body})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error
    assert [m.role for m in rows("bad-fields")] == ["user", "assistant"]


def test_an_assistant_message_without_results_and_a_tool_part_in_a_user_message_are_422(asgi_server, demo):
    _, message = first_round(asgi_server.url, "no-results")
    text_only = {**message, "parts": [{"type": "step-start"}, {"type": "text", "text": "hi"}]}
    response = post_chat(asgi_server.url, continuation("no-results", text_only))
    assert response.status_code == 422 and "no tool results" in response.json()["error"]["message"]
    tool_part = {"type": "tool-lookup", "toolCallId": "c", "state": "output-available", "output": "x"}
    user = {"id": "u9", "role": "user", "parts": [{"type": "text", "text": "hi"}, tool_part]}
    response = post_chat(asgi_server.url, {"id": "no-results", "messages": [user]})
    assert (
        response.status_code == 422 and "tool part in a user message" in response.json()["error"]["message"]
    )
    assert [m.role for m in rows("no-results")] == ["user", "assistant"]


def test_only_the_last_steps_parts_are_the_rounds_results(asgi_server, demo, user, key):
    """A loop's message keeps its earlier rounds' parts (answered and stored): only the parts after
    its last step-start are read, the SDK's own rule (lastAssistantMessageIsCompleteWithToolCalls)."""
    chat = make_conversation(owner=user, session_key="steps")
    question = make_message(chat, role="user", content="kraken", client_message_id="u1")
    calls = [tool_call_part(ToolCall("c1", "lookup", '{"query":"kraken"}'))]
    first = make_message(chat, role="assistant", parts=calls, parent=question, status="complete")
    results = [tool_result_part(ToolResult("c1", "a myth"))]
    tool = make_message(chat, role="tool", content="a myth", parts=results, parent=first)
    calls = [tool_call_part(ToolCall("c2", "lookup", '{"query":"squid"}'))]
    second = make_message(chat, role="assistant", parts=calls, parent=tool, status="complete")
    message = {
        "id": str(first.pk),  # the UI message of the loop: its first answer's id
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {
                "type": "tool-lookup",
                "toolCallId": "c1",
                "state": "output-available",
                "input": {},
                "output": "a myth",
            },
            {"type": "step-start"},
            {
                "type": "tool-lookup",
                "toolCallId": "c2",
                "state": "output-available",
                "input": {},
                "output": "a squid",
            },
        ],
    }
    headers = {"X-API-Key": key}
    response = post_chat(asgi_server.url, continuation("steps", message), headers=headers)
    assert response.status_code == 200, response.text
    chunks = data_chunks(response.text)
    assert chunks[0]["messageId"] == str(first.pk)
    stored = Message.objects.get(conversation=chat, role="tool", parent=second)
    assert [p["call_id"] for p in stored.parts] == ["c2"] and stored.content == "a squid"
    assert "returned: a squid" in "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    # a last step with no tool part (text only) carries no results
    done = {**message, "parts": [*message["parts"], {"type": "step-start"}, {"type": "text", "text": "ok"}]}
    refused = post_chat(asgi_server.url, continuation("steps", done), headers=headers)
    assert (
        refused.status_code == 422
        and "no tool results in its last step" in refused.json()["error"]["message"]
    )


def test_a_continuation_over_frames_is_numbered_from_zero_and_keeps_the_message(asgi_server, demo):
    _, message = first_round(asgi_server.url, "ws-frames")
    body = continuation("ws-frames", answered(message))
    frame = {"type": "send", "requestId": "r1", "headers": {}, "body": {"tools": body.pop("tools")}, **body}
    url = asgi_server.url.replace("http://", "ws://") + "/ws/ai-sdk/chat"
    with ws_connect(url, origin=page_origin(asgi_server.url), open_timeout=10) as ws:
        ws.send(json.dumps(frame))
        frames = []
        while not frames or frames[-1]["type"] not in ("end", "error"):
            frames.append(json.loads(ws.recv(timeout=15)))
    chunks = [f for f in frames if f["type"] == "chunk"]
    assert [f["sequence"] for f in chunks] == list(range(len(chunks)))
    assert chunks[0]["chunk"]["messageId"] == message["id"]
    assert not [f for f in chunks if f["chunk"]["type"].startswith("tool-")]
    assert frames[-1]["type"] == "end"


SLOW = "Lima [[tools=weather chunks=20 delay=0.05]]"  # the answer to the results streams slowly too
SLOW_TOOLS = {"weather": {"inputSchema": WEATHER_SCHEMA}}


def slow_continuation(url: str, chat: str) -> tuple[dict, dict]:
    """A round whose call is answered: the first answer's UI message, and the results' body."""
    _, message = first_round(url, chat, SLOW, SLOW_TOOLS)
    body = {**continuation(chat, answered(message)), "tools": SLOW_TOOLS}
    body["messages"][0] = user_message(SLOW)
    return message, body


def test_resuming_the_answer_to_results_over_http_keeps_the_loops_message(asgi_server, openai_upstream):
    """The resume's start names the client's message (the loop's first answer), as the live one did."""
    message, body = slow_continuation(asgi_server.url, "resume-results")
    with httpx.stream("POST", f"{asgi_server.url}/api/ai-sdk/chat", json=body, timeout=20) as live:
        lines = live.iter_lines()
        while '"text-delta"' not in next(lines):
            pass  # the answer to the results is streaming: leave it
    resumed = httpx.get(f"{asgi_server.url}/api/ai-sdk/chat/resume-results/stream", timeout=20)
    assert resumed.status_code == 200
    chunks = data_chunks(resumed.text)
    final = Message.objects.get(
        conversation__session_key="resume-results", role="assistant", parent__role="tool"
    )
    assert chunks[0]["messageId"] == message["id"] != str(final.pk)
    assert "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == expected_tool_reply(
        ["found"], 20
    )
    assert types(chunks)[-1] == "finish"


def frames_until(ws, request_id: str) -> list[dict]:
    frames: list[dict] = []
    while not frames or frames[-1]["type"] not in ("end", "error", "no-active"):
        frame = json.loads(ws.recv(timeout=15))
        if frame["requestId"] == request_id:
            frames.append(frame)
    return frames


def test_resuming_the_answer_to_results_over_a_second_socket_numbers_it_alike(asgi_server, openai_upstream):
    message, body = slow_continuation(asgi_server.url, "ws-resume-results")
    tools = body.pop("tools")
    frame = {"type": "send", "requestId": "s", "headers": {}, "body": {"tools": tools}, **body}
    url, origin = (
        asgi_server.url.replace("http://", "ws://") + "/ws/ai-sdk/chat",
        page_origin(asgi_server.url),
    )
    with (
        ws_connect(url, origin=origin, open_timeout=10) as tab1,
        ws_connect(url, origin=origin, open_timeout=10) as tab2,
    ):
        tab1.send(json.dumps(frame))
        head = [json.loads(tab1.recv(timeout=10)) for _ in range(5)]
        resume = {"type": "resume", "requestId": "r", "id": "ws-resume-results", "headers": {}, "body": {}}
        tab2.send(json.dumps(resume))
        watched = frames_until(tab2, "r")
        sent = head + frames_until(tab1, "s")
    assert watched[0] == {"type": "start", "requestId": "r"} and watched[-1]["type"] == "end"
    assert [f["chunk"] for f in watched[1:-1]] == [f["chunk"] for f in sent[:-1]]
    assert [f["sequence"] for f in watched[1:-1]] == list(range(len(sent) - 1))
    assert watched[1]["chunk"]["messageId"] == message["id"]


# --- the history, rebuilt ----------------------------------------------------------------------------
def history_rows(user) -> dict[str, Message]:
    """Two tool rounds (the second with two calls, one failed), a user message after them, and an
    answer cut mid-arguments."""
    chat = make_conversation(owner=user, session_key="rebuilt")
    rows: dict[str, Message] = {}

    def add(name: str, role: str, content: str = "", parts: list | None = None, **fields) -> None:
        parent = fields.pop("parent", None)
        rows[name] = make_message(
            chat, role=role, content=content, parts=parts or [], parent=rows.get(parent), **fields
        )

    call = tool_call_part
    add("u1", "user", "weather?", client_message_id="ui-1")
    add(
        "a1",
        "assistant",
        "Checking.",
        [text_part("Checking."), call(ToolCall("c1", "weather", '{"city":"Rome"}'))],
        parent="u1",
    )
    add("t1", "tool", "21 C", [tool_result_part(ToolResult("c1", "21 C"))], parent="a1")
    clock, again = call(ToolCall("c2", "clock", '{"zone":"CET"}')), call(ToolCall("c3", "weather", "{}"))
    add("a2", "assistant", "", [clock, again], parent="t1")
    results = [
        tool_result_part(ToolResult("c2", "12:00")),
        tool_result_part(ToolResult("c3", "no network", True)),
    ]
    add("t2", "tool", "12:00\nno network", results, parent="a2")
    add("a3", "assistant", "It is 21 C at noon.", parent="t2")
    add("u2", "user", "thanks", parent="a3")
    cut = call(ToolCall("c4", "weather", '{"ci'), incomplete=True)
    add("a4", "assistant", "", [cut], parent="u2", status="failed")
    return rows


def test_the_ui_message_of_an_answer_is_its_tool_loops_first_answer(db, user):
    rows = history_rows(user)
    assert {name: ui_message_id(rows[name]) for name in ("a1", "a2", "a3", "a4")} == {
        "a1": str(rows["a1"].pk),
        "a2": str(rows["a1"].pk),
        "a3": str(rows["a1"].pk),
        "a4": str(rows["a4"].pk),
    }


def tool(name: str, call_id: str, state: str, **rest) -> dict:
    return {"type": f"tool-{name}", "toolCallId": call_id, "state": state, **rest}


def test_the_history_api_rebuilt_merges_each_loop_into_one_message(asgi_server, user, key):
    rows = history_rows(user)
    branch = httpx.get(
        f"{asgi_server.url}/api/sessions/rebuilt/messages",
        params={"branch": str(rows["a4"].pk)},
        headers={"X-API-Key": key},
    ).json()["results"]
    out = run_js("ai_sdk_ui_tools.mjs", {"scenario": "rebuild", "branch": branch})
    assert out.get("thrown") is None and out["valid"] is None, out
    assert out["messages"] == [
        {"id": "ui-1", "role": "user", "parts": [{"type": "text", "text": "weather?"}]},
        {
            "id": str(rows["a1"].pk),
            "role": "assistant",
            "parts": [
                {"type": "step-start"},
                {"type": "text", "text": "Checking.", "state": "done"},
                tool("weather", "c1", "output-available", input={"city": "Rome"}, output="21 C"),
                {"type": "step-start"},
                tool("clock", "c2", "output-available", input={"zone": "CET"}, output="12:00"),
                tool("weather", "c3", "output-error", input={}, errorText="no network"),
                {"type": "step-start"},
                {"type": "text", "text": "It is 21 C at noon.", "state": "done"},
            ],
        },
        {"id": str(rows["u2"].pk), "role": "user", "parts": [{"type": "text", "text": "thanks"}]},
        {
            "id": str(rows["a4"].pk),
            "role": "assistant",
            "parts": [{"type": "step-start"}, tool("weather", "c4", "input-streaming", input='{"ci')],
        },
    ]


# --- the encoder -------------------------------------------------------------------------------------
def encode(events: list, ui_message_id: str | None = None) -> list[dict]:
    encoder = UIMessageEncoder(ui_message_id)
    return [chunk for event in events for chunk in encoder.chunks(event.to_dict())]


def started(seq: int = 1) -> Started:
    return Started(
        seq, "m1", session_key="s", conversation_id="c", user_message_id="u", provider="p", model="x"
    )


def test_text_before_the_calls_is_closed_before_them_and_a_bad_json_input_is_its_text():
    chunks = encode(
        [
            started(),
            Delta(2, "m1", "Let me check."),
            ToolCallStarted(3, "m1", 0, "c1", "weather"),
            ToolCallDelta(4, "m1", 0, "c1", '{"city": '),
            ToolCallDelta(5, "m1", 0, "c1", "Par"),
            ToolCallDone(6, "m1", 0, "c1", "weather", '{"city": Par', None),
            Completed(7, "m1", "Let me check.", "tool_calls", "r1", "p", "x"),
        ],
        ui_message_id="first-answer",
    )
    assert types(chunks) == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-available",
        "finish-step",
        "finish",
    ]
    assert chunks[0]["messageId"] == "first-answer"
    assert chunks[8]["input"] == '{"city": Par'  # not JSON: the client sees what the model produced
    assert chunks[-1]["messageMetadata"]["finishReason"] == "tool-calls"


def test_text_after_a_call_is_a_text_part_of_its_own():
    chunks = encode(
        [
            started(),
            Delta(2, "m1", "First."),
            ToolCallStarted(3, "m1", 0, "c1", "weather"),
            Delta(4, "m1", "Then."),
            ToolCallDone(5, "m1", 0, "c1", "weather", "{}", {}),
            Completed(6, "m1", "First.Then.", "tool_calls", "r1", "p", "x"),
        ]
    )
    assert [(c["type"], c.get("id")) for c in chunks if c["type"].startswith("text-")] == [
        ("text-start", "text-m1"),
        ("text-delta", "text-m1"),
        ("text-end", "text-m1"),
        ("text-start", "text-m1-1"),
        ("text-delta", "text-m1-1"),
        ("text-end", "text-m1-1"),
    ]
    assert types(chunks).count("tool-input-start") == 1  # the call started once


def test_a_call_cut_mid_arguments_is_never_made_available():
    chunks = encode(
        [
            started(),
            ToolCallStarted(2, "m1", 0, "c1", "weather"),
            ToolCallDelta(3, "m1", 0, "c1", '{"ci'),
            Failed(4, "m1", "failed", "provider_error", "The provider failed.", ""),
        ]
    )
    assert types(chunks) == ["start", "start-step", "tool-input-start", "tool-input-delta", "error"]


def test_only_a_submit_of_tool_results_goes_on_in_the_clients_message():
    assistant = {"id": "a1", "role": "assistant", "parts": []}
    body = {"id": "c", "messages": [user_message("hi"), assistant]}
    assert continued_message_id({**body, "trigger": "submit-message"}) == "a1"
    assert continued_message_id(body) == "a1"  # submit-message is the default trigger
    assert continued_message_id({**body, "trigger": "regenerate-message"}) is None
    assert continued_message_id({"id": "c", "messages": [user_message("hi")]}) is None


# --- the docs ----------------------------------------------------------------------------------------
def test_the_docs_rebuild_code_is_the_tested_module():
    def block(text: str) -> str:
        found = re.search(r"// --- docs/ai-sdk.md: rebuild ---\n(.*?)// --- end ---", text, re.S)
        assert found, "the rebuild block's markers are missing"
        return found.group(1)

    module = (ROOT / "tests/js/ui_history.mjs").read_text()
    docs = (ROOT / "docs/ai-sdk.md").read_text()
    assert block(module) in docs


def test_nothing_was_left_in_the_database_by_a_refused_first_request(asgi_server, demo):
    response = post_chat(
        asgi_server.url,
        {"id": "tools-shape", "messages": [user_message("hi")], "tools": {"x": {"parameters": {}}}},
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "tools"
    assert not Conversation.objects.filter(session_key="tools-shape").exists()
