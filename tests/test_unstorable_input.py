"""Input PostgreSQL cannot store or Python cannot walk is a 4xx naming it, never a 500 — over the real
ASGI application (uvicorn in-process, DEBUG off), with an authenticated caller, and nothing stored.

A NUL in a URL (path or query string; HTTP and WebSocket) is refused before routing
(``chatproject/url_guard.py``); a lone surrogate or a NUL in any key or string of a JSON body, and
JSON nested past ``MAX_JSON_DEPTH``, by the one body check of the turn endpoints and the history
API's parser (``conversations/edge/bodies.py``); an imported artifact's filename cannot break its
download's header.
"""

import json
import uuid

import httpx
import pytest
from channels.testing import WebsocketCommunicator

from accounts.keys import api_key_create
from chatproject.asgi import application
from chatproject.url_guard import CLOSE_BAD_URL
from conversations.edge.bodies import MAX_JSON_DEPTH, json_refusal
from conversations.models import Artifact, Conversation, Message
from tests.factories import make_conversation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(user):
    return api_key_create(owner=user, name="hostile")[1]


@pytest.fixture
def api(asgi_server, openai_upstream, secret):
    with httpx.Client(base_url=asgi_server.url, headers={"X-API-Key": secret}, timeout=20) as http:
        yield http


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


def post_json(api: httpx.Client, url: str, body: str, method: str = "POST") -> httpx.Response:
    return api.request(method, url, content=body.encode(), headers={"Content-Type": "application/json"})


def nested(depth: int) -> str:
    """A JSON object ``depth`` levels deep: ``{"a": {"a": … 1 … }}``."""
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("param", ["q", "provider", "model"])
def test_a_nul_in_a_history_list_parameter_is_400(api, user, param):
    make_conversation(owner=user, session_key="s1")
    error = error_of(api.get(f"/api/sessions?{param}=a%00b"), 400)
    assert error["code"] == "nul_in_url" and "query string" in error["message"]
    assert api.get(f"/api/sessions?{param}=ab").status_code == 200  # the parameter itself still works


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/a%00b"),
        ("PATCH", "/api/sessions/a%00b"),
        ("DELETE", "/api/sessions/a%00b"),
        ("GET", "/api/sessions/a%00b/export"),
        ("GET", "/api/sessions/a%00b/artifacts"),
        ("GET", "/api/sessions/a%00b/messages"),
        ("POST", "/api/sessions/a%00b/messages"),
    ],
)
def test_a_nul_in_a_session_key_in_the_path_is_400_and_stores_nothing(api, method, path):
    response = post_json(api, path, '{"content": "hello", "title": "t"}', method=method)
    error = error_of(response, 400)
    assert error["code"] == "nul_in_url" and "path" in error["message"]
    assert not Conversation.objects.exists() and not Message.objects.exists()


async def test_a_nul_in_a_socket_path_gets_an_error_frame_and_a_close_code(secret):
    headers = [(b"origin", b"http://localhost"), (b"x-api-key", secret.encode())]
    ws = WebsocketCommunicator(application, "/ws/chat/a%00b/", headers=headers)
    connected, _ = await ws.connect(timeout=5)
    assert connected
    frame = await ws.receive_json_from(timeout=5)
    assert (frame["type"], frame["code"]) == ("error", "nul_in_url")
    assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": CLOSE_BAD_URL}


def test_a_lone_surrogate_in_session_metadata_is_400_and_stores_nothing(api, user):
    body = '{"session_key": "m1", "metadata": {"note": "\\ud800"}}'
    error = error_of(post_json(api, "/api/sessions", body), 400)
    assert error["code"] == "invalid_input" and "surrogate" in error["message"]
    assert not Conversation.objects.exists()
    make_conversation(owner=user, session_key="m2", metadata={"kept": "yes"})
    error_of(post_json(api, "/api/sessions/m2", '{"metadata": {"\\udfff": 1}}', method="PATCH"), 400)
    assert Conversation.objects.get(session_key="m2").metadata == {"kept": "yes"}
    paired = post_json(api, "/api/sessions", '{"session_key": "m3", "metadata": {"e": "\\ud83d\\ude00"}}')
    assert paired.status_code == 201 and paired.json()["metadata"] == {"e": "\U0001f600"}  # a pair is fine


