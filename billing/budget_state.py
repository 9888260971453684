"""A budget as it stands now — spent this period, reserved, remaining, when it resets — as the usage
API, the admin and the usage pages show it.

It reads budgets and API keys only: the usage reports above the conversation core
(:mod:`conversations.usage`) take it from here, so billing never reads the conversations.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey
from billing.budgets import period_end, period_start, spent_now
from billing.models import Budget


def money(value: Decimal | int | None) -> str | None:
    """A cost as the usage API writes it (``None`` stays unknown, never zero)."""
    if value is None:
        return None
    return format(Decimal(value).quantize(Decimal("0.00000001")).normalize(), "f")


def budget_state(budget: Budget, now: datetime.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    spent = spent_now(Decimal(budget.spent), budget.period, budget.period_start, now)
    resets_at = period_end(budget.period, period_start(budget.period, now))
    return {
        "id": budget.pk,
        "scope": budget.scope,
        "subject": budget.subject,
        "amount": money(budget.amount),
        "period": budget.period,
        "spent": money(spent),
        "reserved": money(budget.reserved),
        "remaining": money(max(Decimal(0), Decimal(budget.amount) - spent - Decimal(budget.reserved))),
        "resets_at": resets_at.isoformat() if resets_at else None,
    }


def budgets_of(owner_id: int) -> list[dict[str, Any]]:
    """The user's budget and their API keys' budgets, as they stand now."""
    keys = [str(pk) for pk in ApiKey.objects.filter(owner_id=owner_id).values_list("pk", flat=True)]
    rows = Budget.objects.filter(Q(scope="user", subject=str(owner_id)) | Q(scope="key", subject__in=keys))
    now = timezone.now()
    return [budget_state(b, now) for b in rows.order_by("scope", "subject")]
