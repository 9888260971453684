"""manage.py prune_sessions: sessions untouched for N days deleted, or archived then deleted, in batches."""

from __future__ import annotations

import gzip
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db


def aged(key: str, days: int, owner=None) -> Conversation:
    conversation = make_conversation(owner=owner, session_key=key)
    make_message(conversation, content=f"hello from {key}")
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - timedelta(days=days))
    return conversation


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_sessions", *args, stdout=out)
    return out.getvalue()


def test_old_sessions_go_in_batches_and_recent_ones_stay(user):
    for i in range(5):
        aged(f"old-{i}", 40, owner=user)
    aged("recent", 5, owner=user)
    assert "5 sessions" in run("--days", "30", "--dry-run")
    assert Conversation.objects.count() == 6
    assert "5 sessions" in run("--days", "30", "--batch", "2")
    assert list(Conversation.objects.values_list("session_key", flat=True)) == ["recent"]
    assert Message.objects.count() == 1


def test_archive_then_delete_writes_the_export(tmp_path, user, settings):
    settings.RETENTION_DAYS = 30
    aged("to-archive", 31, owner=user)
    run("--archive-dir", str(tmp_path))
    (path,) = (tmp_path / str(user.pk)).glob("to-archive-*.json.gz")
    export = json.loads(gzip.decompress(path.read_bytes()))
    assert (
        export["format"] == "chat-session/3" and export["messages"][0]["content"] == "hello from to-archive"
    )
    assert not Conversation.objects.exists()


def test_a_session_with_an_answer_streaming_is_kept(user):
    conversation = aged("busy", 90, owner=user)
    make_message(conversation, role="assistant", status="streaming", content="")
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - timedelta(days=90))
    run("--days", "30")
    assert Conversation.objects.filter(session_key="busy").exists()


def test_without_retention_it_refuses(settings):
    settings.RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="RETENTION_DAYS"):
        run()
