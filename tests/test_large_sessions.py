"""A session of many messages: exported as a stream (flat memory) and deleted in a few statements,
while other requests are answered."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts.keys import api_key_create
from conversations import session_writes
from conversations.counters import sessions_recount
from conversations.models import Artifact, Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def big_session(owner, key: str, n: int) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, session_key=key, title="big")
    start, parent, rows = timezone.now() - timedelta(hours=1), None, []
    for i in range(n):
        message = Message(
            id=uuid.uuid4(),
            conversation=conversation,
            role="user" if i % 2 == 0 else "assistant",
            content=f"message {i} " + "x" * 50,
            parent_id=parent,
            created_at=start + timedelta(milliseconds=i),
        )
        rows.append(message)
        parent = message.id
    Message.objects.bulk_create(rows, batch_size=5000)
    Artifact.objects.create(message=rows[1], conversation=conversation, content="print(1)", position=0)
    sessions_recount([conversation.pk])
    return conversation


def test_a_large_session_is_exported_as_a_stream_with_every_message(asgi_server, user, monkeypatch):
    monkeypatch.setattr(session_writes, "EXPORT_CHUNK", 50)  # so a few hundred messages stream in chunks
    big_session(user, "big-export", 420)
    key = api_key_create(owner=user, name="export")[1]
    response = httpx.get(f"{asgi_server.url}/api/sessions/big-export/export", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert "content-length" not in response.headers  # streamed
    body = json.loads(response.content)
    assert body["format"] == "chat-session/3" and body["session"]["session_key"] == "big-export"
    assert [m["content"].split()[1] for m in body["messages"]] == [str(i) for i in range(420)]
    assert body["messages"][1]["artifacts"] == [
        {"position": 0, "language": "", "filename": "", "content": "print(1)"}
    ]
    small = httpx.get(f"{asgi_server.url}/api/sessions/big-export/export", headers={"X-API-Key": key})
    assert json.loads(small.content) == body


def test_deleting_a_large_session_is_quick_and_does_not_block_others(asgi_server, user):
    big_session(user, "big-delete", 20_000)
    key = api_key_create(owner=user, name="delete")[1]
    headers = {"X-API-Key": key}
    latencies: list[float] = []
    stop = threading.Event()

    def others() -> None:
        with httpx.Client(base_url=asgi_server.url, headers=headers) as client:
            while not stop.is_set():
                began = time.monotonic()
                assert client.get("/health").status_code in (200, 503)
                latencies.append(time.monotonic() - began)

    watcher = threading.Thread(target=others)
    watcher.start()
    began = time.monotonic()
    deleted = httpx.delete(f"{asgi_server.url}/api/sessions/big-delete", headers=headers, timeout=60)
    took = time.monotonic() - began
    stop.set()
    watcher.join(10)
    assert deleted.status_code == 204
    assert not Message.objects.filter(conversation__session_key="big-delete").exists()
    assert not Conversation.objects.filter(session_key="big-delete").exists()
    assert latencies, "other requests were answered while the session was deleted"
    print(f"deleted 20,000 messages in {took:.2f} s; other requests' max latency {max(latencies):.3f} s")
