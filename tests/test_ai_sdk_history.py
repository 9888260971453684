"""``GET /api/ai-sdk/chat/{id}/messages``: a chat's stored branch served as useChat's UIMessages.

Checked against the client-side reference (tests/js/ui_history.mjs, fed the history API) and by the
published ``ai`` 7's own ``validateUIMessages``, for a tool loop the demo provider really ran over
the AI SDK route and for stored rows covering what a loop can leave (parallel calls, an error
result, a call cut mid-arguments, an answer still streaming, an older branch); plus the callers
the SDK's resume takes and refuses.
"""

from __future__ import annotations

import json

import httpx
import pytest

from accounts.keys import api_key_create
from conversations.models import Message
from conversations.turns.parts import text_part, tool_call_part, tool_result_part
from conversations.wire.ui_history import ui_messages
from providers.base import ToolCall, ToolResult
from tests.factories import make_conversation, make_message
from tests.js_clients import run_js

pytestmark = pytest.mark.django_db(transaction=True)

LOOKUP_SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
LOOKUP = {"lookup": {"description": "Look a word up.", "inputSchema": LOOKUP_SCHEMA}}


@pytest.fixture
def key(user):
    return api_key_create(owner=user, name="ai-sdk-history")[1]


@pytest.fixture
def demo(settings):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0.001
    settings.LLM_FALLBACKS = []
    return settings


def served(url: str, chat: str, key: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.get(f"{url}/api/ai-sdk/chat/{chat}/messages", headers=headers, timeout=20)


def checked_by_the_sdk(url: str, chat: str, key: str) -> list[dict]:
    """The served messages, once ai 7 validated them and they equal ui_history.mjs's rebuild."""
    out = run_js(
        "ai_sdk_history.mjs", {"base": url, "headers": {"X-API-Key": key}, "chatId": chat}, timeout=60
    )
    assert out.get("thrown") is None and "status" not in out, out
    assert out["valid"] is None, out["valid"]
    assert out["equal"], json.dumps(out, indent=1)
    assert out["served"] == served(url, chat, key).json()["messages"]
    return out["served"]


def post_chat(url: str, key: str, body: dict) -> list[dict]:
    response = httpx.post(f"{url}/api/ai-sdk/chat", json=body, headers={"X-API-Key": key}, timeout=20)
    assert response.status_code == 200, response.text
    raw = [line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(item) for item in raw if item != "[DONE]"]


def user_message(text: str, ui_id: str = "u1") -> dict:
    return {"id": ui_id, "role": "user", "parts": [{"type": "text", "text": text}]}


def tool(name: str, call_id: str, state: str, **rest) -> dict:
    return {"type": f"tool-{name}", "toolCallId": call_id, "state": state, **rest}


# --- a loop the demo ran -----------------------------------------------------------------------------
def test_a_two_round_tool_loop_is_one_assistant_message_as_the_client_rebuilds_it(asgi_server, demo, key):
    url, chat = asgi_server.url, "history-loop"
    first = {"id": chat, "messages": [user_message("kraken")], "trigger": "submit-message", "tools": LOOKUP}
    chunks = post_chat(url, key, first)
    (call,) = [c for c in chunks if c["type"] == "tool-input-available"]
    held = {
        "id": chunks[0]["messageId"],
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            tool(
                "lookup", call["toolCallId"], "output-available", input=call["input"], output="a sea monster"
            ),
        ],
    }
    body = {**first, "messages": [user_message("kraken"), held], "messageId": held["id"]}
    post_chat(url, key, body)
    answer, final = Message.objects.filter(conversation__session_key=chat, role="assistant").order_by(
        "created_at"
    )

    messages = checked_by_the_sdk(url, chat, key)
    assert messages == [
        {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "kraken"}]},
        {
            "id": str(answer.pk),  # the loop's first answer: the id the live stream's start named
            "role": "assistant",
            "parts": [
                {"type": "step-start"},
                tool(
                    "lookup",
                    call["toolCallId"],
                    "output-available",
                    input={"query": "kraken"},
                    output="a sea monster",
                ),
                {"type": "step-start"},
                {"type": "text", "text": final.content, "state": "done"},
            ],
        },
    ]
    assert "The tool lookup returned: a sea monster" in final.content


