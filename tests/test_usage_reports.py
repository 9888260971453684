"""conversations/usage/staff_report.py (the staff-wide usage numbers) and the admin usage page that shows them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.keys import api_key_create
from billing.models import Budget
from conversations.usage.admin_page import range_bounds
from conversations.usage.staff_report import days_between, usage_overview
from conversations.usage.user_report import usage_report
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
START, END = range_bounds(dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def answer(conversation, *, cost, when=DAY, provider="openai", model="gpt-4o-mini", key=None, **tokens):
    return make_message(
        conversation,
        role="assistant",
        status=tokens.pop("status", "complete"),
        provider=provider,
        model=model,
        input_tokens=tokens.get("input_tokens", 10),
        output_tokens=tokens.get("output_tokens", 20),
        cost=cost,
        api_key_id=key.pk if key else None,
        created_at=when,
    )


@pytest.fixture
def history(user, other_user):
    key, _ = api_key_create(owner=user, name="laptop")
    alice = make_conversation(owner=user)
    answer(alice, cost=Decimal("0.001"), key=key)
    answer(alice, cost=Decimal("0.002"), model="gpt-4.1", when=DAY + dt.timedelta(days=1))
    answer(alice, cost=None, provider="openai-compatible", model="llama3")  # price unknown
    answer(alice, cost=Decimal("5"), when=END)  # after the range
    answer(alice, cost=None, status="streaming")  # not finished: not counted yet
    bob = make_conversation(owner=other_user)
    answer(bob, cost=Decimal("0.5"), input_tokens=100, output_tokens=200)
    anonymous = make_conversation(owner=None)
    answer(anonymous, cost=None)
    return key


def test_daily_rows_per_day_and_model_with_unknown_costs_as_none(history):
    daily = usage_overview(START, END)["daily"]
    assert [(r["day"], r["label"], r["turns"], r["cost"]) for r in daily] == [
        ("2026-03-10", "openai-compatible:llama3", 1, None),
        ("2026-03-10", "openai:gpt-4o-mini", 3, "0.501"),
        ("2026-03-11", "openai:gpt-4.1", 1, "0.002"),
    ]
    assert daily[1]["cost_unknown_turns"] == 1
    assert (daily[1]["input_tokens"], daily[1]["output_tokens"]) == (120, 240)


def test_totals_count_every_finished_answer_in_the_range(history):
    totals = usage_overview(START, END)["totals"]
    assert totals == {
        "turns": 5,
        "input_tokens": 140,
        "output_tokens": 280,
        "cached_input_tokens": 0,
        "cost": "0.503",
        "cost_unknown_turns": 2,
    }


def test_a_users_row_has_the_numbers_of_their_usage_report(user, history):
    row = next(r for r in usage_overview(START, END)["top_users"] if r["user_id"] == user.pk)
    totals = usage_report(user.pk, START, END, "day")["totals"]
    assert {k: row[k] for k in totals} == totals
    assert row["username"] == "alice"


def test_top_users_by_cost_with_the_unknown_only_row_last(user, other_user, history):
    rows = usage_overview(START, END)["top_users"]
    assert [(r["username"], r["cost"]) for r in rows] == [
        ("bob", "0.5"),
        ("alice", "0.003"),
        ("anonymous and mount callers", None),
    ]


def test_top_users_are_limited(history):
    assert len(usage_overview(START, END, top=1)["top_users"]) == 1


def test_top_keys_name_the_key_and_its_owner_and_leave_out_browser_sessions(history):
    rows = usage_overview(START, END)["top_keys"]
    assert [(r["key_id"], r["key_name"], r["owner"], r["turns"], r["cost"]) for r in rows] == [
        (history.pk, "laptop", "alice", 1, "0.001")
    ]


def test_budgets_are_labelled_and_the_defaults_left_out(user, history):
    Budget.objects.create(scope="user", subject=str(user.pk), amount=Decimal("1"), period="day")
    Budget.objects.create(
        scope="key",
        subject=str(history.pk),
        amount=Decimal("2"),
        spent=Decimal("0.5"),
        reserved=Decimal("0.25"),
        period="none",
    )
    Budget.objects.create(scope="user", subject="*", amount=Decimal("3"), period="month")
    Budget.objects.create(scope="mount", subject="seed1", amount=Decimal("4"), period="week")
    rows = usage_overview(START, END)["budgets"]
    assert [(r["scope"], r["label"]) for r in rows] == [
        ("key", "key laptop"),
        ("mount", "mount seed1"),
        ("user", "user alice"),
    ]
    key = rows[0]
    assert (key["spent"], key["reserved"], key["remaining"], key["resets_at"]) == (
        "0.5",
        "0.25",
        "1.25",
        None,
    )


def test_days_cover_the_range_with_the_end_excluded():
    days = days_between(START, END)
    assert (days[0], days[-1], len(days)) == ("2026-03-01", "2026-03-31", 31)


def test_the_overview_takes_a_constant_number_of_queries(history, django_assert_max_num_queries):
    with django_assert_max_num_queries(7):
        usage_overview(START, END)


# --- the page --------------------------------------------------------------------------------------
def test_the_usage_page_sends_anonymous_visitors_to_the_login(client):
    response = client.get("/admin/usage/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/usage/"


def test_the_usage_page_refuses_non_staff_users(user):
    client = Client()
    client.force_login(user)
    response = client.get("/admin/usage/")
    assert response.status_code == 302  # the admin's way: to its login, which says who may enter
    assert response["Location"].startswith("/admin/login/")


def test_the_usage_page_embeds_the_numbers_and_shows_unknown_costs(staff_client, history):
    response = staff_client.get("/admin/usage/", {"start": "2026-03-01", "end": "2026-03-31"})
    assert response.status_code == 200
    html = response.content.decode()
    data = json.loads(html.split('id="usage-data" type="application/json">')[1].split("</script>")[0])
    assert data == json.loads(json.dumps(usage_overview(START, END)))
    assert data["from"] == "2026-03-01T00:00:00+00:00" and data["to"] == "2026-04-01T00:00:00+00:00"
    assert "unknown" in html and "$0.503" in html
    for canvas in (
        "chart-cost-daily",
        "chart-tokens-daily",
        "chart-top-users",
        "chart-top-keys",
        "chart-budgets",
    ):
        assert f'id="{canvas}"' in html


def test_the_usage_page_defaults_to_the_last_30_days(staff_client):
    response = staff_client.get("/admin/usage/")
    today = timezone.now().astimezone(dt.UTC).date()
    assert response.context["overview"]["days"][0] == (today - dt.timedelta(days=29)).isoformat()
    assert response.context["overview"]["days"][-1] == today.isoformat()


def test_a_range_ending_before_it_starts_is_refused_with_the_default_shown(staff_client):
    response = staff_client.get("/admin/usage/", {"start": "2026-03-10", "end": "2026-03-01"})
    assert "must not be before" in response.content.decode()
    assert len(response.context["overview"]["days"]) == 30


def test_the_admin_index_links_to_the_usage_page(staff_client):
    assert 'href="/admin/usage/"' in staff_client.get("/admin/").content.decode()
