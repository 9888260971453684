"""A client tool round through the live server (native API, real ASGI server) served by Gemini and by
Z.AI: each adapter's real SDK against the fake upstream, every step stored, the results sent back in
the provider's shape; and the refusals that come before any upstream call, storing nothing."""

import base64
import json

import httpx
import pytest

from conversations.models import Conversation, Message
from tests.fake_upstream import expected_tool_arguments, expected_tool_reply
from tests.fake_upstream.gemini_wire import thought_signature
from tests.turn_client import sse_events

pytestmark = pytest.mark.django_db(transaction=True)

LOOKUP = {
    "name": "lookup",
    "description": "Look a word up in the encyclopedia.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": ["string", "null"]}, "depth": {"type": "integer", "minimum": 1}},
        "required": ["query"],
    },
}
CLOCK = {"name": "clock", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}
GEMINI_3 = "gemini:gemini-3-flash-preview"  # the fake checks thought signatures for Gemini 3, as Gemini does
CALL_EVENTS = ["started", "tool_call_start", "tool_call_delta", "tool_call_done", "usage", "completed"]


@pytest.fixture
def client(asgi_server, upstream, settings):
    settings.GEMINI_API_KEY = "gem-test"
    settings.GEMINI_BASE_URL = upstream.gemini_base_url
    settings.GEMINI_MODELS = ["gemini-2.5-flash", "gemini-3-flash-preview"]
    settings.ZAI_API_KEY = "id.secret"
    settings.ZAI_BASE_URL = upstream.zai_base_url
    settings.PRICES = {
        "gemini:*": {"input": 0, "output": 0},
        "zai:*": {"input": 0, "output": 0},
    }  # budgets apply
    settings.LLM_RETRY_ATTEMPTS = 0
    settings.LLM_FALLBACKS = []
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        yield http


def url(session: str) -> str:
    return f"/api/sessions/{session}/messages"


def done_of(events: list[dict]) -> dict:
    return next(e for e in events if e["type"] == "tool_call_done")


def refused(client: httpx.Client, upstream, session: str, body: dict) -> dict:
    response = client.post(url(session), json=body)
    assert not Message.objects.exists() and not Conversation.objects.exists(), "a refusal stored something"
    assert upstream.requests == [], "a refusal called the provider"
    return {"status": response.status_code, **response.json()["error"]}


def test_a_gemini_tool_round_keeps_the_thought_signature_and_answers_with_function_responses(
    client, upstream
):
    text = "kraken [[tools=lookup]]"
    status, events = sse_events(
        client, url("gem-tools"), {"content": text, "model": GEMINI_3, "tools": [LOOKUP]}
    )
    assert status == 200, events
    assert [e["type"] for e in events] == CALL_EVENTS
    start, delta, done = events[1:4]
    # the fake reads the translated schema: ["string", "null"] became a (nullable) string
    translated = {"properties": {"query": {"type": "string"}, "depth": {"type": "integer"}}}
    assert json.loads(expected_tool_arguments(translated, text)) == {"query": "kraken", "depth": 1}
    assert (
        json.loads(delta["arguments"])
        == json.loads(done["arguments"])
        == done["input"]
        == {"query": "kraken", "depth": 1}
    )
    assert start["call_id"].startswith("call_") and done["call_id"] == start["call_id"]  # Gemini gave none
    assert (events[-1]["finish_reason"], events[-1]["provider"]) == ("tool_calls", "gemini")
    answer = Message.objects.get(pk=events[-1]["message_id"])
    (part,) = answer.parts
    assert part["metadata"] == {"thought_signature": thought_signature(0, text)}
    declared = upstream.requests[-1].json["tools"][0]["functionDeclarations"][0]
    assert declared["parameters"]["properties"]["query"] == {"type": "STRING", "nullable": True}

    result = {"type": "tool_result", "call_id": start["call_id"], "output": "a sea monster of legend"}
    status, events = sse_events(
        client, url("gem-tools"), {"role": "tool", "parts": [result], "model": GEMINI_3, "tools": [LOOKUP]}
    )
    assert status == 200, events
    assert events[-1]["type"] == "completed" and events[-1]["finish_reason"] == "stop"
    assert events[-1]["content"] == expected_tool_reply(["a sea monster of legend"])
    contents = upstream.requests[-1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    (call,) = contents[1]["parts"]
    assert call["functionCall"] == {"name": "lookup", "args": {"query": "kraken", "depth": 1}}
    signature = call["thoughtSignature"].replace("-", "+").replace("_", "/")
    assert base64.b64decode(signature) == base64.b64decode(thought_signature(0, text))
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "lookup", "response": {"output": "a sea monster of legend"}}}
    ]


