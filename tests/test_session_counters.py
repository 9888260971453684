"""A session's counters and last-message preview, kept on its row by every kind of write, never drift
from its messages (``manage.py recount_sessions --check`` recomputes and compares)."""

from __future__ import annotations

import io
from decimal import Decimal

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from conversations.counters import COUNTER_FIELDS, sessions_recount
from conversations.models import Conversation, Message
from conversations.session_writes import conversation_export, conversation_greeting_store
from tests.fake_upstream import expected_reply

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["native", "orm"] if connection.vendor == "postgresql" else ["orm"]


@pytest.fixture(params=PATHS)
def write_path(request, settings):
    settings.TURN_DB_ASYNC = request.param == "native"
    settings.PRICES = {"openai:gpt-test": {"input": 1, "output": 10}}
    return request.param


def counters(key: str) -> dict:
    return Conversation.objects.filter(session_key=key).values(*COUNTER_FIELDS).get()


def assert_no_drift(key: str) -> dict:
    kept = counters(key)
    sessions_recount(Conversation.objects.filter(session_key=key).values_list("pk", flat=True))
    assert counters(key) == kept
    return kept


def post(url: str, path: str, **body) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=30)


def test_every_kind_of_turn_keeps_the_counters(asgi_server, openai_upstream, write_path):
    key, url = f"count-{write_path}", asgi_server.url
    first = post(url, f"/api/sessions/{key}/messages", content="one [[chunks=3]]").json()
    kept = assert_no_drift(key)
    answer = Message.objects.get(pk=first["message_id"])
    assert kept["message_count"] == 2 and kept["last_message_role"] == "assistant"
    assert kept["last_message_preview"] == expected_reply("one [[chunks=3]]")
    assert kept["output_tokens"] == 3 and kept["cost"] == answer.cost and kept["cost_unknown_answers"] == 0
    post(url, f"/api/sessions/{key}/messages", content="fails [[fault=500]]")  # failed, no token
    assert_no_drift(key)
    regenerated = post(url, f"/api/sessions/{key}/messages/{first['message_id']}/regenerate").json()
    assert regenerated["status"] == "complete"
    edited = post(
        url, f"/api/sessions/{key}/messages/{first['user_message_id']}/edit", content="two [[chunks=2]]"
    )
    assert edited.status_code == 200
    kept = assert_no_drift(key)
    assert kept["message_count"] == 2 + 2 + 1 + 2
    assert kept["last_message_preview"] == expected_reply("two [[chunks=2]]")


def test_a_model_without_a_price_counts_as_unknown(asgi_server, openai_upstream, settings):
    settings.PRICES = {}
    settings.BUDGET_ANONYMOUS = ""  # no budget applies: an unpriced model answers (docs/usage.md)
    post(asgi_server.url, "/api/sessions/unpriced/messages", content="free? [[chunks=2]]")
    kept = assert_no_drift("unpriced")
    assert kept["cost"] is None and kept["cost_unknown_answers"] == 1


def test_a_stopped_answer_and_an_orphan_closed_by_recovery(asgi_server, openai_upstream, write_path):
    import threading
    import time

    key = f"stop-{write_path}"
    done: dict = {}
    thread = threading.Thread(
        target=lambda: done.update(
            r=post(asgi_server.url, f"/api/sessions/{key}/messages", content="x [[chunks=40 delay=0.05]]")
        )
    )
    thread.start()
    while not Message.objects.filter(conversation__session_key=key, role="assistant").exists():
        time.sleep(0.02)
    time.sleep(0.3)
    answer = Message.objects.get(conversation__session_key=key, role="assistant")
    httpx.post(f"{asgi_server.url}/api/sessions/{key}/messages/{answer.pk}/stop")
    thread.join(10)
    kept = assert_no_drift(key)
    answer.refresh_from_db()
    assert answer.status == "interrupted" and kept["last_message_preview"] == answer.content[:200]


def test_deletes_imports_greetings_and_responses_keep_them(asgi_server, openai_upstream, user, sdk):
    url = asgi_server.url
    post(url, "/api/sessions/del/messages", content="a [[chunks=2]]")
    second = post(url, "/api/sessions/del/messages", content="b [[chunks=2]]").json()
    client = httpx.Client(base_url=url)
    assert client.delete(f"/api/sessions/del/messages/{second['message_id']}").status_code == 204
    kept = assert_no_drift("del")
    assert kept["message_count"] == 3 and kept["last_message_role"] == "user"
    exported = conversation_export(Conversation.objects.get(session_key="del"))
    imported = client.post(
        "/api/sessions/import",
        content=DjangoJSONEncoder().encode(exported),
        headers={"Content-Type": "application/json"},
    )
    assert imported.status_code == 201, imported.text
    new_key = imported.json()["session_key"]
    assert assert_no_drift(new_key)["message_count"] == 3
    assert conversation_greeting_store(owner_id=None, session_key="greet", greeting="Hello there")
    assert assert_no_drift("greet")["last_message_preview"] == "Hello there"
    one = sdk.responses.create(model="gpt-test", input="first [[chunks=2]]")
    two = sdk.responses.create(model="gpt-test", input="second [[chunks=2]]", previous_response_id=one.id)
    session = Message.objects.get(pk=two.id.removeprefix("resp_")).conversation.session_key
    assert_no_drift(session)
    sdk.responses.delete(two.id)
    assert assert_no_drift(session)["message_count"] == 2


def test_the_command_recounts_in_batches_and_check_reports_drift(user):
    conversation = Conversation.objects.create(owner=user, session_key="drifted")
    Message.objects.create(conversation=conversation, role="user", content="left uncounted")
    out = io.StringIO()
    with pytest.raises(CommandError, match="drifted"):
        call_command("recount_sessions", "--check", stdout=out)
    assert "1 with counters that differ" in out.getvalue()
    assert counters("drifted")["message_count"] == 0  # --check changes nothing
    call_command("recount_sessions", "--batch", "1", stdout=io.StringIO())
    kept = counters("drifted")
    assert kept["message_count"] == 1 and kept["last_message_preview"] == "left uncounted"
    call_command("recount_sessions", "--check", stdout=io.StringIO())
    Conversation.objects.filter(pk=conversation.pk).update(cost=Decimal("1"))
    with pytest.raises(CommandError):
        call_command("recount_sessions", "--check", stdout=io.StringIO())
