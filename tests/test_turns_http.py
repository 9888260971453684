"""Turns over real HTTP: the real ASGI app (uvicorn, in-process), the real openai SDK, the fake upstream."""

import json
import threading
import time

import httpx
import pytest

from conversations.models import Artifact, Conversation, Message
from tests.fake_upstream import expected_reply, split_reply
from tests.turn_client import SSEParser, sse_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(asgi_server, openai_upstream):
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        yield http


def answer_of(events):
    return "".join(e["text"] for e in events if e["type"] == "delta")


def test_sse_streams_every_event_with_seq_and_saves_the_complete_answer(client, upstream):
    status, events = sse_events(
        client, "/api/sessions/sess-1/messages", {"content": "Hello there [[chunks=4]]"}
    )
    assert status == 200
    types = [e["type"] for e in events]
    assert types == ["started", "delta", "delta", "delta", "delta", "usage", "completed"]
    assert [e["seq"] for e in events] == list(range(1, 8))
    assert answer_of(events) == expected_reply("Hello there [[chunks=4]]")
    done = events[-1]
    assert done["content"] == answer_of(events)
    assert done["finish_reason"] == "stop"
    assert done["response_id"].startswith("chatcmpl-")
    answer = Message.objects.get(pk=done["message_id"])
    assert answer.status == "complete"
    assert answer.content == done["content"]
    assert (answer.input_tokens, answer.output_tokens, answer.usage_estimated) == (
        events[-2]["input_tokens"],
        4,
        False,
    )
    assert answer.parent.content == "Hello there [[chunks=4]]"
    assert answer.conversation.session_key == "sess-1"
    assert answer.conversation.title == "Hello there [[chunks=4]]"


def test_sse_frames_carry_id_and_event_lines(client):
    with client.stream(
        "POST",
        "/api/sessions/sess-raw/messages",
        json={"content": "hi"},
        headers={"Accept": "text/event-stream"},
    ) as response:
        raw = response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
    first = raw.split("\n\n")[0].split("\n")
    assert first[0] == "id: 1"
    assert first[1] == "event: started"
    assert json.loads(first[2].removeprefix("data: "))["type"] == "started"


def test_ndjson_streams_one_event_per_line(client):
    with client.stream(
        "POST",
        "/api/sessions/sess-nd/messages",
        json={"content": "lines please [[chunks=3]]"},
        headers={"Accept": "application/x-ndjson"},
    ) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [e["type"] for e in lines] == ["started", "delta", "delta", "delta", "usage", "completed"]
    assert answer_of(lines) == expected_reply("lines please [[chunks=3]]")


