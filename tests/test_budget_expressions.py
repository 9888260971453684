"""The budget rule is stated once (billing.budgets) and read three ways: in Python on a loaded row,
as a Django expression and as the native path's SQL text. The three agree, row by row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import BooleanField, DecimalField, ExpressionWrapper
from django.utils import timezone

from billing.budgets import HAS_ROOM, SETTLE, SPENT_NOW, period_starts, reservation
from billing.models import Budget

pytestmark = pytest.mark.django_db


@pytest.fixture
def budgets() -> list[Budget]:
    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [
        ("day", today - timedelta(days=1), "0.5", "0.1", "1"),  # rolled over: spent drops
        ("day", today, "0.5", "0.4", "1"),  # this period: 0.9 used, below 1
        ("day", today, "0.6", "0.4", "1"),  # used up: 1 is not below 1
        ("week", None, "3", "0", "2"),  # never reserved: a new period
        ("month", today, "1", "0", "2"),
        ("none", None, "9", "0", "10"),  # never resets
        ("none", None, "10", "0", "10"),
    ]
    return [
        Budget.objects.create(
            scope="key",
            subject=str(i),
            period=period,
            period_start=started,
            spent=Decimal(spent),
            reserved=Decimal(reserved),
            amount=Decimal(amount),
        )
        for i, (period, started, spent, reserved, amount) in enumerate(rows)
    ]


def test_python_and_django_expressions_agree_on_spent_now_and_room(budgets):
    params = period_starts(timezone.now())
    rows = Budget.objects.annotate(
        spent_now=ExpressionWrapper(SPENT_NOW.orm(params), output_field=DecimalField()),
        room=ExpressionWrapper(HAS_ROOM.orm(params), output_field=BooleanField()),
    ).order_by("id")
    read = [(Decimal(b.spent_now), b.room) for b in rows]
    assert read == [(SPENT_NOW.value(b, params), HAS_ROOM.value(b, params)) for b in budgets]
    assert [room for _, room in read] == [True, True, False, True, True, True, False]
    assert read[0][0] == 0 and read[3][0] == 0 and read[1][0] == Decimal("0.5")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL text is the native path's")
def test_the_native_sql_agrees_with_python(budgets):
    params = period_starts(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {SPENT_NOW.sql('b', {})}, {HAS_ROOM.sql('b', {})} FROM billing_budget b ORDER BY id",
            params,
        )
        read = cursor.fetchall()
    assert read == [(SPENT_NOW.value(b, params), HAS_ROOM.value(b, params)) for b in budgets]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL text is the native path's")
def test_the_reservation_rounds_as_postgresql_does():
    rate = (Decimal("0.0000000025"), Decimal("0.000000001"))  # 3 * 2.5e-9 + 1e-9 = 8.5e-9: a half
    with connection.cursor() as cursor:
        cursor.execute("SELECT round(%s::numeric * %s + %s::numeric * %s, 8)", [rate[0], 3, rate[1], 1])
        [(native,)] = cursor.fetchall()
    assert reservation(rate, 3, 1) == native == Decimal("0.00000001")


def test_settling_releases_the_reservation_and_spends_the_cost(budgets):
    Budget.objects.filter(pk=budgets[1].pk).update(
        **{
            name: rule.orm({"reserved_cost": Decimal("0.4"), "cost": Decimal("0.25")})
            for name, rule in SETTLE.items()
        }
    )
    Budget.objects.filter(pk=budgets[0].pk).update(
        **{name: rule.orm({"reserved_cost": Decimal("0.3"), "cost": None}) for name, rule in SETTLE.items()}
    )
    settled, released = Budget.objects.get(pk=budgets[1].pk), Budget.objects.get(pk=budgets[0].pk)
    assert (settled.spent, settled.reserved) == (Decimal("0.75"), 0)
    assert (released.spent, released.reserved) == (Decimal("0.5"), 0)  # never below zero, nothing spent
