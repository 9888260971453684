"""Two live server processes sharing PostgreSQL and Redis: fan-out and resume across processes."""

import json
import os

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.factories import make_conversation
from tests.fake_upstream import expected_reply
from tests.origins import page_origin
from tests.turn_client import SSEParser

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: processes share Redis"),
]


@pytest.fixture(scope="module")
def servers(two_servers):
    return two_servers


def ws_url(base: str, key: str) -> str:
    return base.replace("http://", "ws://") + f"/ws/chat/{key}/"


def frames_until_terminal(ws, limit: float = 15) -> list[dict]:
    frames = []
    while True:
        frame = json.loads(ws.recv(timeout=limit))
        frames.append(frame)
        if frame["type"] in ("done", "error") and "seq" in frame:
            return frames


def text_of(frames):
    return "".join(f["text"] for f in frames if f["type"] == "delta")


def test_a_turn_started_on_one_process_is_watched_from_the_other(servers, upstream):
    a, b = servers
    make_conversation(owner=None, session_key="mp-watch")
    text = "watch me [[chunks=10 delay=0.02]]"
    with ws_connect(ws_url(b, "mp-watch"), origin=page_origin(b)) as watcher:
        with ws_connect(ws_url(a, "mp-watch"), origin=page_origin(a)) as sender:
            sender.send(json.dumps({"type": "message", "content": text}))
            sent = frames_until_terminal(sender)
        watched = frames_until_terminal(watcher)
    assert watched == sent
    assert text_of(watched) == expected_reply(text)
    assert [f["seq"] for f in watched] == list(range(1, len(watched) + 1))


def test_websocket_client_cut_off_resumes_on_the_other_process(servers, upstream):
    a, b = servers
    make_conversation(owner=None, session_key="mp-ws")
    text = "resume across [[chunks=12 delay=0.05]]"
    with ws_connect(ws_url(a, "mp-ws"), origin=page_origin(a)) as first:
        first.send(json.dumps({"type": "message", "content": text}))
        seen = [json.loads(first.recv(timeout=10)) for _ in range(4)]
    with ws_connect(ws_url(b, "mp-ws"), origin=page_origin(b)) as second:
        second.send(
            json.dumps({"type": "resume", "message_id": seen[0]["message_id"], "after_seq": seen[-1]["seq"]})
        )
        rest = frames_until_terminal(second)
    frames = seen + rest
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert text_of(frames) == expected_reply(text)
    assert frames[-1]["type"] == "done"


def test_sse_client_cut_off_resumes_on_the_other_process_with_last_event_id(servers, upstream):
    a, b = servers
    text = "sse across [[chunks=12 delay=0.05]]"
    parser, seen = SSEParser(), []
    with httpx.Client(timeout=20) as client:
        with client.stream(
            "POST",
            f"{a}/api/sessions/mp-sse/messages",
            json={"content": text},
            headers={"Accept": "text/event-stream"},
        ) as response:
            for chunk in response.iter_text():
                seen.extend(parser.feed(chunk))
                if sum(f.event == "delta" for f in seen) >= 3:
                    break  # the connection is dropped here
        message_id = seen[0].json()["message_id"]
        last_id = seen[-1].id
        resumed_parser, rest = SSEParser(), []
        with client.stream(
            "GET", f"{b}/api/sessions/mp-sse/messages/{message_id}/stream", headers={"Last-Event-ID": last_id}
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_text():
                rest.extend(resumed_parser.feed(chunk))
    frames = [f.json() for f in seen + rest]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert text_of(frames) == expected_reply(text)
    assert frames[-1]["type"] == "completed"


def test_an_idle_socket_stays_open_longer_than_the_channel_layer_poll(servers):
    a, _ = servers
    make_conversation(owner=None, session_key="mp-idle")
    with ws_connect(ws_url(a, "mp-idle"), origin=page_origin(a)) as ws:
        import time

        time.sleep(7)  # channels-redis blocks 5 s per poll on Redis
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}


def test_sse_cut_mid_arguments_resumes_the_tool_call_on_the_other_process(servers, upstream):
    """Issue 30: the tool-call events are turn events like the others: a client cut off between two
    argument fragments resumes on the other process and gets the rest of the call, once each."""
    from tests.fake_upstream import expected_tool_arguments

    a, b = servers
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    text = "Rome? [[tools=weather delay=0.15]]"
    body = {"content": text, "tools": [{"name": "weather", "parameters": schema}]}
    parser, seen = SSEParser(), []
    with httpx.Client(timeout=20) as client:
        with client.stream(
            "POST", f"{a}/api/sessions/mp-tool/messages", json=body, headers={"Accept": "text/event-stream"}
        ) as response:
            assert response.status_code == 200, response.read()
            for chunk in response.iter_text():
                seen.extend(parser.feed(chunk))
                if any(f.event == "tool_call_delta" for f in seen):
                    break  # cut between the first fragment and the second
        message_id, last_id = seen[0].json()["message_id"], seen[-1].id
        resumed_parser, rest = SSEParser(), []
        with client.stream(
            "GET",
            f"{b}/api/sessions/mp-tool/messages/{message_id}/stream",
            headers={"Last-Event-ID": last_id},
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_text():
                rest.extend(resumed_parser.feed(chunk))
    frames = [f.json() for f in seen + rest]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    kinds = [f["type"] for f in frames]
    assert (
        kinds[0] == "started" and kinds.count("tool_call_start") == 1 and kinds.count("tool_call_done") == 1
    )
    assert kinds[-2:] == ["usage", "completed"] and frames[-1]["finish_reason"] == "tool_calls"
    fragments = "".join(f["arguments"] for f in frames if f["type"] == "tool_call_delta")
    done = next(f for f in frames if f["type"] == "tool_call_done")
    assert fragments == done["arguments"] == expected_tool_arguments(schema, "Rome?")
    assert done["input"] == {"city": "Rome?"} and done["name"] == "weather"
