"""Staff-wide usage over a range: every user's answers per day and model, the top users and API
keys by cost, and every budget's consumption (the admin usage page's numbers).

The fields of each row are those of :func:`conversations.usage.user_report.usage_report` (turns,
input/output/cached input tokens, ``cost`` as a string, ``cost_unknown_turns``): a row whose answers
all had an unknown price has ``cost: None``, never zero. Each list is one grouped query.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import ApiKey
from billing.budget_state import budget_state, money
from billing.models import Budget
from conversations.models import Message

TOP = 10
ANONYMOUS = "anonymous and mount callers"


def _sums() -> dict[str, Any]:
    return {
        "turns": Count("id"),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cached_input_tokens": Coalesce(Sum("cached_input_tokens"), 0),
        "total_cost": Sum("cost"),
        "cost_unknown_turns": Count("id", filter=Q(cost__isnull=True)),
    }


def _row(values: dict[str, Any]) -> dict[str, Any]:
    values["cost"] = money(values.pop("total_cost"))
    return values


def answers_between(start: datetime.datetime, end: datetime.datetime) -> QuerySet[Message]:
    """Every finished answer (any owner) created in ``[start, end)``."""
    return Message.objects.filter(
        role=Message.Role.ASSISTANT, created_at__gte=start, created_at__lt=end
    ).exclude(status=Message.Status.STREAMING)


def days_between(start: datetime.datetime, end: datetime.datetime) -> list[str]:
    """The UTC dates ``[start, end)`` touches, as ISO strings (the charts' x axis)."""
    first = start.astimezone(datetime.UTC).date()
    last = (end - datetime.timedelta(microseconds=1)).astimezone(datetime.UTC).date()
    return [(first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def daily_by_model(answers: QuerySet[Message]) -> list[dict[str, Any]]:
    """One row per UTC day and ``provider:model``, oldest first."""
    rows = (
        answers.annotate(day=TruncDate("created_at", tzinfo=datetime.UTC))
        .values("day", "provider", "model")
        .annotate(**_sums())
        .order_by()
    )
    out = [
        _row({**row, "day": row["day"].isoformat(), "label": _model_label(row["provider"], row["model"])})
        for row in rows
    ]
    return sorted(out, key=lambda row: (row["day"], row["label"]))  # the same order on every database


def _model_label(provider: str, model: str) -> str:
    return f"{provider}:{model}" if provider or model else "(unknown model)"


def _by_cost(rows: QuerySet) -> QuerySet:
    return rows.order_by(F("total_cost").desc(nulls_last=True), F("turns").desc())


def top_users(answers: QuerySet[Message], limit: int = TOP) -> list[dict[str, Any]]:
    """The users who spent most (answers with no owner, anonymous or a seed mount's, as one row)."""
    rows = _by_cost(
        answers.values(user_id=F("conversation__owner_id"))
        .annotate(username=F("conversation__owner__username"))
        .annotate(**_sums())
    )[:limit]
    return [_row({**row, "username": row["username"] or ANONYMOUS}) for row in rows]


def top_keys(answers: QuerySet[Message], limit: int = TOP) -> list[dict[str, Any]]:
    """The API keys that spent most (browser sessions, which use no key, are left out)."""
    rows = _by_cost(
        answers.filter(api_key__isnull=False)
        .values(key_id=F("api_key_id"))
        .annotate(key_name=F("api_key__name"), owner=F("api_key__owner__username"))
        .annotate(**_sums())
    )[:limit]
    return [_row(dict(row)) for row in rows]


def budget_consumption(now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """Every budget in force (not the ``"*"`` defaults) as it stands now, with a readable label."""
    now = now or timezone.now()
    budgets = list(Budget.objects.exclude(subject="*").order_by("scope", "subject"))
    ids = {b.scope: [] for b in budgets}
    for budget in budgets:
        if budget.subject.isdigit():
            ids[budget.scope].append(int(budget.subject))
    users = dict(get_user_model().objects.filter(pk__in=ids.get("user", [])).values_list("pk", "username"))
    keys = dict(ApiKey.objects.filter(pk__in=ids.get("key", [])).values_list("pk", "name"))
    rows = []
    for budget in budgets:
        state = budget_state(budget, now)
        state["label"] = _budget_label(budget, users, keys)
        rows.append(state)
    return rows


def _budget_label(budget: Budget, users: dict[int, str], keys: dict[int, str]) -> str:
    subject = int(budget.subject) if budget.subject.isdigit() else None
    if budget.scope == Budget.Scope.USER:
        return f"user {users.get(subject, budget.subject)}"
    if budget.scope == Budget.Scope.KEY:
        return f"key {keys.get(subject, budget.subject)}"
    if budget.scope == Budget.Scope.MOUNT:
        return f"mount {budget.subject}"
    return "anonymous callers"


def usage_overview(start: datetime.datetime, end: datetime.datetime, top: int = TOP) -> dict[str, Any]:
    """Everything the admin usage page shows for ``[start, end)``."""
    answers = answers_between(start, end)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": days_between(start, end),
        "totals": _row(answers.aggregate(**_sums())),
        "daily": daily_by_model(answers),
        "top_users": top_users(answers, top),
        "top_keys": top_keys(answers, top),
        "budgets": budget_consumption(),
    }
