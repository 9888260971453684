"""One user's usage (``GET /api/usage``): turns, tokens and cost of their answers, grouped, and
their budgets' state (:func:`billing.budget_state.budgets_of`).

Cost sums the answers whose price was known; ``cost_unknown_turns`` counts the others, and a
group with no known price has ``cost: null`` (unknown is never shown as zero).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate

from accounts.models import ApiKey
from billing.budget_state import budgets_of, money
from conversations.models import Message

GROUPS = ("day", "model", "provider", "key")


def _answers(owner_id: int, start: datetime.datetime, end: datetime.datetime):
    return Message.objects.filter(
        conversation__owner_id=owner_id,
        role=Message.Role.ASSISTANT,
        created_at__gte=start,
        created_at__lt=end,
    ).exclude(status=Message.Status.STREAMING)


def _sums() -> dict[str, Any]:
    """The figures of a report, for the whole range and for each group alike."""
    return {
        "turns": Count("id"),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cached_input_tokens": Coalesce(Sum("cached_input_tokens"), 0),
        "total_cost": Sum("cost"),
        "cost_unknown_turns": Count("id", filter=Q(cost__isnull=True)),
    }


def _totals(rows) -> dict[str, Any]:
    return rows.aggregate(**_sums())


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
    for row in answers.annotate(group=keyed).values("group").annotate(**_sums()).order_by("group"):
        group = row.pop("group")
        row["cost"] = money(row.pop("total_cost"))
        groups.append({"key": _group_key(group_by, group), **row})
    if group_by == "key":
        names = dict(
            ApiKey.objects.filter(pk__in=[g["key"] for g in groups if g["key"]]).values_list("pk", "name")
        )
        for group in groups:
            group["key_name"] = names.get(group["key"]) if group["key"] else None
    totals = _totals(answers)
    totals["cost"] = money(totals.pop("total_cost"))
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