def test_a_text_only_chat_is_its_users_and_answers_messages(asgi_server, demo, key):
    url, chat = asgi_server.url, "history-text"
    post_chat(url, key, {"id": chat, "messages": [user_message("hello")], "trigger": "submit-message"})
    (answer,) = Message.objects.filter(conversation__session_key=chat, role="assistant")
    messages = checked_by_the_sdk(url, chat, key)
    assert messages == [
        {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hello"}]},
        {
            "id": str(answer.pk),
            "role": "assistant",
            "parts": [{"type": "step-start"}, {"type": "text", "text": answer.content, "state": "done"}],
        },
    ]


# --- stored rows: what a loop can leave ----------------------------------------------------------------
def stored_chat(user, chat_id: str = "history-rows") -> dict[str, Message]:
    """Two tool rounds (the second with two calls, one failed), a user message after them, an older
    branch beside it, and an answer cut mid-arguments as the newest message."""
    chat = make_conversation(owner=user, session_key=chat_id)
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
    add("old", "user", "thanks (first try)", parent="a3")
    add("old-answer", "assistant", "You are welcome.", parent="old")
    add("u2", "user", "thanks", parent="a3")
    cut = call(ToolCall("c4", "weather", '{"ci'), incomplete=True)
    add("a4", "assistant", "", [cut], parent="u2", status="failed")
    return rows


def test_stored_loops_errors_and_a_cut_call_are_served_as_the_client_rebuilds_them(asgi_server, user, key):
    rows = stored_chat(user)
    messages = checked_by_the_sdk(asgi_server.url, "history-rows", key)
    assert messages == [
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
        # the newest message's branch: the first try and its answer are not on it
        {"id": str(rows["u2"].pk), "role": "user", "parts": [{"type": "text", "text": "thanks"}]},
        {
            "id": str(rows["a4"].pk),
            "role": "assistant",
            "parts": [{"type": "step-start"}, tool("weather", "c4", "input-streaming", input='{"ci')],
        },
    ]


def test_a_call_not_answered_yet_is_input_available_and_an_answer_streaming_is_left_to_resume(
    asgi_server, user, key
):
    chat = make_conversation(owner=user, session_key="history-open")
    question = make_message(chat, role="user", content="look it up", client_message_id="q")
    asked = make_message(
        chat,
        role="assistant",
        content="",
        parts=[tool_call_part(ToolCall("c1", "lookup", '{"query":"x"}'))],
        parent=question,
        finish_reason="tool_calls",
    )
    assert checked_by_the_sdk(asgi_server.url, "history-open", key)[1] == {
        "id": str(asked.pk),
        "role": "assistant",
        "parts": [{"type": "step-start"}, tool("lookup", "c1", "input-available", input={"query": "x"})],
    }
    again = make_message(chat, role="user", content="and now?", parent=asked)
    make_message(chat, role="assistant", content="Half an ans", parent=again, status="streaming")
    messages = served(asgi_server.url, "history-open", key).json()["messages"]
    assert [m["id"] for m in messages] == ["q", str(asked.pk), str(again.pk)]  # resume replays the rest


def test_a_chat_with_no_message_yet_is_an_empty_list(asgi_server, user, key):
    make_conversation(owner=user, session_key="history-empty")
    response = served(asgi_server.url, "history-empty", key)
    assert response.status_code == 200 and response.json() == {"messages": []}


# --- who may read it --------------------------------------------------------------------------------
def test_another_owners_chat_and_an_unknown_one_are_the_same_404(asgi_server, user, other_user, key):
    stored_chat(other_user, "theirs")
    theirs, unknown = served(asgi_server.url, "theirs", key), served(asgi_server.url, "nobody-here", key)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json() and theirs.json()["error"]["code"] == "not_found"
    assert "POST /api/ai-sdk/chat" in theirs.json()["error"]["message"]


def test_anonymous_callers_are_401_when_anonymous_use_is_off(asgi_server, settings, user, key):
    stored_chat(user)
    settings.ALLOW_ANONYMOUS = False
    refused = served(asgi_server.url, "history-rows")
    assert refused.status_code == 401 and refused.json()["error"]["code"]
    assert served(asgi_server.url, "history-rows", key).status_code == 200


def test_anonymous_chats_are_served_to_anonymous_callers_when_allowed(asgi_server, settings):
    settings.ALLOW_ANONYMOUS = True
    chat = make_conversation(owner=None, session_key="history-anon")
    make_message(chat, role="user", content="hi", client_message_id="h")
    assert served(asgi_server.url, "history-anon").json()["messages"] == [
        {"id": "h", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    ]


def test_only_get_is_served(asgi_server, key):
    response = httpx.post(f"{asgi_server.url}/api/ai-sdk/chat/x/messages", headers={"X-API-Key": key})
    assert response.status_code == 405


# --- the conversion alone ---------------------------------------------------------------------------
def test_results_without_a_call_to_merge_into_are_left_out_and_an_answer_after_a_user_is_new():
    branch = [
        {
            "id": "t0",
            "role": "tool",
            "status": "complete",
            "parts": [tool_result_part(ToolResult("zz", "lost"))],
        },
        {
            "id": "u",
            "role": "user",
            "status": "complete",
            "client_message_id": None,
            "parts": [text_part("hi")],
        },
        {
            "id": "t1",
            "role": "tool",
            "status": "complete",
            "parts": [tool_result_part(ToolResult("zz", "lost"))],
        },
        {"id": "a", "role": "assistant", "status": "complete", "parts": [text_part("hello")]},
    ]
    assert ui_messages(branch) == [
        {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]},
        {
            "id": "a",
            "role": "assistant",
            "parts": [{"type": "step-start"}, {"type": "text", "text": "hello", "state": "done"}],
        },
    ]
