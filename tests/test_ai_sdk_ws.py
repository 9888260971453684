"""ws/ai-sdk/chat: the `ai` package's own WebSocketChatTransport (ai 7) against live servers, and the
wire protocol read by hand (tickets, frame validation, resume by sequence, a second tab)."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from accounts.keys import api_key_create
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply
from tests.js_clients import run_js
from tests.origins import page_origin

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(user):
    return api_key_create(owner=user, name="ws")[1]


def answer_of(chat_id: str) -> Message:
    return Message.objects.get(conversation__session_key=chat_id, role="assistant")


def wait_for_status(chat_id: str, status: str, timeout: float = 10) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        message = Message.objects.filter(conversation__session_key=chat_id, role="assistant").first()
        if message is not None and message.status == status:
            return message
        assert time.monotonic() < deadline, (
            f"answer of {chat_id} is {message and message.status}, not {status}"
        )
        time.sleep(0.05)


@pytest.fixture
def js(asgi_server, openai_upstream, key):
    def run(scenario: str, **args):
        payload = {
            "base": asgi_server.url,
            "origin": page_origin(asgi_server.url),
            "headers": {"X-API-Key": key},
            "scenario": scenario,
        }
        return run_js("ai_sdk_ws.mjs", {**payload, **args})

    return run


def test_the_transport_sends_a_message_and_reassembles_the_reply(js, user):
    text = "over the socket [[chunks=5]]"
    out = js("send", chatId="ws-send", text=text)
    assert out.get("thrown") is None and out["errors"] == []
    assert out["text"] == expected_reply(text)
    assert out["types"][0] == "start" and out["types"][-1] == "finish"
    answer = answer_of("ws-send")
    assert out["message"]["id"] == str(answer.pk) and answer.status == "complete"
    assert Conversation.objects.get(session_key="ws-send").owner_id == user.pk  # the ticket's caller


def test_abort_mid_answer_stops_the_turn_and_it_is_stored_interrupted(js, openai_upstream):
    out = js("abort", chatId="ws-abort", text="long [[chunks=60 delay=0.05]]", after=3)
    assert out.get("thrown") is None
    answer = wait_for_status("ws-abort", "interrupted")
    assert answer.error_code == "stopped"
    assert 0 < len(answer.content) < len(expected_reply("long [[chunks=60 delay=0.05]]"))


def test_resume_with_no_running_answer_is_null(js):
    assert js("resume-none", chatId="ws-idle") == {"resumed": None}


def test_resume_on_a_new_connection_to_another_process_gets_the_whole_answer(two_servers, upstream):
    a, b = two_servers
    text = "across processes [[chunks=30 delay=0.05]]"
    args = {
        "base": a,
        "resumeBase": b,
        "scenario": "resume",  # each socket from a page of the server it opens on
        "chatId": "ws-mp",
        "text": text,
    }
    out = run_js("ai_sdk_ws.mjs", {**args, "after": 4})
    assert out.get("thrown") is None
    assert out["first"]["types"].count("text-delta") == 4
    resumed = out["resumed"]
    assert resumed is not None and resumed["errors"] == []
    assert resumed["text"] == expected_reply(text)
    assert resumed["types"][0] == "start" and resumed["types"][-1] == "finish"
    assert resumed["message"]["id"] == str(answer_of("ws-mp").pk)
    assert wait_for_status("ws-mp", "complete").content == expected_reply(text)


# --- the wire by hand -------------------------------------------------------------------------------
def ticket(url: str, key: str | None = None, origin: str | None = None, path: str = "/api/ws-ticket") -> str:
    headers = {"Origin": origin or page_origin(url), **({"X-API-Key": key} if key else {})}
    response = httpx.post(url + path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 60
    return response.json()["ticket"]


def socket(url: str, query: str = "", origin: str | None = None):
    return ws_connect(
        url.replace("http://", "ws://") + "/ws/ai-sdk/chat" + query,
        origin=origin or page_origin(url),
        open_timeout=10,
    )


def send_frame(request_id: str, chat_id: str, text: str, **extra) -> str:
    message = {"id": f"m-{request_id}", "role": "user", "parts": [{"type": "text", "text": text}]}
    frame = {"type": "send", "requestId": request_id, "id": chat_id, "trigger": "submit-message"}
    return json.dumps({**frame, "messages": [message], "headers": {}, "body": {}, **extra})


def frames_until_end(ws, request_id: str, limit: float = 15) -> list[dict]:
    frames = []
    while True:
        frame = json.loads(ws.recv(timeout=limit))
        if frame["requestId"] == request_id:
            frames.append(frame)
            if frame["type"] in ("end", "error", "no-active"):
                return frames


def text_of(frames: list[dict]) -> str:
    return "".join(
        f["chunk"]["delta"] for f in frames if f["type"] == "chunk" and f["chunk"]["type"] == "text-delta"
    )


def close_code(ws) -> int | None:
    try:
        ws.recv(timeout=5)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    return None


def test_chunks_are_numbered_from_zero_and_a_second_tab_resumes_the_same_turn(
    asgi_server, openai_upstream, key
):
    text = "two tabs [[chunks=20 delay=0.05]]"
    with socket(asgi_server.url, f"?ticket={ticket(asgi_server.url, key)}") as tab1:
        tab1.send(send_frame("r1", "tabs", text))
        head = [json.loads(tab1.recv(timeout=10)) for _ in range(5)]
        with socket(asgi_server.url, f"?ticket={ticket(asgi_server.url, key)}") as tab2:
            tab2.send(
                json.dumps({"type": "resume", "requestId": "r2", "id": "tabs", "headers": {}, "body": {}})
            )
            watched = frames_until_end(tab2, "r2")
        sent = head + frames_until_end(tab1, "r1")
    assert [f["sequence"] for f in sent if f["type"] == "chunk"] == list(range(len(sent) - 1))
    assert watched[0] == {"type": "start", "requestId": "r2"}
    assert [f["chunk"] for f in watched[1:-1]] == [f["chunk"] for f in sent[:-1]]  # the whole stream
    assert [f["sequence"] for f in watched[1:-1]] == [f["sequence"] for f in sent[:-1]]
    assert text_of(watched) == expected_reply(text) and watched[-1]["type"] == "end"


def test_resume_after_last_sequence_sends_only_the_later_chunks(asgi_server, openai_upstream):
    with socket(asgi_server.url) as ws:  # anonymous use is on in the test settings
        ws.send(send_frame("s", "lastseq", "resume me [[chunks=20 delay=0.05]]"))
        [json.loads(ws.recv(timeout=10)) for _ in range(4)]
        resume = {
            "type": "resume",
            "requestId": "r",
            "id": "lastseq",
            "lastSequence": 5,
            "headers": {},
            "body": {},
        }
        ws.send(json.dumps(resume))
        resumed = frames_until_end(ws, "r")
    chunks = [f for f in resumed if f["type"] == "chunk"]
    assert chunks[0]["sequence"] == 6
    assert [f["sequence"] for f in chunks] == list(range(6, 6 + len(chunks)))


def test_a_refused_turn_is_an_error_frame_and_the_socket_stays_open(asgi_server, openai_upstream):
    with socket(asgi_server.url) as ws:
        bad = {"id": "x", "role": "assistant", "parts": [{"type": "text", "text": "not a user"}]}
        ws.send(json.dumps({**json.loads(send_frame("e", "refused", "")), "messages": [bad]}))
        (error,) = frames_until_end(ws, "e")
        assert error["type"] == "error" and "role user" in error["errorText"]
        ws.send(send_frame("ok", "refused", "fine [[chunks=2]]"))
        assert frames_until_end(ws, "ok")[-1]["type"] == "end"


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps(
            {"type": "send", "requestId": "r", "id": "c", "trigger": "nope", "messages": [], "headers": {}}
        ),
        json.dumps(
            {"type": "send", "requestId": "r", "id": "c", "trigger": "submit-message", "messages": [{}]}
        ),
        json.dumps(
            {"type": "resume", "requestId": "r", "id": "c", "headers": {}, "body": {}, "lastSequence": -1}
        ),
        json.dumps({"type": "resume", "requestId": 5, "id": "c", "headers": {}, "body": {}}),
        json.dumps({"type": "hello", "requestId": "r"}),
    ],
)
def test_an_invalid_frame_closes_the_socket_with_1008(asgi_server, openai_upstream, frame):
    with socket(asgi_server.url) as ws:
        ws.send(frame)
        assert close_code(ws) == 1008


def test_a_ticket_works_once_from_its_origin_only(asgi_server, openai_upstream, key, settings):
    settings.ALLOW_ANONYMOUS = False
    good = ticket(asgi_server.url, key, path="/api/ai-sdk/ws-ticket")  # its first name still works
    with socket(asgi_server.url, f"?ticket={good}") as ws:
        ws.send(send_frame("t", "ticketed", "hi [[chunks=1]]"))
        assert frames_until_end(ws, "t")[-1]["type"] == "end"
    with socket(asgi_server.url, f"?ticket={good}") as ws:
        assert close_code(ws) == 4401  # spent
    other = ticket(asgi_server.url, key, origin="http://127.0.0.1")
    with socket(asgi_server.url, f"?ticket={other}") as ws:
        assert close_code(ws) == 4401  # minted for another page
    with socket(asgi_server.url) as ws:
        assert close_code(ws) == 4401  # no credentials at all
    missing = httpx.post(f"{asgi_server.url}/api/ai-sdk/ws-ticket", headers={"X-API-Key": key})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "origin_required"
    refused = httpx.post(
        f"{asgi_server.url}/api/ai-sdk/ws-ticket", headers={"Origin": page_origin(asgi_server.url)}
    )
    assert refused.status_code == 401


def test_a_foreign_origin_is_refused(asgi_server, openai_upstream):
    with pytest.raises(InvalidStatus) as refused:
        socket(asgi_server.url, origin="https://evil.example")
    assert refused.value.response.status_code == 403


def test_without_its_store_no_ticket_is_issued_and_none_is_accepted(
    asgi_server, openai_upstream, key, settings
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    refused = httpx.post(
        f"{asgi_server.url}/api/ai-sdk/ws-ticket",
        headers={"Origin": page_origin(asgi_server.url), "X-API-Key": key},
    )
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "ticket_store_unavailable"
    settings.ALLOW_ANONYMOUS = False
    with socket(asgi_server.url, "?ticket=whatever") as ws:
        assert close_code(ws) == 4401


def test_a_ticket_is_never_logged(asgi_server, openai_upstream, key, caplog):
    caplog.set_level("DEBUG")
    raw = ticket(asgi_server.url, key)
    with socket(asgi_server.url, f"?ticket={raw}") as ws:
        ws.send(send_frame("l", "logged", "hi [[chunks=1]]"))
        frames_until_end(ws, "l")
    with socket(asgi_server.url, f"?ticket={raw}") as ws:  # spent: refused, and still not logged
        assert close_code(ws) == 4401
    clients = ("websockets.client", "httpx", "httpcore")  # this test's own clients, not the server
    server = [r for r in caplog.records if not r.name.startswith(clients)]
    assert server, "the server logged nothing at DEBUG: the check would prove nothing"
    assert not [r.getMessage() for r in server if raw in r.getMessage() or raw in str(r.args)]
