"""The admin at ten million messages: a changelist page never counts the whole table, filters need
no SELECT DISTINCT over it, search goes through indexes, and a session's page shows its newest
messages only (issue 21)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations.admin import INLINE_MESSAGES, CappedCountPaginator
from conversations.models import Message
from tests.factories import make_artifact, make_conversation, make_message

pytestmark = pytest.mark.django_db
MODELS = ["conversation", "message", "artifact"]


@pytest.fixture
def history(user):
    conv = make_conversation(owner=user, session_key="sess-scale", title="Kraken lore")
    answer = None
    for i in range(3):
        make_message(conv, content=f"question {i} about the kraken")
        answer = make_message(conv, role=Message.Role.ASSISTANT, content=f"answer {i}", parent=answer)
    make_artifact(answer, filename="kraken.py")
    return conv


def uncapped_counts(queries) -> list[str]:
    """COUNTs that are not over a LIMITed subquery: a count of everything the list matches."""
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "LIMIT" not in q["sql"].upper()]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "params", [{}, {"q": "sess-scale"}, {"created_at__gte": "2000-01-01 00:00:00+00:00"}]
)
def test_changelist_page_never_counts_the_whole_table(staff_client, history, model, params):
    with CaptureQueriesContext(connection) as ctx:
        page = staff_client.get(reverse(f"admin:conversations_{model}_changelist"), params)
    assert page.status_code == 200
    assert page.context["cl"].result_count >= 1
    assert uncapped_counts(ctx.captured_queries) == []
    assert not [q["sql"] for q in ctx.captured_queries if "DISTINCT" in q["sql"].upper()]


def test_count_is_capped(monkeypatch, staff_client, history):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    page = staff_client.get(reverse("admin:conversations_message_changelist"), {"role__exact": "user"})
    assert page.context["cl"].result_count == 3  # cap + 1: "more than the cap"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_class estimate")
def test_unfiltered_count_of_a_large_table_is_the_planners_estimate(monkeypatch, staff_client, history):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_message")
    with CaptureQueriesContext(connection) as ctx:
        page = staff_client.get(reverse("admin:conversations_message_changelist"))
    assert page.context["cl"].result_count == 6
    assert any("reltuples" in q["sql"] for q in ctx.captured_queries)
    assert not [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


def test_message_search_finds_words_and_session_keys(staff_client, history, user):
    other = make_conversation(owner=user, session_key="sess-other")
    make_message(other, content="nothing relevant")
    url = reverse("admin:conversations_message_changelist")
    assert staff_client.get(url, {"q": "kraken"}).context["cl"].result_count == 3
    assert staff_client.get(url, {"q": "sess-scale"}).context["cl"].result_count == 6
    assert staff_client.get(url, {"q": "sess-sc"}).context["cl"].result_count == 6  # a prefix


def test_artifact_search_finds_a_session_key(staff_client, history):
    url = reverse("admin:conversations_artifact_changelist")
    assert staff_client.get(url, {"q": "sess-scale"}).context["cl"].result_count == 1
    assert staff_client.get(url, {"q": "sess-nope"}).context["cl"].result_count == 0


def test_session_page_shows_its_newest_messages_only(staff_client, user):
    conv = make_conversation(owner=user, session_key="sess-long")
    for i in range(INLINE_MESSAGES + 5):
        make_message(conv, content=f"line-{i:03d}")
    with CaptureQueriesContext(connection) as ctx:
        page = staff_client.get(reverse("admin:conversations_conversation_change", args=[conv.pk]))
    shown = re.findall(r"line-(\d{3})", page.content.decode())
    assert sorted(set(shown)) == [f"{i:03d}" for i in range(5, INLINE_MESSAGES + 5)]
    assert any("LIMIT 50" in q["sql"] for q in ctx.captured_queries)


def test_foreign_keys_are_raw_ids_in_change_forms(staff_client, history):
    answer = Message.objects.filter(role=Message.Role.ASSISTANT).last()
    page = staff_client.get(reverse("admin:conversations_message_change", args=[answer.pk])).content.decode()
    assert "<select" not in re.sub(r'<select name="(role|status)".*?</select>', "", page, flags=re.S)
