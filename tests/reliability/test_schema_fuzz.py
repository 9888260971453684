"""Scenario 7: schemathesis over the OpenAPI schema, every operation, with and without credentials.

No 5xx, and every response conforms to the schema. The server is a live uvicorn
process on the test database with the offline demo provider (no upstream
needed).
"""

import os
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.live_server import LiveServer, current_database_url
from tests.reliability.conftest import SOAK

EXAMPLES = 12 * SOAK
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fuzz_key(db):
    from django.contrib.auth import get_user_model

    from accounts.keys import api_key_create

    user = get_user_model().objects.create_user(f"fuzz-{uuid.uuid4().hex[:8]}", password="x")
    return api_key_create(owner=user, name="fuzz")[1]


@pytest.fixture(scope="module")
def fuzz_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_url = current_database_url()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "LLM_PROVIDER": "demo",
        "DEMO_DELAY": "0",
        "ALLOW_ANONYMOUS": "false",
        "RATE_LIMIT_TURNS": "",
        "LOG_LEVEL": "ERROR",
        "API_DOCS": "public",  # the fuzzer reads the schema without credentials
    }
    server = LiveServer(env, server="uvicorn").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    server = fuzz_server
    raw = httpx.get(f"{server.url}/api/schema/", headers={"Accept": "application/json"}, timeout=30).json()
    schema = schemathesis.openapi.from_dict(raw)
    # Every request string's pattern refuses NUL (tests/test_api_history.py checks that), but OpenAPI
    # 3.0 cannot say so of a free-form object's keys (session metadata's description does).
    schema.config.generation.update(allow_x00=False)
    return schema


# Rules JSON Schema cannot state, refused on purpose with a 4xx that names them, so the
# "schema-valid data is accepted" check is off for these two: an OpenAI transcript must end with the
# user's message; an import's parent ids must point at messages in the same export; an AI SDK chat
# request's last UI message must be the user's, with a text part (a regenerate: something to regenerate);
# a WebSocket ticket needs the page's Origin (the header browsers send, or the body's origin); a
# Responses input list must end with the user's message (and hold only it after previous_response_id);
# a session's model must be one its provider serves (any known provider may be named, configured or
# not: GET /api/providers lists each one's models).
SEMANTIC_RULES = {
    # client tools (docs/tools.md) carry rules between fields and stored rows that OpenAPI 3.0
    # cannot state: tool_choice names one of the tools sent; a tool message's results answer the
    # calls of the session's newest answer. Schema conformance and the negative checks still run.
    "POST /api/sessions/{session_key}/messages",
    "POST /api/sessions/{session_key}/messages/{message_id}/edit",
    "POST /api/sessions/{session_key}/messages/{message_id}/regenerate",
    "POST /api/sessions",
    "PATCH /api/sessions/{session_key}",
    "POST /v1/chat/completions",
    "POST /v1/responses",
    "POST /api/sessions/import",
    "POST /api/ai-sdk/chat",
    "POST /api/ai-sdk/ws-ticket",
    "POST /api/ws-ticket",
    "GET /api/usage",  # to must be after from
}


def fuzz_all_operations(schema, server, ledger, headers: dict, examples: int) -> list[str]:
    """Run every operation's generated cases; return the operations that failed, with the reason."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        excluded = [positive_data_acceptance] if operation.label in SEMANTIC_RULES else []

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time; failures as found
            database=None,
        )
        def run(case):
            ledger.add("hostile_inputs")
            if isinstance(case.query, dict):  # a cursor is one the API gave: no schema can generate one
                case.query.pop("cursor", None)
            response = case.call(base_url=server.url, headers=headers, timeout=5)
            ledger.add("server_5xx", response.status_code >= 500)
            assert response.status_code < 500, (
                f"{response.status_code}: {response.text[:300]}\n{case.as_curl_command()}"
            )
            case.validate_response(response, excluded_checks=excluded)  # noqa: B023 - run() runs at once

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect them all, then fail once with the list
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


def server_errors(server) -> str:
    return "\n".join(line for line in server.output().splitlines() if '"ERROR"' in line)[-4000:]


def test_fuzz_every_operation_with_credentials(api_schema, fuzz_server, fuzz_key, ledger):
    failures = fuzz_all_operations(api_schema, fuzz_server, ledger, {"X-API-Key": fuzz_key}, EXAMPLES)
    assert not failures, "\n".join(failures) + "\n--- server log ---\n" + server_errors(fuzz_server)


def test_fuzz_every_operation_without_credentials(api_schema, fuzz_server, ledger):
    failures = fuzz_all_operations(api_schema, fuzz_server, ledger, {}, max(3, EXAMPLES // 3))
    assert not failures, "\n".join(failures) + "\n--- server log ---\n" + server_errors(fuzz_server)


# One streamed call of each operation that answers with an event stream, checked against the schema:
# the fuzz reaches these only when it happens to draw stream=true (or the SSE Accept).
STREAMED_CALLS = {
    "native": ("/api/sessions/{session_key}/messages", {"session_key": "sse-schema"}, {"content": "Hi"}),
    "chat": ("/v1/chat/completions", {}, {"messages": [{"role": "user", "content": "Hi"}], "stream": True}),
    "responses": ("/v1/responses", {}, {"input": "Hi", "stream": True}),
    "ai-sdk": (
        "/api/ai-sdk/chat",
        {},
        {
            "id": "ai-sdk-schema",
            "trigger": "submit-message",
            "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}],
        },
    ),
}


@pytest.mark.parametrize(("path", "path_parameters", "body"), STREAMED_CALLS.values(), ids=STREAMED_CALLS)
def test_event_streams_conform_to_the_schema(api_schema, fuzz_server, fuzz_key, path, path_parameters, body):
    operation = api_schema[path]["POST"]
    case = operation.Case(path_parameters=path_parameters or None, body=body, media_type="application/json")
    headers = {"X-API-Key": fuzz_key, "Accept": "text/event-stream"}
    response = case.call(base_url=fuzz_server.url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"][0].startswith("text/event-stream")
    case.validate_response(response)
