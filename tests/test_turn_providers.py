"""Turns through each provider kind, end to end over HTTP."""

import httpx
import pytest

from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply
from tests.turn_client import sse_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(asgi_server, upstream, settings):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = upstream.openai_base_url
    settings.GEMINI_API_KEY = "gem-test"
    settings.GEMINI_BASE_URL = upstream.gemini_base_url
    settings.ZAI_API_KEY = "id.secret"
    settings.ZAI_BASE_URL = upstream.zai_base_url
    settings.LLM_RETRY_ATTEMPTS = 0
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        yield http


@pytest.mark.parametrize("provider", ["openai", "openai-responses", "gemini", "zai", "demo"])
def test_each_provider_completes_a_turn_and_records_usage(client, provider, settings):
    settings.DEMO_DELAY = 0
    text = "which provider [[chunks=3]]"
    _, events = sse_events(
        client, f"/api/sessions/p-{provider}/messages", {"content": text, "provider": provider}
    )
    done = events[-1]
    assert done["type"] == "completed", done
    assert done["provider"] == provider
    answer = Message.objects.get(pk=done["message_id"])
    assert answer.status == "complete"
    if provider == "demo":
        assert "offline demo" in answer.content
        assert answer.usage_estimated
    else:
        assert answer.content == expected_reply(text)
        assert answer.output_tokens == 3
        assert not answer.usage_estimated


def test_responses_api_chains_with_the_stored_response_id(client, upstream):
    body = {"provider": "openai-responses"}
    _, first = sse_events(client, "/api/sessions/chain/messages", {**body, "content": "first [[chunks=2]]"})
    _, second = sse_events(client, "/api/sessions/chain/messages", {**body, "content": "second [[chunks=2]]"})
    sent = upstream.requests[-1].json
    assert sent["previous_response_id"] == first[-1]["response_id"]
    assert len(sent["input"]) == 1
    assert sent["input"][0]["role"] == "user"
    assert "second [[chunks=2]]" in str(sent["input"][0]["content"])
    assert Conversation.objects.get(session_key="chain").last_response_id == second[-1]["response_id"]


def test_forgotten_response_id_falls_back_to_resending_history(client, upstream):
    body = {"provider": "openai-responses"}
    sse_events(client, "/api/sessions/forgot/messages", {**body, "content": "first [[chunks=2]]"})
    upstream.reset()  # the upstream forgets every response id
    _, events = sse_events(client, "/api/sessions/forgot/messages", {**body, "content": "again [[chunks=2]]"})
    assert events[-1]["type"] == "completed"
    retried = upstream.requests[-1].json
    assert "previous_response_id" not in retried or retried["previous_response_id"] is None
    assert len(retried["input"]) == 3  # user, assistant, user


def test_switching_provider_mid_session_replays_the_transcript(client, upstream):
    sse_events(
        client,
        "/api/sessions/switch/messages",
        {"provider": "openai-responses", "content": "one [[chunks=1]]"},
    )
    sse_events(client, "/api/sessions/switch/messages", {"provider": "gemini", "content": "two [[chunks=1]]"})
    contents = upstream.requests[-1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]


def test_a_turn_naming_no_provider_continues_with_the_sessions(client, upstream, settings):
    settings.LLM_PROVIDER = "demo"  # the server's default is not the session's
    first_body = {"provider": "openai-responses", "content": "first [[chunks=2]]"}
    _, first = sse_events(client, "/api/sessions/keep/messages", first_body)
    _, second = sse_events(client, "/api/sessions/keep/messages", {"content": "second [[chunks=2]]"})
    assert second[0]["provider"] == second[-1]["provider"] == "openai-responses"
    assert Message.objects.get(pk=second[-1]["message_id"]).content == expected_reply("second [[chunks=2]]")
    # chosen after the session was read, and chained as that provider can
    assert upstream.requests[-1].json["previous_response_id"] == first[-1]["response_id"]
    assert Conversation.objects.get(session_key="keep").provider == "openai-responses"


def test_a_session_created_with_a_provider_and_model_answers_with_them(client, upstream, settings):
    settings.LLM_PROVIDER = "demo"
    settings.GEMINI_MODELS = ["gm-1"]  # served, and priced (anonymous callers have a budget)
    settings.PRICES = {"gemini:gm-1": {"input": 0, "output": 0}}
    created = client.post(
        "/api/sessions", json={"session_key": "made", "provider": "gemini", "model": "gm-1"}
    )
    assert created.status_code == 201, created.text
    _, events = sse_events(client, "/api/sessions/made/messages", {"content": "hi [[chunks=1]]"})
    assert (events[-1]["provider"], events[-1]["model"]) == ("gemini", "gm-1")
    assert "/models/gm-1:" in upstream.requests[-1].path


def test_a_session_whose_provider_is_gone_is_answered_by_the_default(client, upstream, settings):
    settings.DEMO_DELAY = 0
    sse_events(client, "/api/sessions/gone/messages", {"provider": "zai", "content": "one [[chunks=1]]"})
    settings.ZAI_API_KEY = ""  # the operator removed the key
    settings.LLM_PROVIDER = "demo"
    _, events = sse_events(client, "/api/sessions/gone/messages", {"content": "two [[chunks=1]]"})
    assert events[-1]["type"] == "completed"
    assert events[-1]["provider"] == "demo"
    assert Message.objects.get(pk=events[-1]["message_id"]).provider == "demo"
    assert Conversation.objects.get(session_key="gone").provider == "zai"  # its choice is kept
