"""The budget side of a turn's two writes on the ORM path (the PostgreSQL path does the same in its
SQL: :mod:`conversations.turns.pg_writes`). Run inside those writes' transactions."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest

from billing.budgets import Claim, period_start, spent_now
from billing.models import Budget


def _ensure(claim: Claim) -> None:
    if Budget.objects.filter(scope=claim.scope, subject=claim.subject).exists():
        return
    default = Budget.objects.filter(scope=claim.scope, subject="*").first()
    amount, period = (default.amount, default.period) if default else (None, None)
    if amount is None and claim.default is not None:
        amount, period = claim.default.amount, claim.default.period
    if amount is None:
        return
    try:
        with transaction.atomic():
            Budget.objects.create(scope=claim.scope, subject=claim.subject, amount=amount, period=period)
    except IntegrityError:  # created by a concurrent turn
        pass


def budgets_locked(claims: tuple[Claim, ...]) -> list[Budget]:
    """The budgets the claims name (those missing created from their defaults), locked in id order."""
    match = Q(pk__in=[])
    for claim in claims:
        match |= Q(scope=claim.scope, subject=claim.subject)
    locked = list(Budget.objects.select_for_update().filter(match).order_by("id"))
    found = {(b.scope, b.subject) for b in locked}
    missing = [claim for claim in claims if (claim.scope, claim.subject) not in found]
    if not missing:
        return locked
    for claim in missing:
        _ensure(claim)
    return list(Budget.objects.select_for_update().filter(match).order_by("id"))


def has_room(budgets: list[Budget], now: datetime.datetime) -> bool:
    return all(spent_now(b.spent, b.period, b.period_start, now) + b.reserved < b.amount for b in budgets)


def reserve(budgets: list[Budget], amount: Decimal, answer_id, now: datetime.datetime) -> None:
    for budget in budgets:
        current = period_start(budget.period, now)
        budget.spent = spent_now(budget.spent, budget.period, budget.period_start, now)
        budget.period_start = current or budget.period_start
        budget.reserved += amount
        budget.reserved_for = answer_id
        budget.save(update_fields=["spent", "period_start", "reserved", "reserved_for", "updated_at"])


def settle(budget_ids: list[int], reserved: Decimal, cost: Decimal | None) -> None:
    """The closing write's part: the reservation released, the actual cost spent."""
    if budget_ids:
        Budget.objects.filter(pk__in=budget_ids).update(
            reserved=Greatest(F("reserved") - reserved, Value(Decimal(0))), spent=F("spent") + (cost or 0)
        )