@pytest.mark.parametrize("model", ["zai:glm-4.5", "zai:glm-4.6"])  # whole calls; tool_stream fragments
def test_a_zai_tool_round_keeps_its_call_ids_and_answers_with_tool_messages(client, upstream, model):
    text = "kraken [[tools=lookup,clock]]"
    session = f"zai-tools-{model[-3:]}"
    status, events = sse_events(
        client,
        url(session),
        {"content": text, "model": model, "tools": [LOOKUP, CLOCK], "tool_choice": "auto"},
    )
    assert status == 200, events
    done = [e for e in events if e["type"] == "tool_call_done"]
    assert [(d["index"], d["name"]) for d in done] == [(0, "lookup"), (1, "clock")]
    assert all(d["call_id"].startswith("call_-") for d in done)
    assert done[1]["input"] == {"zone": "kraken"}
    deltas = [e for e in events if e["type"] == "tool_call_delta" and e["index"] == 0]
    assert len(deltas) == (3 if model.endswith("4.6") else 1)
    assert events[-1]["finish_reason"] == "tool_calls"
    sent = upstream.requests[-1].json
    assert sent["tool_choice"] == "auto" and sent.get("tool_stream") is (
        True if model.endswith("4.6") else None
    )
    answer = Message.objects.get(pk=events[-1]["message_id"])
    assert [p["id"] for p in answer.parts] == [d["call_id"] for d in done]  # kept as Z.AI gave them

    parts = [{"type": "tool_result", "call_id": d["call_id"], "output": f"out {d['name']}"} for d in done]
    status, events = sse_events(
        client, url(session), {"role": "tool", "parts": parts, "model": model, "tools": [LOOKUP, CLOCK]}
    )
    assert status == 200, events
    assert events[-1]["content"] == expected_tool_reply(["out lookup", "out clock"])
    messages = upstream.requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == [d["call_id"] for d in done]
    assert [m["tool_call_id"] for m in messages[2:]] == [d["call_id"] for d in done]


def test_a_schema_gemini_cannot_take_is_refused_before_any_call_storing_nothing(client, upstream):
    address = {"type": "object", "properties": {"street": {"type": "string"}}, "additionalProperties": {}}
    tool = {"name": "ship", "parameters": {"type": "object", "properties": {"address": address}}}
    error = refused(
        client, upstream, "gem-bad", {"content": "send it", "model": GEMINI_3, "tools": [CLOCK, tool]}
    )

    assert (error["status"], error["code"], error["field"]) == (422, "tools_not_supported", "tools")
    assert error["message"].startswith("The model gemini:gemini-3-flash-preview (Gemini) cannot take")
    assert "tools[1] (ship): additionalProperties at parameters.properties.address" in error["message"]
    assert "clock" not in error["message"]


def test_a_tool_choice_zai_cannot_honour_is_refused_before_any_call_storing_nothing(client, upstream):
    body = {"content": "x", "model": "zai:glm-4.6", "tools": [CLOCK], "tool_choice": "required"}
    error = refused(client, upstream, "zai-bad", body)

    assert (error["status"], error["code"], error["field"]) == (422, "tools_not_supported", "tool_choice")
    assert (
        "'required'" in error["message"] and "zai:glm-4.6" in error["message"] and "auto" in error["message"]
    )


def test_tool_choice_none_on_zai_sends_no_tools_and_answers_in_text(client, upstream):
    body = {"content": "hello", "model": "zai:glm-4.6", "tools": [CLOCK], "tool_choice": "none"}
    status, events = sse_events(client, url("zai-none"), body)

    assert status == 200 and events[-1]["finish_reason"] == "stop", events
    assert not {"tools", "tool_choice", "tool_stream"} & upstream.requests[-1].json.keys()


@pytest.mark.parametrize("gemini_takes_it", [True, False])
def test_a_fallback_that_cannot_take_the_tools_schema_is_skipped(client, upstream, settings, gemini_takes_it):
    settings.LLM_FALLBACKS = ["gemini:gemini-2.5-flash"]
    upstream.push_fault("503", times=1, model="glm-4.6")  # the primary fails before its first token
    schema = {"type": "object", "properties": {"zone": {"type": "string"}}}
    if not gemini_takes_it:
        schema["additionalProperties"] = {"type": "string"}  # an open map: Gemini has none
    body = {"content": "now", "model": "zai:glm-4.6", "tools": [{"name": "clock", "parameters": schema}]}

    status, events = sse_events(client, url(f"fallback-{gemini_takes_it}"), body)

    assert status == 200, events
    asked_gemini = [r for r in upstream.requests if ":streamGenerateContent" in r.path]
    if gemini_takes_it:
        assert (events[-1]["type"], events[-1]["provider"]) == ("completed", "gemini")
        assert done_of(events)["name"] == "clock" and len(asked_gemini) == 1
    else:
        assert events[-1]["type"] == "failed" and asked_gemini == []
