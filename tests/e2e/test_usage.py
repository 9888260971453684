"""Usage, cost and budgets seen in the browser: the admin usage page (the numbers /api/usage gives,
real charts) and the chat page's usage line, budget left and refusal for budget.

``UPDATE_SCREENSHOT=1`` saves the admin usage page as ``docs/usage-admin.png``.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.keys import api_key_create
from billing.models import Budget
from conversations.models import Message
from tests.e2e.conftest import open_chat
from tests.e2e.pages import expect, send, wait_for_status
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "usage-admin.png"
CHARTS = ("chart-cost-daily", "chart-tokens-daily", "chart-top-users", "chart-top-keys", "chart-budgets")
MODELS = [("openai", "gpt-4o-mini"), ("gemini", "gemini-2.5-flash"), ("anthropic", "claude-sonnet")]


@pytest.fixture
def priced(settings):
    """The demo provider, quick, with a known price (so costs are not unknown)."""
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    settings.PRICES = {"demo:demo": {"input": 1, "output": 2}}
    return settings


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-admin-123")


@pytest.fixture
def usage_history(user, other_user):
    """Two weeks of answers of two users over three models (one without a price), a key, budgets."""
    key, _ = api_key_create(owner=user, name="ci-bot")
    now = timezone.now()
    chats = {user: make_conversation(owner=user), other_user: make_conversation(owner=other_user)}
    for day in range(14):
        for n, (provider, model) in enumerate(MODELS):
            for owner, conversation in chats.items():
                if (day + n) % 3 == 0 and owner == other_user:
                    continue
                tokens = 400 + 97 * ((day * 7 + n * 5) % 11)
                unpriced = provider == "anthropic"
                make_message(
                    conversation,
                    role="assistant",
                    status="complete",
                    provider=provider,
                    model=model,
                    input_tokens=tokens,
                    output_tokens=tokens // 2,
                    cost=None if unpriced else Decimal(tokens) * Decimal("0.0000025") * (n + 1),
                    api_key_id=key.pk if owner == user and n == 0 else None,
                    created_at=now - dt.timedelta(days=day, hours=1),
                )
    Budget.objects.create(
        scope="user",
        subject=str(user.pk),
        amount=Decimal("0.5"),
        spent=Decimal("0.31"),
        period="month",
        period_start=now,
    )
    Budget.objects.create(
        scope="user",
        subject=str(other_user.pk),
        amount=Decimal("0.2"),
        spent=Decimal("0.05"),
        reserved=Decimal("0.02"),
        period="day",
        period_start=now,
    )
    Budget.objects.create(scope="key", subject=str(key.pk), amount=Decimal("1"), period="none")
    return key


def sign_in(page, user, server_url: str) -> None:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": server_url}])


def open_usage_page(page, staff, server_url: str) -> dict:
    sign_in(page, staff, server_url)
    page.goto("/admin/usage/")
    page.wait_for_selector("body[data-charts-ready=true]")
    return page.evaluate("JSON.parse(document.getElementById('usage-data').textContent)")


def usage_url(page_data: dict, **params) -> str:
    """``/api/usage`` for the range the page shows."""
    return "/api/usage?" + urlencode({"from": page_data["from"], "to": page_data["to"], **params})


def row_numbers(row) -> dict[str, str]:
    return {
        field: row.locator(f"[data-field={field}]").inner_text().strip()
        for field in ("turns", "input_tokens", "output_tokens", "cost")
    }


def test_the_admin_usage_page_shows_the_numbers_the_usage_api_gives(
    page, asgi_server, staff, user, other_user, usage_history
):
    data = open_usage_page(page, staff, asgi_server.url)
    for person in (user, other_user):
        api = page.request.get(usage_url(data, user=person.pk)).json()
        totals = api["totals"]
        assert totals["cost"] is not None and totals["cost_unknown_turns"] > 0
        shown = row_numbers(page.locator(f"#table-top-users tr[data-user-id='{person.pk}']"))
        unknown = totals["cost_unknown_turns"]
        assert shown == {
            "turns": str(totals["turns"]),
            "input_tokens": str(totals["input_tokens"]),
            "output_tokens": str(totals["output_tokens"]),
            "cost": f"${totals['cost']} (+ {unknown} turn{'s' if unknown != 1 else ''} unknown)",
        }
    key = page.request.get(usage_url(data, user=user.pk, group_by="key"))
    [key_group] = [g for g in key.json()["groups"] if g["key"] == usage_history.pk]
    shown = row_numbers(page.locator(f"#table-top-keys tr[data-key-id='{usage_history.pk}']"))
    assert (shown["turns"], shown["cost"]) == (str(key_group["turns"]), f"${key_group['cost']}")
    budget = page.locator("#table-budgets tr").filter(has_text="user bob")
    assert budget.locator("[data-field=remaining]").inner_text() == "$0.13"
    if os.environ.get("UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_the_admin_usage_charts_are_drawn_from_the_numbers(page, asgi_server, staff, usage_history):
    open_usage_page(page, staff, asgi_server.url)
    for chart in CHARTS:
        drawn = page.evaluate(
            """(id) => {
                const canvas = document.getElementById(id);
                const chart = Chart.getChart(canvas);
                const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
                const values = chart.data.datasets.flatMap((d) => d.data).filter((v) => v != null && v > 0);
                return { width: canvas.width, height: canvas.height, painted, values: values.length };
            }""",
            chart,
        )
        assert drawn["width"] > 100 and drawn["height"] > 100, chart
        assert drawn["painted"] > 1000 and drawn["values"] > 0, (chart, drawn)
    daily = page.evaluate("Chart.getChart(document.getElementById('chart-cost-daily')).data")
    assert {d["label"] for d in daily["datasets"]} == {f"{p}:{m}" for p, m in MODELS}
    unpriced = next(d for d in daily["datasets"] if d["label"].startswith("anthropic"))
    assert all(v is None for v in unpriced["data"])  # unknown: no bar, not a zero one


def test_the_chat_page_shows_usage_and_budget_left_after_a_turn(priced, page, asgi_server, user):
    Budget.objects.create(scope="user", subject=str(user.pk), amount=Decimal("1"), period="day")
    open_chat(page, user, asgi_server.url)
    expect(page.locator("#usage")).to_have_attribute("data-turns", "0")
    expect(page.locator("#usage-budget-text")).to_contain_text("$1.00 left of your $1.00 per day budget")
    send(page, "What does this cost?")
    wait_for_status(page, "complete")
    expect(page.locator("#usage")).to_have_attribute("data-turns", "1")
    api = page.request.get("/api/usage").json()
    assert api["totals"]["cost"] is not None and Decimal(api["totals"]["cost"]) > 0
    usage = page.locator("#usage")
    assert usage.get_attribute("data-cost") == api["totals"]["cost"]
    assert usage.get_attribute("data-output-tokens") == str(api["totals"]["output_tokens"])
    [budget] = api["budgets"]
    assert usage.get_attribute("data-remaining") == budget["remaining"]
    assert Decimal(budget["remaining"]) == Decimal(1) - Decimal(api["totals"]["cost"])
    expect(page.locator("#usage-cost")).to_have_text(f"${Decimal(api['totals']['cost']):.8f}".rstrip("0"))
    expect(page.locator("#usage-budget-text")).to_contain_text("left of your $1.00 per day budget · resets")


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_the_chat_page_says_when_a_turn_is_refused_for_budget(priced, page, asgi_server, user, transport):
    Budget.objects.create(
        scope="user",
        subject=str(user.pk),
        amount=Decimal("0.00001"),
        spent=Decimal("1"),
        period="day",
        period_start=timezone.now(),
    )
    open_chat(page, user, asgi_server.url, path="/?transport=sse" if transport == "sse" else "/")
    send(page, "One more, please")
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    text = banner.inner_text()
    assert text.startswith("Not sent: Over budget: your budget of 0.00001 per day is used up. It resets ")
    assert "(in " in text and "T00:00:00" not in text  # said in the reader's time, not as ISO
    expect(page.locator("#usage-budget")).to_have_class("usage-budget over")
    expect(page.locator("#usage-budget-text")).to_contain_text("budget is used up · resets")
    assert page.locator("#composer-input").input_value() == "One more, please"  # given back to send later
    assert not Message.objects.filter(role="assistant").exists()