def test_a_lone_surrogate_in_an_imported_session_is_400_and_stores_nothing(api):
    payload = {"format": "chat-session/1", "session": {"session_key": "imp"}, "messages": []}
    body = json.dumps(payload).replace('"imp"}', '"imp", "metadata": {"k": "\\ud800"}}')
    assert error_of(post_json(api, "/api/sessions/import", body), 400)["code"] == "invalid_input"
    assert not Conversation.objects.exists()


def test_a_lone_surrogate_or_nul_in_responses_metadata_is_refused_and_stores_nothing(api):
    for value, status in (("\\ud800", 400), ("a\\u0000b", 422)):
        body = '{"model": "gpt-test", "input": "hi", "metadata": {"k": "' + value + '"}}'
        response = post_json(api, "/v1/responses", body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["type"] == "invalid_request_error"  # the Responses API's shape
    assert not Message.objects.exists()


@pytest.mark.parametrize("depth", [330, 3_000])
def test_json_nested_past_the_limit_is_400_on_the_history_api(api, depth):
    """330 levels was a RecursionError in the NUL check (814 bytes, a 100 kB traceback); 3,000 one in
    the standard library's decoder itself."""
    error = error_of(post_json(api, "/api/sessions", '{"metadata": ' + nested(depth) + "}"), 400)
    assert error["code"] == "body_too_deep" and str(MAX_JSON_DEPTH) in error["message"]
    assert not Conversation.objects.exists()


def test_json_nested_past_the_limit_is_400_on_a_turn(api):
    body = '{"content": "hi", "json_schema": ' + nested(330) + "}"
    assert error_of(post_json(api, "/api/sessions/deep/messages", body), 400)["code"] == "body_too_deep"
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_json_nested_to_the_limit_is_accepted(api):
    body = '{"session_key": "edge", "metadata": {"x": ' + nested(MAX_JSON_DEPTH - 2) + "}}"
    assert post_json(api, "/api/sessions", body).status_code == 201  # the body, metadata, x: 64 levels


def test_the_body_check_walks_any_depth_without_recursion():
    value: object = "end"
    for _ in range(100_000):  # far past Python's recursion limit
        value = [value]
    refusal = json_refusal({"a": value})
    assert refusal is not None and (refusal.status, refusal.code) == (400, "body_too_deep")
    assert json_refusal({"a": [["x\x00"]]}).code == "invalid_input"


def test_an_imported_artifact_named_with_cr_lf_downloads_with_a_clean_header(api):
    name = "evil\r\nSet-Cookie: owned=1\r\n.py"
    message = {
        "id": "1",
        "role": "assistant",
        "content": "code",
        "status": "complete",
        "created_at": "2026-01-01T00:00:00Z",
        "artifacts": [{"position": 0, "language": "python", "filename": name, "content": "print(1)\n"}],
    }
    payload = {"format": "chat-session/1", "session": {"session_key": "art"}, "messages": [message]}
    assert api.post("/api/sessions/import", json=payload).status_code == 201
    artifact = Artifact.objects.get()
    raw = api.get(f"/api/sessions/art/artifacts/{artifact.pk}/raw")
    assert raw.status_code == 200 and raw.text == "print(1)\n"
    disposition = raw.headers["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "set-cookie" not in raw.headers
    assert disposition == "attachment; filename*=utf-8''evil%0D%0ASet-Cookie%3A%20owned%3D1%0D%0A.py"


def test_a_quote_in_an_artifact_name_is_escaped_not_dropped(api, user):
    payload = {
        "format": "chat-session/1",
        "session": {"session_key": "q"},
        "messages": [
            {
                "id": str(uuid.uuid4()),
                "role": "assistant",
                "content": "c",
                "status": "complete",
                "created_at": "2026-01-01T00:00:00Z",
                "artifacts": [{"position": 0, "language": "python", "filename": 'a"b.py', "content": "x"}],
            }
        ],
    }
    assert api.post("/api/sessions/import", json=payload).status_code == 201
    raw = api.get(f"/api/sessions/q/artifacts/{Artifact.objects.get().pk}/raw")
    assert raw.headers["content-disposition"] == 'attachment; filename="a\\"b.py"'
