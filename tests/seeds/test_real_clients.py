"""The seeds' own shipped clients against a live server process with production settings.

Each reader below does what that seed's client does with the bytes (line splitting, trimming,
which field it reads), so these tests check what a user of that client sees: the whole reply, the
artifact, the provider's error, a conversation continued.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest

from conversations.models import Message
from tests.fake_upstream import expected_reply
from tests.live_server import LiveServer, current_database_url, provider_env

pytestmark = pytest.mark.django_db(transaction=True)

MOUNTS = ("CHAT_API", "ZAI", "CODING_AGENT")


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, fake_upstream_server):
    """``chatproject.settings`` as deployed (DEBUG off), every provider on the fake upstream."""
    with django_db_blocker.unblock():
        database_url = current_database_url()
    up = fake_upstream_server
    env = {
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
        "DEBUG": "false",
        "SECRET_KEY": "live-seed-clients-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOW_ANONYMOUS": "true",
        **{f"COMPAT_{mount}_ACCESS": "anonymous" for mount in MOUNTS},
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        # The run shares one Redis and one client IP across runs: the rate limits have tests of their own.
        "RATE_LIMIT_TURNS": "",
        "COMPAT_CHAT_API_RATE_LIMIT": "",
        **provider_env(up),
        "COMPAT_CODING_AGENT_PROVIDER": "gemini",  # seed 001 talks to Gemini
        "LLM_READ_TIMEOUT": "5",
        "LOG_LEVEL": "WARNING",
    }
    live = LiveServer(env, server="uvicorn").start()
    yield live.url
    live.stop()


def lines_of(response: httpx.Response):
    """The stream's lines as a browser reader loop yields them: split on ``\\n``, whatever the chunks."""
    buffer = ""
    for chunk in response.iter_text():
        buffer += chunk
        *lines, buffer = buffer.split("\n")
        yield from lines
    if buffer:
        yield buffer


# --- 004: the AI chat API's page ------------------------------------------------------------------
def chat_api_page(base: str, body: dict) -> dict:
    """The seed's page: each line trimmed; after ``event: delta`` the first ``data: `` payload is
    appended as raw text, after ``event: done`` it is the response id; the event resets after
    each data line."""
    seen: dict = {"reply": "", "response_id": None, "errors": []}
    event = None
    with httpx.stream("POST", f"{base}/compat/chat-api/api/chat/stream", json=body, timeout=20) as response:
        assert response.status_code == 200, response.read()
        for line in lines_of(response):
            line = line.strip()
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                payload = line[len("data: ") :]
                if event == "delta":
                    seen["reply"] += payload
                elif event == "done":
                    seen["response_id"] = payload
                elif event == "error":
                    seen["errors"].append(payload)
                event = None
    return seen


def words(text: str) -> str:
    return " ".join(text.split())


def test_004_page_shows_every_word_of_a_multiline_reply(server, upstream):
    message = "Hello there,\nsecond line  here\n\nlast words. [[chunks=11]]"
    page = chat_api_page(server, {"message": message})
    reply = expected_reply(message)
    assert "\n" in reply
    assert page["reply"] == "Echo: Hello there, second line  here last words."
    assert page["reply"].split() == reply.split()
    assert page["errors"] == []
    answer = Message.objects.get(role="assistant")
    assert page["response_id"] == str(answer.pk)
    assert answer.content == reply  # the stored answer keeps the line breaks


def test_004_response_id_continues_the_conversation_on_the_responses_api(server, upstream):
    first_message = "Remember the word kiwi. [[chunks=4]]"
    first = chat_api_page(server, {"message": first_message})
    second = chat_api_page(server, {"message": "Which word?", "previous_response_id": first["response_id"]})
    assert second["reply"] == expected_reply("Which word?")
    sent = upstream.last_request("/responses").json
    assert sent["instructions"] == "You are a helpful assistant. Be concise."
    assert [item["content"] for item in sent["input"]] == ["Which word?"]
    context = upstream.state.get_response(sent["previous_response_id"]).transcript
    assert context == [("user", first_message), ("assistant", expected_reply(first_message))]
    assert len({m.conversation_id for m in Message.objects.all()}) == 1