def test_json_returns_the_whole_turn_when_it_completes(client):
    response = client.post("/api/sessions/sess-js/messages", json={"content": "whole [[chunks=3]]"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "complete"
    assert body["content"] == expected_reply("whole [[chunks=3]]")
    assert body["usage"]["output_tokens"] == 3
    assert body["session_key"] == "sess-js"


def test_first_delta_reaches_the_client_before_the_upstream_finishes_and_disconnect_saves_partial_answer(
    client, upstream
):
    text = "keep going [[chunks=6 fault=stall:2]]"
    parser = SSEParser()
    seen = []
    with client.stream(
        "POST",
        "/api/sessions/sess-cut/messages",
        json={"content": text},
        headers={"Accept": "text/event-stream"},
    ) as response:
        for chunk in response.iter_text():
            seen.extend(f.json() for f in parser.feed(chunk))
            if sum(e["type"] == "delta" for e in seen) == 2:
                break  # the upstream is stalled after 2 chunks: these arrived while it was still open
    # leaving the block closed our connection mid-stream
    assert upstream.wait_for_disconnect(timeout=3.0), "the upstream request was not cancelled"
    message_id = seen[0]["message_id"]
    answer = wait_for_status(message_id, "interrupted")
    assert answer.content == answer_of(seen)
    assert answer.content == "".join(split_reply(expected_reply(text), 6)[:2])
    assert answer.error_code == "disconnected"


def wait_for_status(message_id, status, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        message = Message.objects.get(pk=message_id)
        if message.status == status or time.monotonic() > deadline:
            assert message.status == status
            return message
        time.sleep(0.05)


def test_rate_limit_before_first_token_fails_the_turn_with_retry_after(client, upstream):
    upstream.push_fault("429", times=1, retry_after=7)
    status, events = sse_events(client, "/api/sessions/sess-429/messages", {"content": "anyone?"})
    assert status == 200
    failed = events[-1]
    assert failed["type"] == "failed"
    assert (failed["status"], failed["code"], failed["retry_after"]) == ("failed", "rate_limited", 7.0)
    answer = Message.objects.get(pk=failed["message_id"])
    assert (answer.status, answer.error_code) == ("failed", "rate_limited")
    assert Message.objects.filter(role="user", content="anyone?").exists()


def test_json_turn_that_is_rate_limited_answers_429_with_retry_after(client, upstream):
    upstream.push_fault("429", times=1, retry_after=3)
    response = client.post("/api/sessions/sess-429j/messages", json={"content": "anyone?"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "rate_limited"


def test_mid_stream_drop_fails_honestly_keeping_the_partial_text_and_never_retries(
    client, upstream, settings
):
    settings.LLM_RETRY_ATTEMPTS = 3
    _status, events = sse_events(
        client, "/api/sessions/sess-drop/messages", {"content": "go [[chunks=5 fault=drop:2]]"}
    )
    failed = events[-1]
    assert failed["type"] == "failed"
    assert failed["code"] == "provider_unavailable"
    assert failed["content"] == answer_of(events) != ""
    assert len([r for r in upstream.requests if r.path.endswith("/chat/completions")]) == 1
    answer = Message.objects.get(pk=failed["message_id"])
    assert (answer.status, answer.content) == ("failed", failed["content"])


def test_error_before_first_token_is_retried(client, upstream, settings):
    settings.LLM_RETRY_ATTEMPTS = 2
    upstream.push_fault("500", times=1)
    _status, events = sse_events(
        client, "/api/sessions/sess-retry/messages", {"content": "try again [[chunks=2]]"}
    )
    assert events[-1]["type"] == "completed"
    assert answer_of(events) == expected_reply("try again [[chunks=2]]")
    assert len(upstream.requests) == 2


def test_falls_back_to_the_next_configured_model_before_the_first_token(client, upstream, settings):
    settings.OPENAI_MODELS = ["gpt-test", "backup-model"]  # the fallback model is one OpenAI serves
    settings.LLM_FALLBACKS = ["openai:backup-model"]
    upstream.push_fault("503", times=5, model="gpt-test")
    _status, events = sse_events(
        client, "/api/sessions/sess-fb/messages", {"content": "fallback [[chunks=2]]"}
    )
    done = events[-1]
    assert done["type"] == "completed"
    assert done["model"] == "backup-model"
    assert Message.objects.get(pk=done["message_id"]).model == "backup-model"
    assert [r.json["model"] for r in upstream.requests] == ["gpt-test", "backup-model"]


def test_repeated_client_message_id_replays_the_stored_turn_without_calling_the_provider(client, upstream):
    body = {"content": "once only [[chunks=3]]", "client_message_id": "c-42"}
    _, first = sse_events(client, "/api/sessions/sess-idem/messages", body)
    _, second = sse_events(client, "/api/sessions/sess-idem/messages", body)
    assert len(upstream.requests) == 1
    assert second[-1]["type"] == "completed"
    assert second[-1]["message_id"] == first[-1]["message_id"]
    assert answer_of(second) == answer_of(first)
    assert Message.objects.filter(role="user").count() == 1


def test_repeated_client_message_id_while_streaming_is_409(client, upstream):
    body = {"content": "slow [[chunks=4 fault=stall:1]]", "client_message_id": "c-busy"}
    parser = SSEParser()
    with client.stream(
        "POST", "/api/sessions/sess-busy/messages", json=body, headers={"Accept": "text/event-stream"}
    ) as response:
        chunks = response.iter_text()
        while not any(f.event == "delta" for f in parser.feed(next(chunks))):
            pass
        # the first stream is still open (stalled upstream) while these arrive
        again = client.post("/api/sessions/sess-busy/messages", json=body)
        other = client.post("/api/sessions/sess-busy/messages", json={"content": "meanwhile"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "turn_in_progress"
    assert other.status_code == 409
    assert len([r for r in upstream.requests if r.path.endswith("/chat/completions")]) == 1


def test_stop_endpoint_cancels_the_upstream_and_saves_interrupted(client, upstream):
    parser = SSEParser()
    events, stop = [], None
    with client.stream(
        "POST",
        "/api/sessions/sess-stop/messages",
        json={"content": "long answer [[chunks=8 fault=stall:2]]"},
        headers={"Accept": "text/event-stream"},
    ) as response:
        for chunk in response.iter_text():
            events.extend(f.json() for f in parser.feed(chunk))
            if sum(e["type"] == "delta" for e in events) == 2 and stop is None:
                message_id = events[0]["message_id"]
                stop = client.post(f"/api/sessions/sess-stop/messages/{message_id}/stop")
    assert stop.status_code == 202
    assert events[-1]["type"] == "failed"
    assert (events[-1]["status"], events[-1]["code"]) == ("interrupted", "stopped")
    assert upstream.wait_for_disconnect(timeout=2.0)
    answer = Message.objects.get(pk=events[0]["message_id"])
    assert answer.status == "interrupted"
    assert answer.content == answer_of(events)


def test_stop_of_another_session_or_unknown_message_is_404(client):
    response = client.post("/api/sessions/nope/messages/00000000-0000-0000-0000-000000000000/stop")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_running"


def test_artifacts_split_across_chunks_are_extracted_and_saved(client):
    content = "Look:\n```python app.py\nprint('hi')\nprint('there')\n```\nand\n```js\nlet x = 1\n```\n [[chunks=40]]"
    _status, events = sse_events(client, "/api/sessions/sess-art/messages", {"content": content})
    artifacts = [e for e in events if e["type"] == "artifact"]
    assert [(a["position"], a["language"], a["filename"]) for a in artifacts] == [
        (0, "python", "app.py"),
        (1, "js", ""),
    ]
    assert artifacts[0]["content"] == "print('hi')\nprint('there')\n"
    assert artifacts[1]["content"] == "let x = 1\n"
    saved = Artifact.objects.filter(message_id=events[-1]["message_id"]).order_by("position")
    assert [a.content for a in saved] == [a["content"] for a in artifacts]


def test_history_and_system_prompt_are_sent_and_capped_by_max_history_messages(client, upstream, settings):
    settings.MAX_HISTORY_MESSAGES = 2
    for text in ("first [[chunks=1]]", "second [[chunks=1]]"):
        sse_events(client, "/api/sessions/sess-h/messages", {"content": text, "system": "Be brief."})
    sse_events(client, "/api/sessions/sess-h/messages", {"content": "third"})
    sent = upstream.requests[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in sent[1:]] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "second [[chunks=1]]"
    assert sent[-1]["content"] == "third"


def test_temperature_and_max_tokens_are_forwarded(client, upstream):
    client.post("/api/sessions/sess-t/messages", json={"content": "x", "temperature": 0.3, "max_tokens": 50})
    body = upstream.requests[-1].json
    assert body["temperature"] == 0.3
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 50


def test_json_mode_turn_with_invalid_json_fails_with_a_clear_code(client):
    response = client.post(
        "/api/sessions/sess-j/messages", json={"content": "data [[json=invalid]]", "json": True}
    )
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "invalid_json"
    valid = client.post("/api/sessions/sess-j2/messages", json={"content": "data", "json": True}).json()
    assert valid["status"] == "complete"
    assert json.loads(valid["content"])["echo"] == "data"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"content": ""}, {}, 422, "invalid_input"),
        ({"content": "   \n"}, {}, 422, "invalid_input"),
        ({}, {}, 422, "invalid_input"),
        ({"content": 5}, {}, 422, "invalid_input"),
        ({"content": "x" * 100_001}, {}, 413, "payload_too_large"),
        ({"content": "hi", "provider": "nope"}, {}, 422, "unknown_provider_or_model"),
        ({"content": "hi", "model": "bad model!"}, {}, 422, "model_not_found"),
        ({"content": "hi", "temperature": 3}, {}, 422, "invalid_input"),
        ({"content": "hi", "max_tokens": 0}, {}, 422, "invalid_input"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_persisted(client, body, headers, status, code):
    response = client.post("/api/sessions/sess-bad/messages", json=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()


def test_malformed_json_is_400_and_wrong_content_type_is_415(client):
    bad = client.post(
        "/api/sessions/s/messages", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "malformed_json")
    form = client.post("/api/sessions/s/messages", data={"content": "hi"})
    assert (form.status_code, form.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert not Message.objects.exists()


def test_unknown_model_outside_the_allowlist_is_refused(client, settings):
    settings.OPENAI_MODELS = ["gpt-test"]
    response = client.post("/api/sessions/s/messages", json={"content": "hi", "model": "gpt-other"})
    assert response.status_code == 422
    assert "OPENAI_MODELS" in response.json()["error"]["message"]


def test_concurrent_requests_stream_independently(client, asgi_server):
    results = {}

    def run(key):
        with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
            results[key] = sse_events(
                http, f"/api/sessions/{key}/messages", {"content": f"{key} [[chunks=3 delay=0.05]]"}
            )

    threads = [threading.Thread(target=run, args=(f"sess-c{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key, (_status, events) in results.items():
        assert answer_of(events) == expected_reply(f"{key} [[chunks=3 delay=0.05]]")


def test_nul_characters_are_refused_not_a_server_error(client):
    response = client.post("/api/sessions/nul/messages", json={"content": "a\u0000b"})
    assert response.status_code == 422
    assert "NUL" in response.json()["error"]["message"]
    assert not Message.objects.exists()
