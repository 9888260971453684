"""The rules a budget cannot be bypassed by, on both write paths: a turn a budget applies to is
charged at its model's price (a model without one is refused ``422 price_unknown`` unless a
fallback price is declared; the demo ships a declared 0, a self-hosted server counts at the price
its operator declares); a model name is either served (and listed by ``/v1/models``) or refused
``422 model_not_found`` in every protocol; and a seed mount's budget is drawn on only by turns
that came through that mount, never by a native turn whose session key starts with its name."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest
from django.db import connection
from django.utils import timezone

from accounts.keys import api_key_create
from billing.models import Budget
from conversations.models import Message
from tests.seeds.test_layercode import SECRET, Signed
from tests.turn_client import post_turn as turn

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["native", "orm"] if connection.vendor == "postgresql" else ["orm"]
DATED = "gpt-4o-2024-08-06"  # a dated snapshot: no shipped price
PRICED = {"openai:gpt-test": {"input": 0, "output": 10}}  # 100 output tokens: 0.001


@pytest.fixture(params=PATHS)
def write_path(request, settings):
    settings.TURN_DB_ASYNC = request.param == "native"
    return request.param


@pytest.fixture
def key(user):
    return api_key_create(owner=user, name="rules")[1]


def answer(session: str) -> Message:
    return Message.objects.get(conversation__session_key=session, role="assistant")


def anonymous_budget(amount: str, spent: str = "0") -> Budget:
    return Budget.objects.create(
        scope="anonymous",
        subject="",
        amount=Decimal(amount),
        spent=Decimal(spent),
        period="day",
        period_start=timezone.now(),
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


# --- prices ---------------------------------------------------------------------------------------
def test_eight_turns_of_an_unpriced_model_against_a_tiny_budget_are_refused(
    asgi_server, openai_upstream, settings, write_path
):
    settings.OPENAI_MODELS = ["gpt-test", DATED]  # served by name, and neither has a price
    settings.PRICES = {}
    budget = anonymous_budget("0.00001", spent="0.000009")  # $0.000001 of room left
    for i in range(8):
        for model in (DATED, None):  # named, and the server's default (gpt-test)
            response = turn(asgi_server.url, f"unpriced-{write_path}", f"turn {i}", model=model)
            error = assert_error(response, 422, "price_unknown")
            assert "has no price" in error["message"] and "PRICES" in error["message"]
    assert openai_upstream.requests == []  # the provider is never called
    assert not Message.objects.exists()
    budget.refresh_from_db()
    assert (budget.spent, budget.reserved) == (Decimal("0.000009"), 0)


def test_an_unpriced_model_answers_where_no_budget_applies(asgi_server, openai_upstream, settings, key):
    settings.OPENAI_MODELS = [DATED]
    settings.PRICES = {}
    response = turn(asgi_server.url, "no-budget", "hi [[chunks=2]]", key=key, model=DATED)
    assert response.status_code == 200, response.text
    assert answer("no-budget").cost is None  # unknown, never zero


def test_a_fallback_price_counts_an_unpriced_model(asgi_server, openai_upstream, settings, write_path):
    settings.OPENAI_MODELS = [DATED]
    settings.PRICES = {"*": {"input": 0, "output": 10}}
    budget = anonymous_budget("1")
    response = turn(asgi_server.url, f"fallback-{write_path}", "hi [[chunks=5]]", model=DATED, max_tokens=100)
    assert response.status_code == 200, response.text
    stored = answer(f"fallback-{write_path}")
    assert stored.model == DATED and stored.reserved_cost == Decimal("0.001")
    assert stored.cost == Decimal(stored.output_tokens) * 10 / 1_000_000 and stored.cost > 0
    budget.refresh_from_db()
    assert budget.spent == stored.cost and budget.reserved == 0


def test_a_self_hosted_model_counts_at_the_price_its_operator_declares(
    asgi_server, upstream, settings, write_path
):
    settings.LLM_PROVIDER = "openai-compatible"
    settings.OPENAI_COMPATIBLE_BASE_URL = upstream.openai_base_url
    settings.LLM_RETRY_ATTEMPTS = 0
    settings.LLM_FALLBACKS = []
    settings.PRICES = {}
    anonymous_budget("1")
    session = f"ollama-{write_path}"
    assert_error(turn(asgi_server.url, session, "hi"), 422, "price_unknown")  # unset is not a price
    settings.PRICES = {"openai-compatible:*": {"input": 0, "output": 0}}  # an explicit 0 is
    response = turn(asgi_server.url, session, "hi [[chunks=2]]")
    assert response.status_code == 200, response.text
    stored = answer(session)
    assert (stored.provider, stored.model, stored.cost) == ("openai-compatible", "llama3.2", Decimal(0))


def test_the_demo_ships_a_declared_price_of_zero(asgi_server, settings, write_path):
    settings.LLM_PROVIDER, settings.DEMO_DELAY = "demo", 0
    anonymous_budget("0.00001", spent="0.000009")
    response = turn(asgi_server.url, f"demo-{write_path}", "hi", model="fast")
    assert response.status_code == 200, response.text
    assert answer(f"demo-{write_path}").cost == 0
    refused = turn(asgi_server.url, f"demo-{write_path}", "hi", provider="demo", model="any-unpriced-model")
    assert_error(refused, 422, "model_not_found")


def test_a_fallback_provider_without_a_price_is_skipped_while_a_budget_applies(
    asgi_server, openai_upstream, settings
):
    settings.PRICES = PRICED
    settings.OPENAI_MODELS = ["gpt-test", "backup-model"]  # backup-model has no price
    settings.LLM_FALLBACKS = ["openai:backup-model"]
    anonymous_budget("1")
    openai_upstream.push_fault("503", times=1, model="gpt-test")
    response = turn(asgi_server.url, "fallback-skipped", "hi [[chunks=2]]")
    assert response.status_code == 502, response.text
    assert [r.json["model"] for r in openai_upstream.requests] == ["gpt-test"]


def test_every_model_a_provider_serves_by_default_ships_a_price_except_the_self_hosted_one():
    from billing.prices import DEFAULT_PRICES, price_keys
    from providers.defaults import PROVIDERS

    for spec in PROVIDERS.values():
        served = {spec.default_model, *spec.models, *spec.aliases.values()}
        priced = {m for m in served if any(key in DEFAULT_PRICES for key in price_keys(spec.name, m))}
        expected = set() if spec.name == "openai-compatible" else served  # its operator declares it
        assert priced == expected, spec.name


# --- model names ----------------------------------------------------------------------------------
def test_a_model_no_provider_serves_is_refused_in_every_protocol(asgi_server, sdk, openai_upstream, settings):
    url = asgi_server.url
    assert_error(turn(url, "named", "hi", model="gpt-9"), 422, "model_not_found")
    with pytest.raises(openai.UnprocessableEntityError) as chat:
        sdk.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert chat.value.code == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError) as responses:
        sdk.responses.create(model=DATED, input="hi")
    assert responses.value.code == "model_not_found"
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    ui = {"id": "ai-named", "messages": [message], "trigger": "submit-message", "model": "openai:gpt-9"}
    assert httpx.post(f"{url}/api/ai-sdk/chat", json=ui).status_code == 422
    settings.ZAI_API_KEY = "id.secret"
    zai = {"messages": [{"role": "user", "content": "hi"}], "model": "glm-9"}
    assert_error(httpx.post(f"{url}/compat/zai/api/chat", json=zai), 400, "model_not_found")  # its 400
    assert openai_upstream.requests == [] and not Message.objects.exists()
    listed = {m.id for m in sdk.models.list()}
    assert "gpt-test" in listed and "gpt-9" not in listed and DATED not in listed
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-9")


def test_models_star_opens_a_provider_to_any_name(asgi_server, sdk, openai_upstream, settings):
    settings.OPENAI_MODELS = "*"
    assert sdk.models.retrieve("gpt-9").owned_by == "openai"
    completion = sdk.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert completion.model == "gpt-9"


# --- the mount's budget ---------------------------------------------------------------------------
def test_a_native_turn_on_a_mount_key_is_not_charged_to_that_mount(
    asgi_server, openai_upstream, settings, user, key, write_path
):
    settings.PRICES = PRICED
    mount = Budget.objects.create(scope="mount", subject="layercode", amount=Decimal("5"), period="day")
    session = f"layercode:x-{write_path}"
    response = turn(asgi_server.url, session, "hi [[chunks=5]]", key=key)
    assert response.status_code == 200, response.text
    assert answer(session).cost > 0
    mount.refresh_from_db()
    assert (mount.spent, mount.reserved) == (0, 0)
    assert mount.pk not in answer(session).budget_ids


def test_a_signed_layercode_turn_is_charged_to_the_mount(asgi_server, openai_upstream, settings, write_path):
    settings.PRICES = PRICED
    settings.LAYERCODE_WEBHOOK_SECRET = SECRET
    body = {"text": "hi [[chunks=5]]", "type": "message", "session_id": f"s-{write_path}", "turn_id": "t1"}
    response = httpx.post(f"{asgi_server.url}/compat/layercode/agent", json=body, auth=Signed(), timeout=30)
    assert response.status_code == 200 and b"response.tts" in response.content
    mount = Budget.objects.get(scope="mount", subject="layercode")  # from BUDGET_MOUNT_DEFAULT (5/day)
    assert mount.amount == 5 and mount.spent > 0
    assert not Budget.objects.filter(scope="anonymous").exists()


# --- the seed mounts' defaults --------------------------------------------------------------------
def test_the_zai_mounts_fast_alias_answers_under_its_default_budget(
    asgi_server, upstream, settings, write_path
):
    settings.ZAI_API_KEY, settings.ZAI_BASE_URL = "id.secret", upstream.zai_base_url
    settings.LLM_RETRY_ATTEMPTS, settings.LLM_FALLBACKS = 0, []
    settings.PRICES = {}
    body = {"messages": [{"role": "user", "content": "hi [[chunks=2]]"}], "model": "fast", "stream": False}
    response = httpx.post(f"{asgi_server.url}/compat/zai/api/chat", json=body, timeout=30)
    assert response.status_code == 200, response.text
    stored = Message.objects.get(role="assistant")
    assert (stored.model, stored.cost) == ("glm-4.5-flash", Decimal(0))  # priced: Z.AI's free model
    assert Budget.objects.get(scope="mount", subject="zai").amount == 5
