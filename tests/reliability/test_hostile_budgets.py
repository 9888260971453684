"""Scenario 7 (part): the ways around a budget issue 27 found, tried against a live server as an
attacker would — an unpriced model, a model name nothing serves, a native turn on a mount's key."""

import json
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from billing.models import Budget
from conversations.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

DATED = "gpt-4o-2024-08-06"


@pytest.fixture
def server(reliability_env):
    from tests.live_server import LiveServer

    env = {
        **reliability_env,
        "ALLOW_ANONYMOUS": "true",
        "RATE_LIMIT_TURNS": "",
        "OPENAI_MODELS": f"gpt-test,{DATED}",  # served by name; only gpt-test has a price
        "PRICES": json.dumps({"openai:gpt-test": {"input": 0, "output": 10}}),
    }
    live = LiveServer(env, server="uvicorn").start()
    yield live
    live.stop()


def test_an_unpriced_model_and_an_unserved_name_do_not_get_past_a_tiny_budget(server, ledger):
    budget = Budget.objects.create(
        scope="anonymous",
        subject="",
        amount=Decimal("0.00001"),
        spent=Decimal("0.000009"),  # $0.000001 of room left
        period="day",
        period_start=timezone.now(),
    )
    attempts = [("/api/sessions/bypass/messages", {"content": "hi", "model": DATED}, "price_unknown")] * 8
    attempts += [
        ("/api/sessions/bypass/messages", {"content": "hi", "model": "gpt-9"}, "model_not_found"),
        (
            "/api/sessions/bypass/messages",
            {"content": "hi", "provider": "demo", "model": "x"},
            "model_not_found",
        ),
        (
            "/v1/chat/completions",
            {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]},
            "model_not_found",
        ),
        ("/v1/responses", {"model": "gpt-9", "input": "hi"}, "model_not_found"),
    ]
    for path, body, code in attempts:
        response = httpx.post(server.url + path, json=body, timeout=10)
        ledger.add("hostile_inputs")
        ledger.add("server_5xx", response.status_code >= 500)
        assert response.status_code == 422, (path, body, response.text[:200])
        assert response.json()["error"]["code"] == code, (path, body)
    budget.refresh_from_db()
    assert (budget.spent, budget.reserved) == (Decimal("0.000009"), 0)
    assert not Message.objects.exists()


def test_a_native_turn_on_a_mount_key_leaves_the_mounts_budget_alone(server, ledger):
    from django.contrib.auth import get_user_model

    from accounts.keys import api_key_create

    owner = get_user_model().objects.create_user("budget-owner", password="pw-budget-123")
    key = api_key_create(owner=owner, name="personal")[1]
    mount = Budget.objects.create(scope="mount", subject="layercode", amount=Decimal("5"), period="day")
    response = httpx.post(
        f"{server.url}/api/sessions/layercode:x/messages",
        json={"content": "drain it [[chunks=5]]"},
        headers={"X-API-Key": key},
        timeout=20,
    )
    ledger.add("hostile_inputs")
    assert response.status_code == 200, response.text[:200]
    mount.refresh_from_db()
    assert (mount.spent, mount.reserved) == (0, 0)
