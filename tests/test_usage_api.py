"""GET /api/usage (the caller's; staff: anyone's), /api/budgets (staff), and totals per key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from accounts.keys import api_key_create
from billing.models import Budget
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db


def answer(conversation, *, cost, provider="openai", model="gpt-4o-mini", key=None, when=None, **fields):
    return make_message(
        conversation,
        role="assistant",
        status="complete",
        provider=provider,
        model=model,
        input_tokens=fields.pop("input_tokens", 10),
        output_tokens=fields.pop("output_tokens", 20),
        cached_input_tokens=fields.pop("cached_input_tokens", None),
        cost=cost,
        api_key_id=key.pk if key else None,
        created_at=when or timezone.now(),
        **fields,
    )


@pytest.fixture
def history(user):
    key, _ = api_key_create(owner=user, name="laptop")
    mine = make_conversation(owner=user, session_key="u1")
    now = timezone.now()
    answer(mine, cost=Decimal("0.001"), key=key, cached_input_tokens=4)
    answer(mine, cost=Decimal("0.002"), model="gpt-4.1", when=now - dt.timedelta(days=1))
    answer(mine, cost=None, provider="openai-compatible", model="llama3")  # price unknown
    other = make_conversation(
        owner=get_user_model().objects.create_user("else", password="x"), session_key="o1"
    )
    answer(other, cost=Decimal("9"))
    return key


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_usage_totals_and_unknown_costs_are_not_zero(user, history):
    body = client_for(user).get("/api/usage", {"from": "2000-01-01", "group_by": "model"}).json()
    assert body["totals"] == {
        "turns": 3,
        "input_tokens": 30,
        "output_tokens": 60,
        "cached_input_tokens": 4,
        "cost": "0.003",
        "cost_unknown_turns": 1,
    }
    groups = {g["key"]: g for g in body["groups"]}
    assert groups["llama3"]["cost"] is None and groups["llama3"]["cost_unknown_turns"] == 1
    assert groups["gpt-4.1"]["cost"] == "0.002" and groups["gpt-4o-mini"]["cost"] == "0.001"


def test_usage_by_day_provider_and_key(user, history):
    client = client_for(user)
    days = client.get("/api/usage", {"from": "2000-01-01", "group_by": "day"}).json()["groups"]
    assert [g["turns"] for g in days] == [1, 2]
    assert days[1]["key"] == timezone.now().astimezone(dt.UTC).date().isoformat()
    providers = client.get("/api/usage", {"from": "2000-01-01", "group_by": "provider"}).json()["groups"]
    assert {g["key"]: g["turns"] for g in providers} == {"openai": 2, "openai-compatible": 1}
    keys = client.get("/api/usage", {"from": "2000-01-01", "group_by": "key"}).json()["groups"]
    by_key = {g["key"]: g for g in keys}
    assert by_key[history.pk]["key_name"] == "laptop" and by_key[history.pk]["cost"] == "0.001"
    assert by_key[None]["turns"] == 2


def test_the_range_filters(user, history):
    today = timezone.now().astimezone(dt.UTC).date()
    body = client_for(user).get("/api/usage", {"from": today.isoformat()}).json()
    assert body["totals"]["turns"] == 2


def test_budgets_show_remaining_and_when_they_reset(user, history):
    Budget.objects.create(
        scope="user",
        subject=str(user.pk),
        amount=Decimal("10"),
        period="month",
        spent=Decimal("2.5"),
        reserved=Decimal("0.5"),
        period_start=timezone.now(),
    )
    Budget.objects.create(scope="key", subject=str(history.pk), amount=Decimal("1"), period="none")
    budgets = client_for(user).get("/api/usage").json()["budgets"]
    mine = next(b for b in budgets if b["scope"] == "user")
    assert mine["remaining"] == "7" and mine["spent"] == "2.5" and mine["reserved"] == "0.5"
    assert mine["resets_at"].startswith(
        (timezone.now().replace(day=28) + dt.timedelta(days=4)).replace(day=1).date().isoformat()
    )
    key_budget = next(b for b in budgets if b["scope"] == "key")
    assert key_budget["resets_at"] is None


def test_bad_parameters_are_400_naming_the_field(user):
    client = client_for(user)
    for params, field in (
        ({"group_by": "week"}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"user": "1"}, "user"),
    ):
        response = client.get("/api/usage", params)
        assert response.status_code == 400, params
        assert field in response.json()["error"]["message"]


def test_without_an_account_usage_is_refused(client):
    response = client.get("/api/usage")
    assert response.status_code == 403 and response.json()["error"]["code"] == "owner_required"


def test_staff_read_anyones_usage_and_manage_budgets(user, history, staff_client):
    body = staff_client.get("/api/usage", {"user": user.pk, "from": "2000-01-01"}).json()
    assert body["totals"]["turns"] == 3
    created = staff_client.post(
        "/api/budgets",
        {"scope": "user", "subject": str(user.pk), "amount": "12.5", "period": "week"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    budget_id = created.json()["id"]
    assert created.json()["remaining"] == "12.5" and created.json()["resets_at"]
    changed = staff_client.patch(
        f"/api/budgets/{budget_id}", {"amount": "20"}, content_type="application/json"
    )
    assert changed.json()["amount"] == "20"
    bad = staff_client.post(
        "/api/budgets",
        {"scope": "user", "subject": "x", "amount": "-1", "period": "fortnight"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert staff_client.delete(f"/api/budgets/{budget_id}").status_code == 204


def test_budgets_are_staff_only(user):
    assert client_for(user).get("/api/budgets").status_code == 403


def test_a_session_shows_its_cost_and_its_answers_without_a_price(user, history):
    client = client_for(user)
    session = client.get("/api/sessions/u1").json()
    assert session["cost"] == "0.00300000" and session["cost_unknown_answers"] == 1
    listed = client.get("/api/sessions").json()["results"][0]
    assert listed["cost"] == "0.00300000"
    messages = client.get("/api/sessions/u1/messages").json()["results"]
    assert {m["cost"] for m in messages} == {"0.00100000", "0.00200000", None}
    assert any(m["cached_input_tokens"] == 4 for m in messages)


def test_the_admin_shows_each_keys_cost_and_the_billing_pages(user, history, staff_client):
    keys = staff_client.get("/admin/accounts/apikey/")
    assert keys.status_code == 200 and b"0.001" in keys.content
    Budget.objects.create(scope="user", subject=str(user.pk), amount=Decimal("3"), period="month")
    budgets = staff_client.get("/admin/billing/budget/")
    assert budgets.status_code == 200 and b"resets at" in budgets.content.lower()
    assert staff_client.get("/admin/billing/modelprice/add/").status_code == 200
