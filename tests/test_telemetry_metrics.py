"""/metrics in Prometheus' text format: behind METRICS_TOKEN on the app, or on METRICS_BIND's own
listener; never labelled with a session or a user."""

from __future__ import annotations

import re

import httpx
import pytest

from conversations import telemetry
from tests.live_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-0123456789abcdef"
#: Every label the exposition may carry: the GenAI attributes, the buckets, the instrumentation scope,
#: the resource (target_info: service, process instance, SDK).
ALLOWED_LABELS = {
    "otel_scope_name",
    "otel_scope_version",
    "otel_scope_schema_url",
    "service_instance_id",
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "gen_ai_token_type",
    "server_address",
    "server_port",
    "error_type",
    "le",
    "service_name",
    "telemetry_sdk_language",
    "telemetry_sdk_name",
    "telemetry_sdk_version",
}


@pytest.fixture
def metrics_on(settings, openai_upstream):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN
    yield settings
    telemetry.shutdown()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def a_turn(client, session_key: str, content: str = "hello [[chunks=3]]") -> None:
    response = client.post(
        f"/api/sessions/{session_key}/messages", {"content": content}, content_type="application/json"
    )
    assert response.status_code in (200, 201), response.content
    assert response.json()["status"] == "complete"


def test_metrics_is_not_served_unless_enabled(client):
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 404


@pytest.mark.parametrize("headers", [{}, bearer("wrong-token-0123456789abcdef"), {"Authorization": TOKEN}])
def test_metrics_refuses_a_missing_or_wrong_token(metrics_on, client, headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthorized"


def test_metrics_shows_the_genai_metrics_without_session_or_user_labels(metrics_on, client, user):
    client.force_login(user)
    a_turn(client, "sess-private-4711")
    response = client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "gen_ai_client_operation_duration_seconds_bucket{" in text
    assert "gen_ai_client_operation_time_to_first_chunk_seconds_bucket{" in text
    assert 'gen_ai_token_type="output"' in text and 'gen_ai_token_type="input"' in text
    assert 'gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat"' in text
    assert set(re.findall(r'[{,](\w+)="', text)) <= ALLOWED_LABELS
    assert "sess-private-4711" not in text
    assert user.username not in text  # and no label is a user's (above)


def test_metrics_bind_serves_them_on_a_listener_of_its_own(settings, openai_upstream, client):
    port = free_port()
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    settings.METRICS_BIND = ("127.0.0.1", port)
    try:
        telemetry.configure()
        a_turn(client, "sess-bound")
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        assert "gen_ai_client_operation_duration_seconds_count" in response.text
        assert "sess-bound" not in response.text
        assert client.get("/metrics").status_code == 404  # no token: not on the app
    finally:
        telemetry.shutdown()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
