"""`GET /api/sessions?q=`: full-text through the message index on PostgreSQL, a substring on SQLite,
the owner's sessions only, in the list's order with its cursor (issue 21)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.keys import api_key_create
from conversations import search, selectors
from conversations.models import Conversation, Message
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL full-text search")
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite substring search")


@pytest.fixture
def api(user):
    _, secret = api_key_create(owner=user, name="tests")
    return Client(headers={"X-API-Key": secret})


def keys(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [s["session_key"] for s in response.json()["results"]]


def session_with(
    owner, key: str, *contents: str, title: str = "Untitled", minutes_ago: int = 0
) -> Conversation:
    conv = make_conversation(owner=owner, session_key=key, title=title)
    for content in contents:
        make_message(conv, content=content)
    Conversation.objects.filter(pk=conv.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes_ago))
    return conv


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL enable_seqscan = off"
        )  # the tables are tiny: make the index the cheaper way
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgresql_only
def test_search_plan_reads_the_message_index_for_a_rare_word(user):
    """With many sessions, the planner takes the sessions of a rare word's messages from the index
    (for a common word it may test the owner's newest sessions one by one instead: also fast)."""
    sessions = Conversation.objects.bulk_create(
        Conversation(owner=user, session_key=f"bulk-{i}", title="Untitled") for i in range(300)
    )
    Message.objects.bulk_create(
        Message(conversation=conv, role="user", content=f"ordinary words about the weather, part {n}")
        for conv in sessions
        for n in range(10)
    )
    session_with(user, "a", "the kraken awakens")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_message")
        cursor.execute("ANALYZE conversations_conversation")
    page = selectors.session_list_for_owner(user.pk, q="kraken").order_by("-updated_at", "-id")[:21]
    plan = plan_of(page)
    assert search.MESSAGE_CONTENT_INDEX in plan, plan
    assert "owner_id =" in plan, plan
    assert [c.session_key for c in page] == ["a"]


@postgresql_only
def test_admin_title_and_session_key_searches_read_their_indexes(user):
    title = Conversation.objects.order_by().filter(title__icontains="kraken")
    assert search.CONVERSATION_TITLE_INDEX in plan_of(title)
    by_key = Conversation.objects.order_by().filter(session_key__startswith="sess-1")
    assert search.SESSION_KEY_INDEX in plan_of(by_key)


@postgresql_only
def test_search_uses_websearch_syntax(api, user):
    session_with(user, "phrase", "the deep blue sea")
    session_with(user, "scattered", "blue skies over a deep canyon")
    session_with(user, "other", "a quiet forest")
    assert sorted(keys(api.get("/api/sessions", {"q": '"deep blue"'}))) == ["phrase"]
    assert sorted(keys(api.get("/api/sessions", {"q": "deep -canyon"}))) == ["phrase"]
    assert sorted(keys(api.get("/api/sessions", {"q": "canyon or forest"}))) == ["other", "scattered"]
    assert keys(api.get("/api/sessions", {"q": '"unbalanced -or ('})) == []  # never a syntax error


@postgresql_only
def test_search_stems_with_the_english_configuration(api, user):
    session_with(user, "bread", "I was baking bread all morning")
    assert keys(api.get("/api/sessions", {"q": "bakes"})) == ["bread"]


def test_search_finds_part_of_a_title(api, user):
    session_with(user, "t", title="Sourdough starter troubleshooting")
    session_with(user, "u", title="Something else")
    assert keys(api.get("/api/sessions", {"q": "dough star"})) == ["t"]
    assert keys(api.get("/api/sessions", {"q": "TROUBLE"})) == ["t"]


def test_search_never_shows_another_owners_sessions(api, user, other_user):
    session_with(other_user, "theirs", "the kraken awakens", title="kraken stories")
    session_with(user, "mine", "a kraken sighting")
    assert keys(api.get("/api/sessions", {"q": "kraken"})) == ["mine"]


def test_search_results_keep_the_list_order_and_its_cursor(api, user):
    for i in range(5):
        session_with(user, f"hit{i}", f"the kraken, part {i}", minutes_ago=10 - i)
        session_with(user, f"miss{i}", "nothing to see", minutes_ago=20 - i)
    first = api.get("/api/sessions", {"q": "kraken", "page_size": 2}).json()
    assert [s["session_key"] for s in first["results"]] == ["hit4", "hit3"]
    second = api.get(first["next"]).json()
    assert [s["session_key"] for s in second["results"]] == ["hit2", "hit1"]
    third = api.get(second["next"]).json()
    assert [s["session_key"] for s in third["results"]] == ["hit0"]
    assert third["next"] is None


def test_search_combines_with_the_other_filters(api, user):
    session_with(user, "a", "kraken").__class__.objects.filter(session_key="a").update(provider="openai")
    session_with(user, "b", "kraken")
    assert keys(api.get("/api/sessions", {"q": "kraken", "provider": "openai"})) == ["a"]


@sqlite_only
def test_sqlite_search_is_a_substring_match(api, user):
    session_with(user, "a", "the krakens awaken")
    session_with(user, "b", "deep blue sea")
    assert keys(api.get("/api/sessions", {"q": "raken"})) == ["a"]
    assert keys(api.get("/api/sessions", {"q": "blue sea"})) == ["b"]
    assert keys(api.get("/api/sessions", {"q": "sea blue"})) == []


def test_a_search_config_other_than_the_indexes_warns(settings):
    settings.TEXT_SEARCH_CONFIG = "simple"
    warnings = [m for m in run_checks() if m.id == "conversations.W001"]
    assert bool(warnings) == (connection.vendor == "postgresql")
    settings.TEXT_SEARCH_CONFIG = search.INDEX_CONFIG
    assert not [m for m in run_checks() if m.id == "conversations.W001"]
