"""Client tools on the native API (``POST /api/sessions/{key}/messages``) over real HTTP: the real ASGI
app (uvicorn, in-process) and the offline demo provider, which calls a tool deterministically when
offered one (the tool ``tool_choice`` names, else the first; string arguments = the user's text)."""

import json
import threading

import httpx
import pytest
from django.contrib.auth import get_user_model

from conversations.models import Message
from tests.factories import make_conversation, make_message
from tests.turn_client import SSEParser, sse_events

pytestmark = pytest.mark.django_db(transaction=True)

LOOKUP = {
    "name": "lookup",
    "description": "Look a word up in the encyclopedia.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}
CLOCK = {"name": "clock", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}


@pytest.fixture
def demo(settings):
    """The demo provider answers, quickly; no fallbacks."""
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0.001
    settings.LLM_FALLBACKS = []
    return settings


@pytest.fixture
def client(asgi_server, demo):
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        yield http


def url(session: str) -> str:
    return f"/api/sessions/{session}/messages"


def results(call_id: str, output: str = "a sea monster of legend", **extra) -> dict:
    part = {"type": "tool_result", "call_id": call_id, "output": output}
    return {"role": "tool", "parts": [part], "tools": [LOOKUP], **extra}


def call_round(client: httpx.Client, session: str, content: str = "kraken", **body) -> list[dict]:
    """A user message offered the lookup tool: the demo's answer is a call."""
    status, events = sse_events(client, url(session), {"content": content, "tools": [LOOKUP], **body})
    assert status == 200, events
    return events


def done_of(events: list[dict]) -> dict:
    return next(e for e in events if e["type"] == "tool_call_done")


def test_sse_streams_a_tool_call_and_the_answer_is_stored_with_its_call(client):
    events = call_round(client, "tools-sse", "kraken")
    assert [e["type"] for e in events] == [
        "started",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_delta",
        "tool_call_done",
        "usage",
        "completed",
    ]
    assert [e["seq"] for e in events] == list(range(1, 8))
    start, done = events[1], done_of(events)
    assert start["name"] == "lookup" and start["index"] == 0
    assert start["call_id"].startswith("call_demo_")
    fragments = [e["arguments"] for e in events if e["type"] == "tool_call_delta"]
    assert all(e["call_id"] == start["call_id"] for e in events[1:5])
    assert "".join(fragments) == done["arguments"] == '{"query": "kraken"}'
    assert (done["name"], done["input"], done["call_id"]) == ("lookup", {"query": "kraken"}, start["call_id"])
    completed = events[-1]
    assert (completed["finish_reason"], completed["content"]) == ("tool_calls", "")
    answer = Message.objects.get(pk=completed["message_id"])
    assert (answer.status, answer.finish_reason) == ("complete", "tool_calls")
    assert answer.parts == [
        {
            "type": "tool_call",
            "id": start["call_id"],
            "name": "lookup",
            "arguments": '{"query": "kraken"}',
            "input": {"query": "kraken"},
        }
    ]


def test_tool_choice_names_the_tool_called(client):
    events = call_round(
        client, "tools-choice", tools=[LOOKUP, CLOCK], tool_choice={"type": "function", "name": "clock"}
    )
    assert done_of(events)["name"] == "clock"
    assert done_of(events)["input"] == {"zone": "kraken"}


def test_results_continue_the_branch_and_every_row_is_parented(client):
    first = call_round(client, "tools-loop", "kraken")
    call_id = done_of(first)["call_id"]
    status, events = sse_events(client, url("tools-loop"), results(call_id))
    assert status == 200, events
    assert events[0]["type"] == "started" and events[-1]["type"] == "completed"
    done = events[-1]
    assert done["finish_reason"] == "stop"
    assert "returned: a sea monster of legend" in done["content"]
    assert not [e for e in events if e["type"].startswith("tool_call")]  # answered, not called again
    call_answer = Message.objects.get(pk=first[-1]["message_id"])
    tool_message = Message.objects.get(pk=events[0]["user_message_id"])
    answer = Message.objects.get(pk=done["message_id"])
    assert (tool_message.role, tool_message.parent_id, tool_message.content) == (
        "tool",
        call_answer.pk,
        "a sea monster of legend",
    )
    [part] = tool_message.parts
    assert {k: v for k, v in part.items() if k != "name"} == {
        "type": "tool_result",
        "call_id": call_id,
        "output": "a sea monster of legend",
        "is_error": False,
    }
    assert (answer.role, answer.parent_id, answer.status, answer.parts) == (
        "assistant",
        tool_message.pk,
        "complete",
        [],
    )
    assert call_answer.parent.content == "kraken"
    assert Message.objects.filter(conversation=answer.conversation).count() == 4


def test_an_error_result_and_a_json_output_are_taken(client):
    call_id = done_of(call_round(client, "tools-err"))["call_id"]
    part = {"type": "tool_result", "call_id": call_id, "output": {"status": 404}, "is_error": True}
    status, events = sse_events(client, url("tools-err"), {"role": "tool", "parts": [part]})
    assert status == 200 and events[-1]["type"] == "completed", events
    tool_message = Message.objects.get(pk=events[0]["user_message_id"])
    assert tool_message.parts[0]["output"] == '{"status":404}'
    assert tool_message.parts[0]["is_error"] is True


def test_ndjson_streams_the_tool_events(client):
    with client.stream(
        "POST",
        url("tools-nd"),
        json={"content": "kraken", "tools": [LOOKUP]},
        headers={"Accept": "application/x-ndjson"},
    ) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [e["type"] for e in lines] == [
        "started",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_delta",
        "tool_call_done",
        "usage",
        "completed",
    ]
    call_id = done_of(lines)["call_id"]
    with client.stream(
        "POST", url("tools-nd"), json=results(call_id), headers={"Accept": "application/x-ndjson"}
    ) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1]["type"] == "completed" and "returned: a sea monster" in lines[-1]["content"]


