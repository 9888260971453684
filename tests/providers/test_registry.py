"""The registry: provider names and settings, models and aliases, rebuilt when settings change."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from providers.base import Timeouts
from providers.demo import DemoProvider
from providers.gemini import GeminiProvider
from providers.openai_chat import OpenAIChatProvider
from providers.openai_compatible import OpenAICompatibleProvider
from providers.openai_responses import OpenAIResponsesProvider
from providers.registry import (
    ProviderNotConfigured,
    ProviderRegistry,
    UnknownModel,
    UnknownProvider,
    get_registry,
)
from tests.providers.conftest import ask

if not django_settings.configured:  # run without pytest-django (-p no:django)
    pytest.skip("needs Django settings", allow_module_level=True)


@pytest.fixture
def keyed_settings(clean_settings):
    clean_settings.GEMINI_API_KEY = "gemini-key"
    clean_settings.OPENAI_API_KEY = "openai-key"
    clean_settings.ZAI_API_KEY = "zai.key"
    return clean_settings


def test_without_configuration_the_demo_provider_is_selected(clean_settings):
    provider = get_registry().get()

    assert isinstance(provider, DemoProvider)
    assert provider.delay == 0.02
    assert get_registry().resolve() == (provider, "demo")


def test_get_without_a_name_returns_the_llm_provider(keyed_settings):
    keyed_settings.LLM_PROVIDER = "gemini"

    assert isinstance(get_registry().get(), GeminiProvider)


def test_get_builds_one_instance_per_provider_name(keyed_settings):
    registry = get_registry()

    assert registry.get("openai") is registry.get("openai")


def test_openai_and_openai_responses_share_the_openai_settings_with_their_own_adapters(keyed_settings):
    keyed_settings.OPENAI_MODEL = "gpt-4.1-mini"
    registry = get_registry()

    chat, responses = registry.get("openai"), registry.get("openai-responses")

    assert type(chat) is OpenAIChatProvider and type(responses) is OpenAIResponsesProvider
    assert chat.default_model == responses.default_model == "gpt-4.1-mini"


def test_providers_get_their_name_and_the_timeouts_from_settings(keyed_settings):
    keyed_settings.LLM_CONNECT_TIMEOUT = 3
    keyed_settings.LLM_READ_TIMEOUT = 45.5

    provider = get_registry().get("zai")

    assert provider.name == "zai"
    assert provider.timeouts == Timeouts(connect=3.0, read=45.5)


def test_unknown_provider_raises_unknown_provider_listing_the_choices(clean_settings):
    with pytest.raises(UnknownProvider, match="use one of demo, gemini, openai"):
        get_registry().get("anthropic")


def test_unknown_llm_provider_setting_raises_unknown_provider(clean_settings):
    clean_settings.LLM_PROVIDER = "nope"

    with pytest.raises(UnknownProvider):
        get_registry().resolve()


@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("gemini", "GEMINI_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
        ("openai-responses", "OPENAI_API_KEY"),
        ("zai", "ZAI_API_KEY"),
        ("openai-compatible", "OPENAI_COMPATIBLE_BASE_URL"),
    ],
)
def test_unconfigured_provider_raises_provider_not_configured_naming_the_setting(
    clean_settings, name, setting
):
    with pytest.raises(ProviderNotConfigured, match=f"set {setting}"):
        get_registry().get(name)


def test_empty_key_counts_as_not_configured(clean_settings):
    clean_settings.OPENAI_API_KEY = ""

    with pytest.raises(ProviderNotConfigured):
        get_registry().get("openai")


def test_openai_compatible_is_configured_by_its_base_url_alone(clean_settings):
    clean_settings.OPENAI_COMPATIBLE_BASE_URL = "http://localhost:11434/v1"

    provider, model = get_registry().resolve("openai-compatible", None)

    assert isinstance(provider, OpenAICompatibleProvider)
    assert model == "llama3.2"


def test_errors_are_value_errors():
    assert issubclass(UnknownProvider, ValueError)
    assert issubclass(UnknownModel, ValueError)
    assert issubclass(ProviderNotConfigured, ValueError)


def test_names_lists_every_provider_and_can_filter_to_the_configured_ones(clean_settings):
    clean_settings.ZAI_API_KEY = "zai.key"
    registry = get_registry()

    assert registry.names() == ["demo", "gemini", "openai", "openai-responses", "zai", "openai-compatible"]
    assert registry.names(configured_only=True) == ["demo", "zai"]


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("gemini", "gemini-2.5-flash"),
        ("openai", "gpt-4o-mini"),
        ("openai-responses", "gpt-4o-mini"),
        ("zai", "glm-4.6"),
        ("demo", "demo"),
    ],
)
def test_resolve_without_a_model_uses_the_provider_default(keyed_settings, provider, expected):
    assert get_registry().resolve(provider, None)[1] == expected


def test_resolve_uses_the_configured_default_model(keyed_settings):
    keyed_settings.GEMINI_MODEL = "gemini-2.5-flash-lite"

    assert get_registry().resolve("gemini", "")[1] == "gemini-2.5-flash-lite"


@pytest.mark.parametrize(
    ("provider", "alias", "expected"),
    [
        ("gemini", "fast", "gemini-2.5-flash"),
        ("gemini", "smart", "gemini-2.5-pro"),
        ("openai", "fast", "gpt-4o-mini"),
        ("openai", "smart", "gpt-4.1"),
        ("zai", "fast", "glm-4.5-flash"),
        ("zai", "smart", "glm-4.6"),
        ("zai", "SMART", "glm-4.6"),
    ],
)
def test_resolve_applies_the_default_aliases(keyed_settings, provider, alias, expected):
    assert get_registry().resolve(provider, alias)[1] == expected


def test_llm_model_aliases_add_flat_and_per_provider_aliases(keyed_settings):
    keyed_settings.LLM_MODEL_ALIASES = {"cheap": "model-for-everyone", "openai": {"fast": "gpt-4.1-nano"}}
    registry = get_registry()

    assert registry.resolve_model("openai", "fast") == "gpt-4.1-nano"
    assert registry.resolve_model("gemini", "fast") == "gemini-2.5-flash"
    assert registry.resolve_model("zai", "cheap") == "model-for-everyone"


def test_demo_resolves_any_alias_to_demo(keyed_settings):
    keyed_settings.LLM_MODEL_ALIASES = {"cheap": "gpt-4.1-nano"}
    registry = get_registry()

    assert [registry.resolve_model("demo", a) for a in ("fast", "smart", "cheap")] == ["demo"] * 3


def test_a_name_a_provider_does_not_serve_is_refused_dated_snapshots_included(keyed_settings):
    registry = get_registry()
    for provider, model in [("openai", "gpt-4o-2024-08-06"), ("openai", "gpt-9"), ("demo", "any-model")]:
        with pytest.raises(UnknownModel, match="is not served by"):
            registry.resolve_model(provider, model)
    # served without a setting: the default, the models with a shipped price, the aliases' targets
    assert registry.resolve_model("openai", "gpt-4o") == "gpt-4o"
    assert registry.resolve_model("zai", "glm-4.5-flash") == "glm-4.5-flash"
    assert registry.resolve_model("demo", "demo") == "demo"


def test_models_star_opens_a_provider_to_any_well_formed_name(keyed_settings):
    keyed_settings.OPENAI_MODELS = "*"
    keyed_settings.OPENAI_COMPATIBLE_MODELS = ["*"]
    registry = get_registry()

    assert registry.resolve("openai", "gpt-4.1-2025-04-14")[1] == "gpt-4.1-2025-04-14"
    assert registry.resolve_model("openai-compatible", "qwen2.5:7b-instruct") == "qwen2.5:7b-instruct"
    with pytest.raises(UnknownModel, match="invalid model name"):
        registry.resolve_model("openai", "bad name")
    with pytest.raises(UnknownModel):  # the other providers stay closed
        registry.resolve_model("gemini", "gemini-9")


@pytest.mark.parametrize("model", ["bad name", "-leading-dash", "../../etc/passwd", "a" * 129, "emoji🙂"])
def test_resolve_rejects_a_malformed_model_name(keyed_settings, model):
    with pytest.raises(UnknownModel, match="invalid model name"):
        get_registry().resolve("openai", model)


def test_allowlist_accepts_its_models_the_default_and_aliases(keyed_settings):
    keyed_settings.OPENAI_MODELS = ["gpt-4o-mini", "gpt-4.1"]
    registry = get_registry()

    assert registry.resolve_model("openai", "gpt-4.1") == "gpt-4.1"
    assert registry.resolve_model("openai", "smart") == "gpt-4.1"
    assert registry.resolve_model("openai", None) == "gpt-4o-mini"
    with pytest.raises(UnknownModel, match="add it to OPENAI_MODELS"):
        registry.resolve_model("openai", "o3")


def test_allowlist_rejects_an_alias_to_a_model_outside_it(keyed_settings):
    keyed_settings.ZAI_MODELS = "glm-4.6"

    with pytest.raises(UnknownModel, match="ZAI_MODELS"):
        get_registry().resolve_model("zai", "fast")


def test_malformed_alias_setting_is_improperly_configured(keyed_settings):
    keyed_settings.LLM_MODEL_ALIASES = ["fast"]

    with pytest.raises(ImproperlyConfigured, match="LLM_MODEL_ALIASES"):
        ProviderRegistry.from_settings()


def test_registry_is_rebuilt_when_a_provider_setting_changes(keyed_settings):
    before = get_registry()
    assert get_registry() is before

    keyed_settings.LLM_PROVIDER = "openai"

    after = get_registry()
    assert after is not before
    assert after.default == "openai"


async def test_registry_provider_streams_through_the_fake_upstream_with_the_resolved_alias(
    clean_settings, fake_upstream
):
    clean_settings.LLM_PROVIDER = "openai"
    clean_settings.OPENAI_API_KEY = "sk-registry"
    clean_settings.OPENAI_BASE_URL = fake_upstream.openai_base_url
    clean_settings.OPENAI_EXTRA_HEADERS = {"X-Team": "chat"}
    provider, model = get_registry().resolve(None, "smart")
    try:
        result = await provider.complete(ask("via the registry", model=model))
    finally:
        await get_registry().aclose()

    request = fake_upstream.last_request("/v1/chat/completions")
    assert result.text == "Echo: via the registry"
    assert request.json["model"] == "gpt-4.1"
    assert request.headers["authorization"] == "Bearer sk-registry"
    assert request.headers["x-team"] == "chat"