def test_004_provider_error_is_an_error_event_the_page_reads(server, upstream):
    upstream.push_fault("503")
    page = chat_api_page(server, {"message": "are you there?"})
    answer = Message.objects.get(role="assistant")
    assert (page["reply"], page["response_id"]) == ("", None)
    assert page["errors"] == [words(answer.error_message)]
    assert "HTTP 503" in page["errors"][0]


# --- 002: the Z.AI frontend -----------------------------------------------------------------------
def zai_client(base: str, messages: list[dict]) -> str:
    """``lib/zai-api.ts``: sends only ``messages``; each ``data: `` line is JSON, the text is
    ``choices[0].delta.content``."""
    reply = ""
    with httpx.stream(
        "POST", f"{base}/compat/zai/api/chat", json={"messages": messages}, timeout=20
    ) as response:
        assert response.status_code == 200, response.read()
        for line in lines_of(response):
            if line.startswith("data: "):
                chunk = json.loads(line[len("data: ") :])
                choices = chunk.get("choices") or [{}]
                reply += (choices[0].get("delta") or {}).get("content") or ""
    return reply


def test_002_client_sending_only_messages_gets_the_streamed_reply(server, upstream):
    text = "Hello, how are you? [[chunks=6]]"
    assert zai_client(server, [{"role": "user", "content": text}]) == expected_reply(text)
    sent = upstream.last_request("/chat/completions").json
    assert (sent["stream"], sent["temperature"], sent["max_tokens"]) == (True, 0.7, 2048)


# --- 001: the coding agent's React client ---------------------------------------------------------
class AgentError(Exception):
    pass


def coding_agent_client(base: str, session_id: str, text: str) -> dict:
    """The frontend: NDJSON, one JSON object per non-empty line; tokens are shown as they come,
    ``complete`` carries the text and the artifact, ``error`` throws ``new Error(data.error)``."""
    shown = {"tokens": "", "content": None, "artifact": None}
    body = {"session_id": session_id, "messages": [{"role": "user", "content": text}]}
    with httpx.stream(
        "POST", f"{base}/compat/coding-agent/api/chat/stream", json=body, timeout=20
    ) as response:
        assert response.status_code == 200, response.read()
        for line in lines_of(response):
            if not line.strip():
                continue
            data = json.loads(line)
            if data["type"] == "token":
                shown["tokens"] += data["content"]
            elif data["type"] == "complete":
                shown["content"], shown["artifact"] = data["content"], data.get("artifact")
            elif data["type"] == "error":
                raise AgentError(data["error"])
    return shown


def test_001_client_shows_the_reply_and_its_artifact(server, upstream):
    text = "make a page\n```html\n  <p>hi</p>\n\n```\nthat is all [[chunks=7]]"
    shown = coding_agent_client(server, "live-1", text)
    assert shown["tokens"] == shown["content"] == expected_reply(text)
    assert shown["artifact"] == {"language": "html", "code": "<p>hi</p>"}
    assert "/models/" in upstream.requests[-1].path  # answered by Gemini


def test_001_client_shows_a_fence_without_a_language_as_a_null_language(server, upstream):
    shown = coding_agent_client(server, "live-2", "plain\n```\nx = 1\n```")
    assert shown["artifact"] == {"language": None, "code": "x = 1"}


def test_001_client_shows_the_providers_error(server, upstream):
    upstream.push_fault("429", retry_after=17)
    with pytest.raises(AgentError) as raised:
        coding_agent_client(server, "live-3", "too much")
    assert str(raised.value).startswith("gemini: rate limited by the provider (HTTP 429); retry after 17s")