def test_json_reply_shows_the_calls_and_the_next_answer(client):
    response = client.post(url("tools-js"), json={"content": "kraken", "tools": [LOOKUP]})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["finish_reason"], body["content"]) == ("complete", "tool_calls", "")
    [call] = body["tool_calls"]
    assert call["id"].startswith("call_demo_")
    assert (call["name"], call["arguments"], call["input"]) == (
        "lookup",
        '{"query": "kraken"}',
        {"query": "kraken"},
    )
    response = client.post(url("tools-js"), json=results(call["id"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["finish_reason"]) == ("complete", "stop")
    assert "returned: a sea monster of legend" in body["content"]
    assert not body.get("tool_calls")


def test_repeated_results_replay_the_stored_answer_and_store_nothing_twice(client):
    first = call_round(client, "tools-idem", client_message_id="u-1")
    call_id = done_of(first)["call_id"]
    body = results(call_id, client_message_id="r-1")
    _, answered = sse_events(client, url("tools-idem"), body)
    rows = Message.objects.count()
    _, again = sse_events(client, url("tools-idem"), body)
    assert again[-1]["type"] == "completed"
    assert again[-1]["message_id"] == answered[-1]["message_id"]
    assert again[-1]["content"] == answered[-1]["content"]
    assert Message.objects.count() == rows
    assert Message.objects.filter(role="tool").count() == 1
    # the call round replays its call too, by its own client_message_id
    _, replayed = sse_events(
        client, url("tools-idem"), {"content": "kraken", "tools": [LOOKUP], "client_message_id": "u-1"}
    )
    assert replayed[-1]["message_id"] == first[-1]["message_id"]
    assert done_of(replayed)["call_id"] == call_id and done_of(replayed)["input"] == {"query": "kraken"}
    assert Message.objects.count() == rows


def refused(client: httpx.Client, session: str, body: dict) -> dict:
    rows = Message.objects.count()
    response = client.post(url(session), json=body)
    assert Message.objects.count() == rows, "a refused request stored something"
    return {"status": response.status_code, **response.json()["error"]}


def test_a_result_for_an_unknown_call_is_refused(client):
    call_round(client, "tools-unknown")
    error = refused(client, "tools-unknown", results("call_nope"))
    assert (error["status"], error["code"]) == (422, "invalid_tool_results")
    assert "call_nope" in error["message"]


def test_a_missing_result_is_refused(client):
    conversation = make_conversation(session_key="tools-missing")
    user = make_message(conversation, content="two lookups")
    calls = [
        {"type": "tool_call", "id": f"call_{n}", "name": "lookup", "arguments": "{}", "input": {}}
        for n in (1, 2)
    ]
    make_message(
        conversation,
        role="assistant",
        content="",
        parts=calls,
        parent=user,
        status="complete",
        finish_reason="tool_calls",
    )
    error = refused(client, "tools-missing", results("call_1"))
    assert (error["status"], error["code"]) == (422, "invalid_tool_results")
    assert "call_2" in error["message"]


def test_results_after_the_conversation_moved_on_are_409(client):
    call_id = done_of(call_round(client, "tools-moved"))["call_id"]
    assert sse_events(client, url("tools-moved"), results(call_id))[1][-1]["type"] == "completed"
    assert sse_events(client, url("tools-moved"), {"content": "thanks"})[1][-1]["type"] == "completed"
    error = refused(client, "tools-moved", results(call_id))
    assert (error["status"], error["code"]) == (409, "tool_calls_answered")
    assert call_id in error["message"]


def test_results_while_the_calls_still_stream_are_409_turn_in_progress(client, demo):
    demo.DEMO_DELAY = 0.3  # each piece of the call a while apart
    parser, seen = SSEParser(), []
    with client.stream(
        "POST",
        url("tools-busy"),
        json={"content": "kraken", "tools": [LOOKUP]},
        headers={"Accept": "text/event-stream"},
    ) as response:
        chunks = response.iter_text()  # held open: closing the iterator would hang up the stream
        while not any(e["type"] == "tool_call_start" for e in seen):
            seen.extend(frame.json() for frame in parser.feed(next(chunks)))
        call_id = next(e["call_id"] for e in seen if e["type"] == "tool_call_start")
        error = refused(client, "tools-busy", results(call_id))
        for chunk in chunks:
            seen.extend(frame.json() for frame in parser.feed(chunk))
    assert (error["status"], error["code"]) == (409, "turn_in_progress"), error
    assert seen[-1]["type"] == "completed" and seen[-1]["finish_reason"] == "tool_calls"
    demo.DEMO_DELAY = 0.001
    assert sse_events(client, url("tools-busy"), results(call_id))[1][-1]["type"] == "completed"


@pytest.mark.parametrize(
    ("body", "status", "field", "says"),
    [
        ({**results("call_x"), "content": "also text"}, 422, "content", "parts"),
        (
            {"content": "hi", "parts": [{"type": "tool_result", "call_id": "c", "output": "x"}]},
            422,
            "parts",
            "tool",
        ),
        ({"role": "tool"}, 422, "parts", "tool_result"),
        ({"role": "tool", "parts": []}, 422, "parts", "tool_result"),
        ({"role": "tool", "parts": [{"type": "text", "text": "x"}]}, 422, "parts", "parts[0]"),
        ({"role": "tool", "parts": [{"type": "tool_result", "output": "x"}]}, 422, "parts", "call_id"),
        ({"role": "assistant", "content": "I said"}, 422, "role", "tool"),
        ({"content": "hi", "tools": [{**LOOKUP, "name": "look up"}]}, 422, "tools", "look up"),
        ({"content": "hi", "tools": [{**LOOKUP, "name": f"t{n}"} for n in range(129)]}, 422, "tools", "128"),
        (
            {"content": "hi", "tools": [{**LOOKUP, "parameters": "a string"}]},
            422,
            "tools",
            "JSON Schema object",
        ),
        (
            {"content": "hi", "tools": [LOOKUP], "tool_choice": {"type": "function", "name": "nope"}},
            422,
            "tool_choice",
            "nope",
        ),
        ({"content": "hi", "tools": [LOOKUP], "tool_choice": "sometimes"}, 422, "tool_choice", "required"),
        ({"content": "hi", "tools": {"lookup": LOOKUP}}, 422, "tools", "list"),
        (
            {"content": "hi", "tools": [LOOKUP], "parallel_tool_calls": "yes"},
            422,
            "parallel_tool_calls",
            "true or false",
        ),
    ],
    ids=[
        "content-with-role-tool",
        "parts-with-role-user",
        "tool-without-parts",
        "tool-with-empty-parts",
        "tool-with-a-text-part",
        "result-without-call-id",
        "role-assistant",
        "tool-name-with-a-space",
        "129-tools",
        "schema-not-an-object",
        "tool-choice-unknown-tool",
        "tool-choice-unknown-mode",
        "tools-not-a-list",
        "parallel-not-a-bool",
    ],
)
def test_bad_tool_input_is_refused_naming_the_problem_and_nothing_is_stored(
    client, body, status, field, says
):
    call_round(client, "tools-bad")
    error = refused(client, "tools-bad", body)
    assert (error["status"], error["field"]) == (status, field), error
    assert says in error["message"]


def test_a_result_over_the_size_limit_is_413(client, demo):
    demo.TOOL_RESULT_MAX_BYTES = 64
    call_id = done_of(call_round(client, "tools-big"))["call_id"]
    error = refused(client, "tools-big", results(call_id, "x" * 65))
    assert (error["status"], error["code"]) == (413, "payload_too_large")
    assert "TOOL_RESULT_MAX_BYTES" in error["message"]
    assert sse_events(client, url("tools-big"), results(call_id, "x" * 64))[1][-1]["type"] == "completed"


def test_results_cannot_edit_or_regenerate(client):
    events = call_round(client, "tools-edit")
    call_id, user_id = done_of(events)["call_id"], events[0]["user_message_id"]
    rows = Message.objects.count()
    for action in (f"{user_id}/edit", f"{events[-1]['message_id']}/regenerate"):
        response = client.post(f"{url('tools-edit')}/{action}", json=results(call_id))
        assert response.status_code == 422, response.text
        assert "cannot edit or regenerate" in response.json()["error"]["message"]
        assert Message.objects.count() == rows


def test_results_from_a_second_client_while_the_first_posts_them_store_one_tool_message(client, asgi_server):
    """Two clients answering the same calls at once: one round is stored, the other is refused."""
    call_id = done_of(call_round(client, "tools-race"))["call_id"]
    statuses = []

    def post(n: int) -> None:
        with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
            statuses.append(http.post(url("tools-race"), json=results(call_id, f"answer {n}")).status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses)[0] == 200 and sorted(statuses)[1] in (409,)
    assert Message.objects.filter(role="tool").count() == 1


def test_admin_shows_parts_read_only_and_filters_tool_messages(client):
    call_id = done_of(call_round(client, "tools-admin"))["call_id"]
    sse_events(client, url("tools-admin"), results(call_id))
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    from django.test import Client

    browser = Client()
    browser.force_login(admin)
    tool_message = Message.objects.get(role="tool")
    page = browser.get(f"/admin/conversations/message/{tool_message.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;tool_result&quot;" in html and call_id in html
    assert 'name="parts"' not in html  # read-only: no form field
    listing = browser.get("/admin/conversations/message/?role__exact=tool")
    assert listing.status_code == 200
    assert str(tool_message.pk) in listing.content.decode()


def test_the_history_api_shows_the_loop_as_parts(client):
    call_id = done_of(call_round(client, "tools-history"))["call_id"]
    sse_events(client, url("tools-history"), results(call_id))
    listed = client.get(url("tools-history")).json()["results"]
    assert [m["role"] for m in listed] == ["user", "assistant", "tool", "assistant"]
    user, calling, tool, answer = (m["parts"] for m in listed)
    assert user == [{"type": "text", "text": "kraken"}]
    assert [(p["type"], p["id"], p["input"]) for p in calling] == [
        ("tool_call", call_id, {"query": "kraken"})
    ]
    assert [(p["type"], p["call_id"], p["output"]) for p in tool] == [
        ("tool_result", call_id, "a sea monster of legend")
    ]
    assert answer == [{"type": "text", "text": listed[3]["content"]}]
