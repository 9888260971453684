"""Scenario 8: every endpoint and socket, every object type, with another owner's ids, no credentials
and a revoked key, against a live server; a non-staff user on the admin; no secrets in the logs."""

import json
import os

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from accounts.keys import api_key_create, api_key_revoke
from tests.factories import make_artifact, make_conversation, make_message
from tests.live_server import LiveServer
from tests.origins import page_origin

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(user, other_user):
    conv = make_conversation(owner=other_user, session_key="bobs", title="Bob's secret plans")
    question = make_message(conv, content="bob's private question")
    answer = make_message(conv, role="assistant", content="bob's private answer", parent=question)
    artifact = make_artifact(answer, content="BOB_ONLY = True\n")
    _, alice = api_key_create(owner=user, name="alice")
    revoked_key, revoked = api_key_create(owner=other_user, name="old")
    api_key_revoke(prefix=revoked_key.prefix)
    return {"q": question.pk, "a": answer.pk, "art": artifact.pk, "alice": alice, "revoked": revoked}


@pytest.fixture
def server(reliability_env):
    live = LiveServer(
        {**reliability_env, "ALLOW_ANONYMOUS": "false", "LOG_LEVEL": "INFO"}, server="uvicorn"
    ).start()
    yield live
    live.stop()


def requests_for(w):
    s = "/api/sessions/bobs"
    m, q, art = w["a"], w["q"], w["art"]
    return [
        ("GET", s, None), ("PATCH", s, {"title": "x"}), ("DELETE", s, None),
        ("GET", f"{s}/export", None), ("GET", f"{s}/messages", None),
        ("POST", f"{s}/messages/{q}/edit", {"content": "x"}), ("POST", f"{s}/messages/{m}/regenerate", {}),
        ("GET", f"{s}/messages/{m}", None), ("DELETE", f"{s}/messages/{m}", None),
        ("POST", f"{s}/messages/{m}/stop", None), ("GET", f"{s}/messages/{m}/stream", None),
        ("GET", f"{s}/messages/{m}/artifacts", None), ("GET", f"{s}/artifacts", None),
        ("GET", f"{s}/artifacts/{art}", None), ("GET", f"{s}/artifacts/{art}/raw", None),
    ]  # fmt: skip


def test_no_credential_reaches_another_owners_data(server, world, ledger):
    callers = {
        "other owner": ({"X-API-Key": world["alice"]}, {404}),
        "no credentials": ({}, {401}),
        "revoked key": ({"X-API-Key": world["revoked"]}, {401}),
    }
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for label, (headers, expected) in callers.items():
            for method, url, body in requests_for(world):
                response = http.request(method, url, json=body, headers=headers)
                leaked = b"bob" in response.content.lower()
                ledger.add("cross_owner_leaks", int(leaked))
                ledger.add("server_5xx", int(response.status_code >= 500))
                assert not leaked, (label, method, url)
                assert response.status_code in expected, (label, method, url, response.status_code)
        # the objects are all still there, unchanged
        assert http.get("/api/sessions/bobs", headers={"X-API-Key": world["revoked"]}).status_code == 401
    url = server.url.replace("http://", "ws://") + "/ws/chat/bobs/"
    for key, query, code in (
        (world["alice"], "", 4403),
        (world["revoked"], "", 4401),
        (None, "", 4401),
        (None, f"?api_key={world['alice']}", 4401),  # a key in the URL is refused (WS_API_KEY_IN_QUERY)
    ):
        headers = {"X-API-Key": key} if key else {}
        with ws_connect(url + query, origin=page_origin(url), additional_headers=headers) as ws:
            with pytest.raises(Exception):  # noqa: B017 - closed by the server
                ws.recv(timeout=5)
            assert ws.close_code == code


def test_a_non_staff_user_gets_nothing_from_the_admin(server, world, user):
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as http:
        page = http.get("/admin/login/")
        token = page.cookies["csrftoken"]
        http.post(
            "/admin/login/",
            data={"username": "alice", "password": "pw-alice-123", "csrfmiddlewaretoken": token},
            headers={"Referer": server.url + "/admin/login/"},
        )
        for path in (
            "/admin/",
            "/admin/conversations/conversation/",
            f"/admin/conversations/message/{world['a']}/change/",
        ):
            response = http.get(path)
            assert response.status_code == 302, path
            assert "/admin/login/" in response.headers["location"]
            assert b"bob" not in response.content.lower()


def test_no_key_material_or_message_body_in_the_logs_at_info(server, world, user, fake_upstream_server):
    secret_text = "my unguessable diary entry 8c1f"
    with httpx.Client(base_url=server.url, timeout=20) as http:
        http.post(
            "/api/sessions/mine/messages",
            json={"content": secret_text},
            headers={"X-API-Key": world["alice"]},
        )
        http.get("/api/sessions", headers={"X-API-Key": world["revoked"]})
    log = server.output()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines, "the server logged nothing at INFO"
    assert secret_text not in log
    for key in (world["alice"], world["revoked"], os.environ.get("OPENAI_API_KEY") or "sk-test"):
        assert key not in log
