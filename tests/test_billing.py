"""Cost per answer, budgets reserved and settled in the turn's two writes (both write paths), the
token rate, and what an over-budget turn looks like."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from accounts.keys import api_key_create
from billing.models import Budget, ModelPrice
from billing.prices import price_book
from conversations.models import Message
from tests.turn_client import post_turn as turn

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["native", "orm"] if connection.vendor == "postgresql" else ["orm"]
# gpt-test at 1 USD per million input tokens (0.5 cached), 10 per million output tokens
PRICES = {"openai:gpt-test": {"input": 1, "cached_input": 0.5, "output": 10}}
RESERVATION = Decimal("0.001")  # 100 output tokens at 10/M, input free in the budget tests


@pytest.fixture(params=PATHS)
def write_path(request, settings):
    settings.TURN_DB_ASYNC = request.param == "native"
    return request.param


@pytest.fixture
def priced(settings):
    settings.PRICES = PRICES
    return settings


@pytest.fixture
def key(user):
    return api_key_create(owner=user, name="billing")[1]


def answer(session: str) -> Message:
    return Message.objects.get(conversation__session_key=session, role="assistant")


def test_an_answer_stores_its_cost_at_the_models_price(asgi_server, openai_upstream, priced, write_path):
    reply = turn(asgi_server.url, f"cost-{write_path}", "price me [[chunks=4 cached=2]]")
    assert reply.status_code == 200 and reply.json()["status"] == "complete"
    stored = answer(f"cost-{write_path}")
    assert stored.cached_input_tokens == 2
    inp, out = stored.input_tokens, stored.output_tokens
    expected = (Decimal(inp - 2) * 1 + Decimal(2) * Decimal("0.5") + Decimal(out) * 10) / Decimal(1_000_000)
    assert stored.cost == expected.quantize(Decimal("0.00000001"))
    assert stored.usage_estimated is False


def test_an_unknown_price_is_stored_as_unknown_not_zero(
    asgi_server, openai_upstream, settings, key, write_path
):
    settings.PRICES = {}  # gpt-test has no price; no budget applies to this user's key
    reply = turn(asgi_server.url, f"unknown-{write_path}", "no price [[chunks=2]]", key=key)
    assert reply.status_code == 200, reply.text
    assert answer(f"unknown-{write_path}").cost is None


def test_a_turn_that_fails_before_any_token_costs_nothing(asgi_server, openai_upstream, priced, write_path):
    reply = turn(asgi_server.url, f"fail-{write_path}", "boom [[fault=500]]")
    assert reply.status_code == 502
    assert answer(f"fail-{write_path}").cost == 0


def test_an_admin_price_wins_over_the_setting(asgi_server, openai_upstream, priced):
    ModelPrice.objects.create(
        provider="openai",
        model="gpt-test",
        input_per_mtok=0,
        output_per_mtok=1000,
        effective_from=dt.date(2020, 1, 1),
    )
    ModelPrice.objects.create(  # not in effect yet
        provider="openai",
        model="gpt-test",
        input_per_mtok=0,
        output_per_mtok=5,
        effective_from=dt.date(2999, 1, 1),
    )
    price_book.load()
    try:
        turn(asgi_server.url, "admin-price", "priced [[chunks=3]]")
        assert answer("admin-price").cost == Decimal("0.003")  # 3 output tokens at 1000/M
    finally:
        ModelPrice.objects.all().delete()
        price_book.load()


def budget_prices(settings) -> None:
    settings.PRICES = {"openai:gpt-test": {"input": 0, "output": 10}}


def test_a_budget_reserves_caps_max_tokens_and_settles_to_the_actual_cost(
    asgi_server, openai_upstream, settings, user, key, write_path
):
    budget_prices(settings)
    budget = Budget.objects.create(scope="user", subject=str(user.pk), amount=Decimal("1"), period="day")
    reply = turn(asgi_server.url, f"settle-{write_path}", "go [[chunks=5]]", key=key, max_tokens=100)
    assert reply.status_code == 200, reply.text
    sent = openai_upstream.requests[-1].json
    assert (sent.get("max_completion_tokens") or sent.get("max_tokens")) == 100
    stored = answer(f"settle-{write_path}")
    assert stored.reserved_cost == RESERVATION and stored.budget_ids == [budget.pk]
    budget.refresh_from_db()
    assert budget.reserved == 0 and budget.spent == stored.cost == Decimal("0.00005")
    assert stored.api_key_id is not None
    # no max_tokens asked: the default reservation is the cap
    turn(asgi_server.url, f"settle-{write_path}", "again [[chunks=2]]", key=key)
    sent = openai_upstream.requests[-1].json
    assert (
        sent.get("max_completion_tokens") or sent.get("max_tokens")
    ) == settings.BUDGET_RESERVE_OUTPUT_TOKENS


def test_parallel_turns_overshoot_a_budget_by_at_most_one_reservation(
    asgi_server, openai_upstream, settings, user, key, write_path
):
    budget_prices(settings)
    budget = Budget.objects.create(scope="user", subject=str(user.pk), amount=3 * RESERVATION, period="day")
    results: list[httpx.Response] = []
    lock, start = threading.Lock(), threading.Barrier(20)

    def one(i: int) -> None:
        start.wait()  # all at once; each answer takes over a second, so none settles before all opened
        response = turn(
            asgi_server.url, f"par-{write_path}-{i}", "slow [[chunks=5 delay=0.3]]", key=key, max_tokens=100
        )
        with lock:
            results.append(response)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 429]
    assert len(ok) + len(refused) == 20, [r.status_code for r in results]
    assert 1 <= len(ok) <= 4 and refused
    for response in refused:
        error = response.json()["error"]
        assert error["code"] == "budget_exceeded" and error["resets_at"]
        assert int(response.headers["Retry-After"]) >= 1
    budget.refresh_from_db()
    assert budget.reserved == 0
    assert budget.spent <= budget.amount + RESERVATION
    assert budget.spent == sum(m.cost for m in Message.objects.filter(role="assistant", status="complete"))
    # refused turns stored nothing
    assert Message.objects.filter(role="assistant").count() == len(ok)


def test_every_budget_must_have_room_and_none_reserves_otherwise(
    asgi_server, openai_upstream, settings, user, key, write_path
):
    budget_prices(settings)
    roomy = Budget.objects.create(scope="user", subject=str(user.pk), amount=Decimal("5"), period="month")
    keyed = api_key_create(owner=user, name="spent")
    Budget.objects.create(
        scope="key",
        subject=str(keyed[0].pk),
        amount=Decimal("1"),
        spent=Decimal("1"),
        period="none",
        period_start=timezone.now(),
    )
    refused = turn(asgi_server.url, f"all-{write_path}", "hi", key=keyed[1])
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "budget_exceeded" and body["budget"] == "key" and body.get("resets_at") is None
    assert "Retry-After" not in refused.headers  # a budget with no period never resets
    roomy.refresh_from_db()
    assert roomy.reserved == 0
    assert turn(asgi_server.url, f"all-{write_path}", "hi [[chunks=1]]", key=key).status_code == 200


def test_a_new_period_starts_from_zero(asgi_server, openai_upstream, settings, user, key, write_path):
    budget_prices(settings)
    yesterday = timezone.now() - dt.timedelta(days=1)
    budget = Budget.objects.create(
        scope="user",
        subject=str(user.pk),
        amount=Decimal("0.002"),
        spent=Decimal("0.002"),
        period="day",
        period_start=yesterday.replace(hour=0, minute=0, second=0, microsecond=0),
    )
    assert turn(asgi_server.url, f"reset-{write_path}", "new day [[chunks=2]]", key=key).status_code == 200
    budget.refresh_from_db()
    assert budget.spent == Decimal("0.00002") and budget.period_start.date() == timezone.now().date()


def test_a_default_budget_applies_to_new_keys_and_anonymous_callers_are_bounded(
    asgi_server, openai_upstream, settings, user, key, write_path
):
    budget_prices(settings)
    Budget.objects.create(scope="key", subject="*", amount=Decimal("0.00004"), period="week")
    first = turn(asgi_server.url, f"dflt-{write_path}", "hi [[chunks=5]]", key=key, max_tokens=100)
    assert first.status_code == 200  # nothing spent yet: it may overshoot by its own cost (0.00005)
    assert turn(asgi_server.url, f"dflt-{write_path}", "again", key=key).status_code == 429
    created = Budget.objects.get(scope="key", subject__regex=r"^\d+$")
    assert created.amount == Decimal("0.00004") and created.period == "week"
    assert created.spent == Decimal("0.00005")
    settings.BUDGET_ANONYMOUS = "0.00001/day"
    assert turn(asgi_server.url, f"anon-{write_path}", "one [[chunks=2]]").status_code == 200
    second = turn(asgi_server.url, f"anon-{write_path}", "two")
    assert second.status_code == 429 and second.json()["error"]["budget"] == "anonymous"


def test_tokens_per_minute_limit_per_key(asgi_server, openai_upstream, settings, key):
    if not settings.REDIS_URL:
        pytest.skip("the token rate lives in Redis (REDIS_URL)")
    settings.RATE_LIMIT_TOKENS = "12/minute"
    first = turn(asgi_server.url, "tpm", "count these words please [[chunks=10]]", key=key)
    assert first.status_code == 200
    import time

    deadline = time.monotonic() + 5
    while True:  # the turn's tokens are charged in the background once it ends
        second = turn(asgi_server.url, "tpm", "more", key=key)
        if second.status_code == 429 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limited" and "tokens" in second.json()["error"]["message"]
    assert int(second.headers["Retry-After"]) >= 1


def test_the_token_rate_fails_open_and_budgets_hold_when_redis_is_down(
    asgi_server, openai_upstream, settings, user, key
):
    budget_prices(settings)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.RATE_LIMIT_TOKENS = "1/minute"
    Budget.objects.create(scope="user", subject=str(user.pk), amount=Decimal("0.00003"), period="day")
    assert turn(asgi_server.url, "redis-down", "passes [[chunks=2]]", key=key).status_code == 200
    # 1 token a minute would refuse this one: with Redis down the rate fails open
    assert turn(asgi_server.url, "redis-down", "passes the rate [[chunks=2]]", key=key).status_code == 200
    # the budget is in the database: it still holds (0.00004 spent of 0.00003)
    refused = turn(asgi_server.url, "redis-down", "but not the budget", key=key)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
