"""The budget side of a turn's two writes on the ORM path, from the rule :mod:`billing.budgets`
states (the PostgreSQL path renders its SQL from the same: :mod:`conversations.turns.pg_writes`).
Run inside those writes' transactions."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q

from billing.budgets import HAS_ROOM, RESERVE, SETTLE, Claim, period_starts
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
    """Whether every budget has room (:data:`billing.budgets.HAS_ROOM`)."""
    starts = period_starts(now)
    return all(HAS_ROOM.value(budget, starts) is True for budget in budgets)


def reserve(budgets: list[Budget], amount: Decimal, answer_id, now: datetime.datetime) -> None:
    """Each budget holds the reservation (:data:`billing.budgets.RESERVE`)."""
    params = {**period_starts(now), "reservation": amount, "answer_id": answer_id}
    for budget in budgets:
        for name, value in [(name, rule.value(budget, params)) for name, rule in RESERVE.items()]:
            setattr(budget, name, value)
        budget.save(update_fields=[*RESERVE, "updated_at"])


def settle(budget_ids: list[int], reserved: Decimal, cost: Decimal | None) -> None:
    """The closing write's part: the reservation released, the actual cost spent (:data:`billing.budgets.SETTLE`)."""
    if budget_ids:
        params = {"reserved_cost": reserved, "cost": cost}
        Budget.objects.filter(pk__in=budget_ids).update(
            **{name: rule.orm(params) for name, rule in SETTLE.items()}
        )
