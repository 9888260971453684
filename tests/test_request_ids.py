import json
import logging

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_request_id_is_taken_from_the_header_and_echoed(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="req-abc.123")
    assert response["X-Request-Id"] == "req-abc.123"


def test_request_id_is_generated_when_absent_or_unsafe(client):
    first = client.get("/health")["X-Request-Id"]
    unsafe = client.get("/health", HTTP_X_REQUEST_ID="<script>")["X-Request-Id"]
    assert len(first) == 32 and first != unsafe and "<" not in unsafe


def test_every_log_line_of_a_streaming_turn_carries_its_request_id(asgi_server, openai_upstream, caplog):
    openai_upstream.push_fault("429", times=1, retry_after=1)  # makes the turn service log a warning
    with caplog.at_level(logging.DEBUG), httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        response = http.post(
            "/api/sessions/rid/messages",
            json={"content": "hello"},
            headers={"X-Request-Id": "turn-req-1", "Accept": "text/event-stream"},
        )
        assert response.headers["X-Request-Id"] == "turn-req-1"
        http.post(
            "/api/sessions/rid2/messages",
            json={"content": "other"},
            headers={"X-Request-Id": "turn-req-2"},
        )
    ours = [r for r in caplog.records if r.name.startswith("conversations")]
    assert ours, "the turn logged nothing"
    assert all(getattr(r, "request_id", None) in ("turn-req-1", "turn-req-2") for r in ours)
    assert any(r.request_id == "turn-req-1" for r in ours)


def test_json_log_lines_carry_the_request_id_and_never_keys_or_message_bodies(
    asgi_server, openai_upstream, caplog, settings, user
):
    from pythonjsonlogger.json import JsonFormatter

    from accounts.keys import api_key_create

    _, secret = api_key_create(owner=user, name="log-test")
    formatter = JsonFormatter(settings.LOGGING["formatters"]["json"]["fmt"])
    body = "a very private sentence 7f3a [[chunks=2]]"
    openai_upstream.push_fault("500", times=1)  # a failed turn logs at WARNING/INFO on our side
    with caplog.at_level(logging.INFO), httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        http.post(
            "/api/sessions/logs/messages",
            json={"content": body},
            headers={"X-API-Key": secret, "X-Request-Id": "rid-json"},
        )
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.levelno >= logging.INFO]
    assert any(line.get("request_id") == "rid-json" for line in lines)
    dump = json.dumps(lines)
    assert "very private sentence" not in dump
    assert secret not in dump
    assert settings.OPENAI_API_KEY not in dump
