"""Issue 30: each model call of a tool loop is a turn of its own, with its own reservation, usage and
cost, charged to the caller's budget; a budget with no room refuses the results' turn like any other
(nothing stored, the provider not called)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from billing.models import Budget
from conversations.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = [{"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(url, json=body, headers={"Accept": "application/json"}, timeout=20)


def test_each_call_of_a_tool_loop_is_reserved_and_charged(asgi_server, openai_upstream, settings):
    settings.PRICES = {"openai:gpt-test": {"input": 1000, "output": 1000}}  # per million tokens
    budget = Budget.objects.create(
        scope="anonymous",
        subject="",
        amount=Decimal(5),
        spent=Decimal(0),
        period="day",
        period_start=timezone.now(),
    )
    url = f"{asgi_server.url}/api/sessions/tool-budget/messages"
    first = post(url, {"content": "Rome? [[tools=weather]]", "tools": TOOLS})
    assert first.status_code == 200, first.text
    call = first.json()["tool_calls"][0]
    budget.refresh_from_db()
    after_call = budget.spent
    assert after_call > 0 and budget.reserved == 0
    second = post(
        url,
        {
            "role": "tool",
            "tools": TOOLS,
            "parts": [{"type": "tool_result", "call_id": call["id"], "output": "21 C"}],
        },
    )
    assert second.status_code == 200, second.text
    budget.refresh_from_db()
    answers = list(Message.objects.filter(role="assistant").order_by("created_at"))
    assert [a.finish_reason for a in answers] == ["tool_calls", "stop"]
    assert all(a.cost and a.cost > 0 and a.budget_ids == [budget.pk] for a in answers)
    assert budget.spent == sum(a.cost for a in answers) and budget.spent > after_call
    assert budget.reserved == 0


def test_results_a_budget_has_no_room_for_are_refused_and_not_stored(asgi_server, openai_upstream, settings):
    settings.PRICES = {"openai:gpt-test": {"input": 1000, "output": 1000}}
    url = f"{asgi_server.url}/api/sessions/tool-broke/messages"
    first = post(url, {"content": "Rome? [[tools=weather]]", "tools": TOOLS})
    call = first.json()["tool_calls"][0]
    Budget.objects.update_or_create(  # the first turn may have made the row from a default
        scope="anonymous",
        subject="",
        defaults={
            "amount": Decimal("0.000001"),
            "spent": Decimal(1),
            "period": "day",
            "period_start": timezone.now(),
        },
    )
    calls_before = len(openai_upstream.requests)
    refused = post(
        url,
        {
            "role": "tool",
            "tools": TOOLS,
            "parts": [{"type": "tool_result", "call_id": call["id"], "output": "x"}],
        },
    )
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
    assert not Message.objects.filter(role="tool").exists()
    assert len(openai_upstream.requests) == calls_before  # the provider is never called
