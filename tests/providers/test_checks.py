"""The ``providers`` system check: an unknown LLM_PROVIDER is an error, a missing key a warning."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core import checks

from providers.checks import check_llm_provider

if not django_settings.configured:  # run without pytest-django (-p no:django)
    pytest.skip("needs Django settings", allow_module_level=True)


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [m.id for m in messages]


def test_check_passes_for_the_default_demo_provider(clean_settings):
    assert check_llm_provider() == []


def test_check_passes_when_the_selected_provider_has_its_key(clean_settings):
    clean_settings.LLM_PROVIDER = "gemini"
    clean_settings.GEMINI_API_KEY = "gemini-key"

    assert check_llm_provider() == []


@pytest.mark.parametrize(
    ("provider", "setting"),
    [
        ("gemini", "GEMINI_API_KEY"),
        ("openai-responses", "OPENAI_API_KEY"),
        ("zai", "ZAI_API_KEY"),
        ("openai-compatible", "OPENAI_COMPATIBLE_BASE_URL"),
    ],
)
def test_check_warns_w001_when_the_selected_provider_has_no_key(clean_settings, provider, setting):
    clean_settings.LLM_PROVIDER = provider

    [message] = check_llm_provider()

    assert message.id == "providers.W001"
    assert message.level == checks.WARNING
    assert setting in message.msg and setting in message.hint


def test_check_errors_e001_for_an_unknown_provider(clean_settings):
    clean_settings.LLM_PROVIDER = "anthropic"

    [message] = check_llm_provider()

    assert message.id == "providers.E001"
    assert message.level == checks.ERROR
    assert "'anthropic'" in message.msg and "openai-compatible" in message.hint


def test_check_errors_e002_for_a_malformed_provider_setting(clean_settings):
    clean_settings.LLM_MODEL_ALIASES = "fast=gpt-4o-mini"

    assert ids(check_llm_provider()) == ["providers.E002"]


def test_check_is_registered_with_django(clean_settings):
    clean_settings.LLM_PROVIDER = "openai"

    messages = [m for m in checks.run_checks() if m.id and m.id.startswith("providers.")]

    assert ids(messages) == ["providers.W001"]
