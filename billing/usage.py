"""Usage reports: turns, tokens and cost of a user's answers, grouped, and their budgets' state.

Cost sums the answers whose price was known; ``cost_unknown_turns`` counts the others, and a
group with no known price has ``cost: null`` (unknown is never shown as zero).
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import ApiKey
from billing.budgets import period_end, period_start, spent_now
from billing.models import Budget
from conversations.models import Message

GROUPS = ("day", "model", "provider", "key")


def _answers(owner_id: int, start: datetime.datetime, end: datetime.datetime):
    return Message.objects.filter(
        conversation__owner_id=owner_id,
        role=Message.Role.ASSISTANT,
        created_at__gte=start,
        created_at__lt=end,
    ).exclude(status=Message.Status.STREAMING)


def _totals(rows) -> dict[str, Any]:
    return rows.aggregate(
        turns=Count("id"),
        input_tokens=Coalesce(Sum("input_tokens"), 0),
        output_tokens=Coalesce(Sum("output_tokens"), 0),
        cached_input_tokens=Coalesce(Sum("cached_input_tokens"), 0),
        total_cost=Sum("cost"),
        cost_unknown_turns=Count("id", filter=Q(cost__isnull=True)),
    )


def _money(value: Decimal | int | None) -> str | None:
    return None if value is None else format(Decimal(value).quantize(Decimal("0.00000001")).normalize(), "f")


def usage_report(
    owner_id: int, start: datetime.datetime, end: datetime.datetime, group_by: str
) -> dict[str, Any]:
    answers = _answers(owner_id, start, end)
    field = {
        "day": TruncDate("created_at", tzinfo=datetime.UTC),
        "model": F("model"),
        "provider": F("provider"),
    }
    keyed = field.get(group_by, F("api_key_id"))
    groups = []
    for row in (
        answers.annotate(group=keyed)
        .values("group")
        .annotate(
            turns=Count("id"),
            input_tokens=Coalesce(Sum("input_tokens"), 0),
            output_tokens=Coalesce(Sum("output_tokens"), 0),
            cached_input_tokens=Coalesce(Sum("cached_input_tokens"), 0),
            total_cost=Sum("cost"),
            cost_unknown_turns=Count("id", filter=Q(cost__isnull=True)),
        )
        .order_by("group")
    ):
        group = row.pop("group")
        row["cost"] = _money(row.pop("total_cost"))
        groups.append({"key": _group_key(group_by, group), **row})
    if group_by == "key":
        names = dict(
            ApiKey.objects.filter(pk__in=[g["key"] for g in groups if g["key"]]).values_list("pk", "name")
        )
        for group in groups:
            group["key_name"] = names.get(group["key"]) if group["key"] else None
    totals = _totals(answers)
    totals["cost"] = _money(totals.pop("total_cost"))
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "group_by": group_by,
        "totals": totals,
        "groups": groups,
        "budgets": budgets_of(owner_id),
    }


def _group_key(group_by: str, value: Any) -> Any:
    if group_by == "day":
        return value.isoformat() if value is not None else None
    return value


def budget_state(budget: Budget, now: datetime.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    spent = spent_now(Decimal(budget.spent), budget.period, budget.period_start, now)
    resets_at = period_end(budget.period, period_start(budget.period, now))
    return {
        "id": budget.pk,
        "scope": budget.scope,
        "subject": budget.subject,
        "amount": _money(budget.amount),
        "period": budget.period,
        "spent": _money(spent),
        "reserved": _money(budget.reserved),
        "remaining": _money(max(Decimal(0), Decimal(budget.amount) - spent - Decimal(budget.reserved))),
        "resets_at": resets_at.isoformat() if resets_at else None,
    }


def budgets_of(owner_id: int) -> list[dict[str, Any]]:
    """The user's budget and their API keys' budgets, as they stand now."""
    keys = [str(pk) for pk in ApiKey.objects.filter(owner_id=owner_id).values_list("pk", flat=True)]
    rows = Budget.objects.filter(Q(scope="user", subject=str(owner_id)) | Q(scope="key", subject__in=keys))
    now = timezone.now()
    return [budget_state(b, now) for b in rows.order_by("scope", "subject")]
