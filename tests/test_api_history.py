"""The history REST API: sessions, messages, branches, artifacts, export/import, schema."""

import datetime as dt
import json
import re

import httpx
import pytest
from django.core.management import call_command
from django.test import Client

from accounts.keys import api_key_create
from conversations.models import Artifact, Conversation, Message
from tests.factories import make_artifact, make_conversation, make_message
from tests.query_counter import count_queries
from tests.turn_client import sse_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(user):
    _, secret = api_key_create(owner=user, name="tests")
    return Client(headers={"X-API-Key": secret})


def test_create_session_generates_a_key_and_lists_it(api, user):
    created = api.post(
        "/api/sessions", {"title": "Plans", "system_prompt": "Be kind."}, content_type="application/json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["session_key"].startswith("sess-")
    assert (body["title"], body["system_prompt"], body["message_count"]) == ("Plans", "Be kind.", 0)
    listed = api.get("/api/sessions").json()
    assert [s["session_key"] for s in listed["results"]] == [body["session_key"]]
    assert Conversation.objects.get(session_key=body["session_key"]).owner == user


def test_duplicate_session_key_is_409(api):
    api.post("/api/sessions", {"session_key": "mine"}, content_type="application/json")
    again = api.post("/api/sessions", {"session_key": "mine"}, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "session_exists"


def test_invalid_session_fields_are_400_naming_the_field(api):
    response = api.post(
        "/api/sessions", {"session_key": "bad key!", "provider": "nope"}, content_type="application/json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "session_key" in error["details"]


def test_retrieve_has_counts_tokens_and_last_message_preview(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    make_message(conv, content="question")
    make_message(conv, role="assistant", content="answer " * 100, input_tokens=7, output_tokens=11)
    body = api.get("/api/sessions/s1").json()
    assert body["message_count"] == 2
    assert (body["input_tokens"], body["output_tokens"]) == (7, 11)
    assert body["last_message"]["role"] == "assistant"
    assert len(body["last_message"]["content"]) == 200


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_every_date_of_a_session_is_rfc3339_with_an_offset(api, user):
    """On SQLite too, where the preview's date comes out of the database as naive text."""
    conv = make_conversation(owner=user, session_key="dated")
    make_message(conv, content="question")
    listed = api.get("/api/sessions").json()["results"][0]
    detail = api.get("/api/sessions/dated").json()
    for body in (listed, detail):
        for value in (body["created_at"], body["updated_at"], body["last_message"]["created_at"]):
            assert RFC3339.match(value), value
    message = Message.objects.get(conversation=conv)
    assert dt.datetime.fromisoformat(detail["last_message"]["created_at"]) == message.created_at


def test_patch_cannot_change_the_session_key_and_the_schema_does_not_offer_it(api, user, client):
    make_conversation(owner=user, session_key="fixed")
    refused = api.patch("/api/sessions/fixed", {"session_key": "other"}, content_type="application/json")
    assert refused.status_code == 400
    assert "cannot be changed" in refused.json()["error"]["details"]["session_key"][0]
    same = api.patch(
        "/api/sessions/fixed", {"session_key": "fixed", "title": "T"}, content_type="application/json"
    )
    assert (same.status_code, same.json()["title"]) == (200, "T")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["paths"]["/api/sessions/{session_key}"]["patch"]["requestBody"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "session_key" not in schema["components"]["schemas"][ref]["properties"]


def free_strings(schema, where=""):
    """Every string schema in a request that has no format or enum, with where it is."""
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from free_strings(item, f"{where}[{i}]")
    elif isinstance(schema, dict):
        if schema.get("type") == "string" and not {"format", "enum"} & schema.keys():
            yield where, schema
        for key, value in schema.items():
            yield from free_strings(value, f"{where}.{key}")


def test_the_schema_says_request_strings_cannot_hold_nul(client):
    """The parser refuses NUL anywhere (400): the schema must not offer it, or fuzzers see ST202."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    requests = {k: v for k, v in schema["components"]["schemas"].items() if k.endswith("Request")}
    parameters = [op.get("parameters", []) for item in schema["paths"].values() for op in item.values()]
    strings = [*free_strings(requests), *free_strings(parameters)]
    assert len(strings) > 20
    for where, string in strings:
        assert "pattern" in string, where
        assert not re.search(string["pattern"], "a\x00b"), where  # re reads JSON's \u0000 escape


def test_patch_updates_and_delete_cascades(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    make_artifact(make_message(conv, role="assistant"))
    assert (
        api.patch("/api/sessions/s1", {"title": "Renamed"}, content_type="application/json").json()["title"]
        == "Renamed"
    )
    assert api.delete("/api/sessions/s1").status_code == 204
    assert not Message.objects.exists()
    assert not Artifact.objects.exists()
    assert api.get("/api/sessions/s1").status_code == 404


def test_search_matches_title_and_message_content_and_filters_apply(api, user):
    make_conversation(owner=user, session_key="a", title="Sourdough baking", provider="gemini")
    b = make_conversation(owner=user, session_key="b", title="Other", provider="openai", model="gpt-x")
    make_message(b, content="the kraken awakens in deep water")
    make_conversation(owner=user, session_key="c", title="Nothing here")
    keys = lambda r: sorted(s["session_key"] for s in r.json()["results"])  # noqa: E731
    assert keys(api.get("/api/sessions", {"q": "sourdough"})) == ["a"]
    assert keys(api.get("/api/sessions", {"q": "kraken"})) == ["b"]
    assert keys(api.get("/api/sessions", {"provider": "openai", "model": "gpt-x"})) == ["b"]
    assert api.get("/api/sessions", {"created_after": "not a date"}).status_code == 400


def test_session_list_pages_newest_activity_first_with_a_cursor(api, user):
    for i in range(5):
        make_conversation(owner=user, session_key=f"s{i}")
    first = api.get("/api/sessions", {"page_size": 2}).json()
    assert [s["session_key"] for s in first["results"]] == ["s4", "s3"]
    second = api.get(first["next"]).json()
    assert [s["session_key"] for s in second["results"]] == ["s2", "s1"]


def test_message_pages_stay_stable_while_new_messages_arrive(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    for i in range(4):
        make_message(conv, content=f"m{i}")
    first = api.get("/api/sessions/s1/messages", {"page_size": 2}).json()
    make_message(conv, content="m4")  # arrives while the client pages
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    seen = [m["content"] for page in (first, second, third) for m in page["results"]]
    assert seen == ["m0", "m1", "m2", "m3", "m4"]


def test_message_filters_by_role_and_status(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    make_message(conv, content="q")
    make_message(conv, role="assistant", status="failed", content="a")
    results = api.get("/api/sessions/s1/messages", {"role": "assistant", "status": "failed"}).json()[
        "results"
    ]
    assert [m["content"] for m in results] == ["a"]
    assert api.get("/api/sessions/s1/messages", {"role": "robot"}).status_code == 400


def test_retrieve_and_delete_a_message(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    message = make_message(conv, content="bye")
    url = f"/api/sessions/s1/messages/{message.pk}"
    assert api.get(url).json()["content"] == "bye"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


def test_artifacts_list_detail_and_raw_download(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    answer = make_message(conv, role="assistant")
    art = make_artifact(answer, language="python", filename="src/app.py", content="print(1)\n")
    make_artifact(answer, language="html", filename="", content="<p>x</p>", position=1)
    listed = api.get("/api/sessions/s1/artifacts").json()["results"]
    assert [a["position"] for a in listed] == [0, 1]
    per_message = api.get(f"/api/sessions/s1/messages/{answer.pk}/artifacts").json()["results"]
    assert len(per_message) == 2
    assert api.get(f"/api/sessions/s1/artifacts/{art.pk}").json()["content"] == "print(1)\n"
    raw = api.get(f"/api/sessions/s1/artifacts/{art.pk}/raw")
    assert raw.content == b"print(1)\n"
    assert raw["Content-Type"].startswith("text/x-python")
    assert raw["Content-Disposition"] == 'attachment; filename="app.py"'
    html = api.get(f"/api/sessions/s1/artifacts/{listed[1]['id']}/raw")
    assert html["Content-Disposition"] == 'attachment; filename="artifact-2.html"'
    assert html["X-Content-Type-Options"] == "nosniff"


def test_export_then_import_round_trips_messages_branches_and_artifacts(api, user):
    conv = make_conversation(owner=user, session_key="s1", title="Trip", system_prompt="Sys")
    q = make_message(conv, content="q")
    a1 = make_message(conv, role="assistant", content="a1", parent=q, input_tokens=3)
    make_message(conv, role="assistant", content="a2", parent=q)
    make_artifact(a1, content="x = 1\n")
    exported = api.get("/api/sessions/s1/export").json()
    assert exported["format"] == "chat-session/3"
    imported = api.post("/api/sessions/import", exported, content_type="application/json")
    assert imported.status_code == 201
    new_key = imported.json()["session_key"]
    assert new_key.startswith("s1-imported-")
    again = api.get(f"/api/sessions/{new_key}/export").json()
    strip = lambda m: {k: v for k, v in m.items() if k not in ("id", "parent_id")}  # noqa: E731
    assert [strip(m) for m in again["messages"]] == [strip(m) for m in exported["messages"]]
    by_content = {m["content"]: m for m in again["messages"]}
    assert by_content["a1"]["parent_id"] == by_content["q"]["id"] == by_content["a2"]["parent_id"]
    assert again["session"]["system_prompt"] == "Sys"


def test_import_rejects_dangling_parents(api):
    payload = {
        "format": "chat-session/1",
        "session": {"session_key": "x"},
        "messages": [
            {
                "id": "1",
                "parent_id": "9",
                "role": "user",
                "content": "c",
                "status": "complete",
                "created_at": "2026-01-01T00:00:00Z",
            }
        ],
    }
    response = api.post("/api/sessions/import", payload, content_type="application/json")
    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_session_list_query_count_does_not_grow_with_the_number_of_sessions(api, user):
    api.get("/api/sessions")  # the key's first use records last_used_at once

    def list_queries(n: int) -> int:
        Conversation.objects.all().delete()
        for i in range(n):
            conv = make_conversation(owner=user, session_key=f"q{i}")
            make_message(conv)
            make_artifact(make_message(conv, role="assistant"))
        with count_queries() as counter:
            assert len(api.get("/api/sessions", {"page_size": 50}).json()["results"]) == n
        return counter.count

    assert list_queries(2) == list_queries(12)


def test_message_list_query_count_does_not_grow_with_the_number_of_messages(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    api.get("/api/sessions/s1/messages")  # the key's first use records last_used_at once

    def list_queries() -> int:
        with count_queries() as counter:
            api.get("/api/sessions/s1/messages", {"page_size": 100})
        return counter.count

    make_artifact(make_message(conv, role="assistant"))
    few = list_queries()
    for _ in range(10):
        make_artifact(make_message(conv, role="assistant"))
    assert list_queries() == few


def test_openapi_schema_validates_and_lists_the_streaming_endpoints(client):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/sessions",
        "/api/sessions/{session_key}/messages",
        "/api/sessions/{session_key}/messages/{message_id}/stream",
        "/api/sessions/{session_key}/messages/{message_id}/regenerate",
        "/v1/chat/completions",
    ):
        assert path in paths, path
    assert client.get("/api/docs/").status_code == 200


def test_providers_endpoint_lists_each_provider(api):
    body = api.get("/api/providers").json()
    names = {p["name"] for p in body["providers"]}
    assert {"demo", "gemini", "openai", "openai-responses", "zai", "openai-compatible"} <= names
    assert all("api_key" not in json.dumps(p) for p in body["providers"])


@pytest.mark.django_db(transaction=True)
def test_edit_and_regenerate_branch_and_keep_the_old_branch(asgi_server, openai_upstream, user):
    _, secret = api_key_create(owner=user, name="branching")
    headers = {"X-API-Key": secret}
    with httpx.Client(base_url=asgi_server.url, timeout=20, headers=headers) as http:
        _, _first = sse_events(http, "/api/sessions/b/messages", {"content": "one [[chunks=1]]"})
        _, second = sse_events(http, "/api/sessions/b/messages", {"content": "two [[chunks=1]]"})
        user_two = second[0]["user_message_id"]
        _, edited = sse_events(
            http, f"/api/sessions/b/messages/{user_two}/edit", {"content": "TWO [[chunks=1]]"}
        )
        sent = openai_upstream.requests[-1].json["messages"]
        assert [m["content"] for m in sent] == ["one [[chunks=1]]", "Echo: one", "TWO [[chunks=1]]"]
        _, regenerated = sse_events(
            http, f"/api/sessions/b/messages/{edited[-1]['message_id']}/regenerate", {}
        )
        assert regenerated[-1]["type"] == "completed"
        assert openai_upstream.requests[-1].json["messages"] == sent
        everything = http.get("/api/sessions/b/messages").json()["results"]
        old_branch = http.get("/api/sessions/b/messages", params={"branch": second[-1]["message_id"]}).json()[
            "results"
        ]
    assert len(everything) == 7  # 2 turns, an edit (2), a regenerated answer (1)
    assert [m["content"] for m in old_branch] == [
        "one [[chunks=1]]",
        "Echo: one",
        "two [[chunks=1]]",
        "Echo: two",
    ]
    regen = Message.objects.get(pk=regenerated[-1]["message_id"])
    assert str(regen.parent_id) == edited[0]["user_message_id"]


@pytest.mark.django_db(transaction=True)
def test_editing_an_answer_is_refused(asgi_server, openai_upstream):
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        _, events = sse_events(http, "/api/sessions/e/messages", {"content": "x"})
        response = http.post(
            f"/api/sessions/e/messages/{events[-1]['message_id']}/edit", json={"content": "y"}
        )
    assert response.status_code == 422


def test_date_filters_accept_any_offset_and_refuse_garbage(api, user):
    make_conversation(owner=user, session_key="dated")
    assert api.get("/api/sessions", {"created_after": "2000-01-01T13:13:15+16:00"}).status_code == 200
    assert api.get("/api/sessions", {"created_before": "9999-12-31T23:59:59-16:00"}).status_code == 400
    assert api.get("/api/sessions", {"created_after": "2026-13-45T00:00:00Z"}).status_code == 400


def test_nul_characters_in_api_bodies_are_400(api):
    response = api.post(
        "/api/sessions", {"title": "x\u0000", "metadata": {"k\u0000": 1}}, content_type="application/json"
    )
    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_import_refuses_counts_beyond_what_the_database_stores(api):
    """Found by schemathesis: an integer over 2**31 - 1 reached PostgreSQL and was a 500."""
    message = {
        "id": "1",
        "role": "assistant",
        "content": "c",
        "status": "complete",
        "created_at": "2026-01-01T00:00:00Z",
        "input_tokens": 30486750110808,
        "artifacts": [{"position": 2**31, "language": "py", "content": "x"}],
    }
    payload = {"format": "chat-session/1", "session": {"session_key": "big"}, "messages": [message]}
    response = api.post("/api/sessions/import", payload, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "input_tokens" in response.content.decode()
    assert not Conversation.objects.exists()


# --- Parts (issue 30): tool calls and results in the history, the schema, export and import ---------

CALL = {
    "type": "tool_call",
    "id": "call_1",
    "name": "lookup",
    "arguments": '{"query": "kraken"}',
    "input": {"query": "kraken"},
}
RESULT = {
    "type": "tool_result",
    "call_id": "call_1",
    "name": "lookup",
    "output": "a sea monster",
    "is_error": False,
}


def tool_round(conv):
    """A user message, an answer that called a tool, the tool message, the answer to it."""
    user_message = make_message(conv, content="what is a kraken?")
    calling = make_message(
        conv,
        role="assistant",
        content="Let me look.",
        parts=[{"type": "text", "text": "Let me look."}, CALL],
        parent=user_message,
        finish_reason="tool_calls",
    )
    tool = make_message(conv, role="tool", content="a sea monster", parts=[RESULT], parent=calling)
    answer = make_message(conv, role="assistant", content="A sea monster.", parent=tool)
    return user_message, calling, tool, answer


def test_messages_show_their_parts_and_tool_messages_filter_by_role(api, user):
    conv = make_conversation(owner=user, session_key="parts")
    tool_round(conv)
    make_message(conv, role="assistant", content="")  # an empty answer: no part
    listed = api.get("/api/sessions/parts/messages").json()["results"]
    assert [(m["role"], m["parts"]) for m in listed] == [
        ("user", [{"type": "text", "text": "what is a kraken?"}]),
        ("assistant", [{"type": "text", "text": "Let me look."}, CALL]),
        ("tool", [RESULT]),
        ("assistant", [{"type": "text", "text": "A sea monster."}]),
        ("assistant", []),
    ]
    tools = api.get("/api/sessions/parts/messages", {"role": "tool"}).json()["results"]
    assert [(m["role"], m["content"], m["parts"]) for m in tools] == [("tool", "a sea monster", [RESULT])]
    one = api.get(f"/api/sessions/parts/messages/{tools[0]['id']}").json()
    assert one["parts"] == [RESULT]


def test_parts_cost_the_message_list_no_query(api, user):
    conv = make_conversation(owner=user, session_key="s1")
    api.get("/api/sessions/s1/messages")  # the key's first use records last_used_at once
    make_message(conv, content="only text")

    def list_queries() -> int:
        with count_queries() as counter:
            api.get("/api/sessions/s1/messages", {"page_size": 100})
        return counter.count

    text_only = list_queries()
    for _ in range(3):
        tool_round(conv)
    assert list_queries() == text_only


def test_the_schema_describes_a_message_as_typed_parts(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    parts = schema["components"]["schemas"]["Message"]["properties"]["parts"]
    assert parts["type"] == "array" and parts["readOnly"] is True
    kinds = {item["properties"]["type"]["enum"][0]: item for item in parts["items"]["oneOf"]}
    assert set(kinds) == {"text", "tool_call", "tool_result", "file"}
    assert set(kinds["file"]["required"]) == {"type", "id", "media_type", "filename", "size", "download_url"}
    assert set(kinds["tool_call"]["required"]) == {"type", "id", "name", "arguments"}
    assert set(kinds["tool_result"]["required"]) == {"type", "call_id", "output", "is_error"}
    imported = schema["components"]["schemas"]["ImportMessageRequest"]["properties"]["parts"]
    assert imported["items"]["oneOf"][1]["properties"]["type"]["enum"] == ["tool_call"]
    role = schema["components"]["schemas"]["Message"]["properties"]["role"]["allOf"][0]
    assert "tool" in schema["components"]["schemas"][role["$ref"].rsplit("/", 1)[-1]]["enum"]


def test_export_then_import_keeps_parts_and_tool_messages(api, user):
    conv = make_conversation(owner=user, session_key="loop")
    tool_round(conv)
    exported = api.get("/api/sessions/loop/export").json()
    assert exported["format"] == "chat-session/3"
    by_role = [(m["role"], m.get("parts")) for m in exported["messages"]]
    assert by_role == [
        ("user", None),  # a text message's parts are left out: its content is its one part
        ("assistant", [{"type": "text", "text": "Let me look."}, CALL]),
        ("tool", [RESULT]),
        ("assistant", None),
    ]
    imported = api.post("/api/sessions/import", exported, content_type="application/json")
    assert imported.status_code == 201, imported.content
    new = Conversation.objects.get(session_key=imported.json()["session_key"])
    rows = {m.role + str(bool(m.parts)): m for m in new.messages.all()}
    assert rows["assistantTrue"].parts == [{"type": "text", "text": "Let me look."}, CALL]
    assert rows["toolTrue"].parts == [RESULT]
    assert rows["toolTrue"].parent_id == rows["assistantTrue"].pk
    assert rows["userFalse"].parts == [] and rows["assistantFalse"].parent_id == rows["toolTrue"].pk
    again = api.get(f"/api/sessions/{new.session_key}/export").json()
    strip = lambda m: {k: v for k, v in m.items() if k not in ("id", "parent_id")}  # noqa: E731
    assert [strip(m) for m in again["messages"]] == [strip(m) for m in exported["messages"]]


def test_the_previous_export_format_still_imports(api, user):
    message = {
        "role": "user",
        "content": "old times",
        "status": "complete",
        "created_at": "2026-01-01T00:00:00Z",
    }
    answer = {**message, "id": "2", "parent_id": "1", "role": "assistant", "content": "indeed"}
    payload = {
        "format": "chat-session/1",
        "session": {"session_key": "old"},
        "messages": [{**message, "id": "1"}, answer],
    }
    response = api.post("/api/sessions/import", payload, content_type="application/json")
    assert response.status_code == 201, response.content
    rows = Message.objects.filter(conversation__session_key="old").order_by("created_at", "role")
    assert [(m.role, m.content, m.parts) for m in rows] == [
        ("assistant", "indeed", []),
        ("user", "old times", []),
    ]


def bad_import(messages, fmt="chat-session/2"):
    return {"format": fmt, "session": {"session_key": "bad"}, "messages": messages}


def row(id, role, parent=None, **fields):
    return {
        "id": id,
        "parent_id": parent,
        "role": role,
        "content": "c",
        "status": "complete",
        "created_at": "2026-01-01T00:00:00Z",
        **fields,
    }


CALLING = row("a", "assistant", parts=[CALL])


@pytest.mark.parametrize(
    ("messages", "fmt", "says"),
    [
        (
            [CALLING, row("t", "tool", "a", parts=[{**RESULT, "type": "tool_output"}])],
            None,
            "messages[1] (id t): parts[0]",
        ),
        ([CALLING, row("t", "tool", "a", parts=["text"])], None, "messages[1] (id t): parts[0]"),
        ([CALLING, row("t", "tool", "a", parts={"type": "text"})], None, "must be a list"),
        ([row("a", "assistant", parts=[{k: v for k, v in CALL.items() if k != "name"}])], None, "lacks name"),
        ([row("a", "assistant", parts=[{**CALL, "colour": "red"}])], None, "unknown keys: colour"),
        (
            [row("a", "assistant", parts=[{**CALL, "arguments": {"query": 1}}])],
            None,
            "arguments must be a str",
        ),
        (
            [CALLING, row("t", "tool", "a", parts=[{**RESULT, "is_error": "no"}])],
            None,
            "is_error must be a bool",
        ),
        ([row("u", "user", parts=[CALL])], None, "messages[0] (id u): parts[0] is a tool_call part"),
        (
            [CALLING, row("b", "assistant", "a", parts=[RESULT])],
            None,
            "messages[1] (id b): parts[0] is a tool_result",
        ),
        (
            [CALLING, row("t", "tool", "a")],
            None,
            "messages[1] (id t): a tool message is its tool_result parts",
        ),
        (
            [CALLING, row("t", "tool", "a", parts=[{**RESULT, "call_id": "call_9"}])],
            None,
            "call_9 answer no call",
        ),
        ([row("t", "tool", parts=[RESULT])], None, "messages[0] (id t): the results of call_1"),
        ([CALLING], "chat-session/1", "messages[0] (id a): parts and tool messages came with chat-session/2"),
    ],
    ids=[
        "unknown-type",
        "not-an-object",
        "parts-not-a-list",
        "call-without-name",
        "unknown-key",
        "arguments-not-text",
        "is-error-not-a-bool",
        "call-in-a-user-message",
        "result-in-an-assistant-message",
        "tool-message-without-results",
        "result-for-a-call-not-made",
        "tool-message-without-its-call",
        "parts-in-the-old-format",
    ],
)
def test_import_refuses_bad_parts_naming_the_message(api, messages, fmt, says):
    response = api.post(
        "/api/sessions/import", bad_import(messages, fmt or "chat-session/2"), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert says in error["message"], error["message"]
    assert not Conversation.objects.filter(session_key="bad").exists()


def test_the_streamed_export_and_so_the_retention_archive_carry_parts(user):
    """A large session's export, and prune_sessions' archive, are written by the streamed export."""
    from conversations.session_writes import conversation_export, conversation_export_stream

    conv = make_conversation(owner=user, session_key="archived")
    tool_round(conv)
    streamed = json.loads(b"".join(conversation_export_stream(conv)))
    assert streamed == json.loads(json.dumps(conversation_export(conv), default=str))
    assert [m.get("parts") for m in streamed["messages"]][1:3] == [
        [{"type": "text", "text": "Let me look."}, CALL],
        [RESULT],
    ]
