"""Which OpenAI-compatible models may be offered tools: ``OPENAI_COMPATIBLE_TOOL_MODELS``, read by the
registry (``*`` every model, the default; a list; empty none)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from providers.openai_compatible import OpenAICompatibleProvider
from providers.registry import get_registry

if not django_settings.configured:  # run without pytest-django (-p no:django)
    pytest.skip("needs Django settings", allow_module_level=True)


@pytest.fixture
def compatible(clean_settings):
    clean_settings.OPENAI_COMPATIBLE_BASE_URL = "http://localhost:11434/v1"
    if hasattr(clean_settings, "OPENAI_COMPATIBLE_TOOL_MODELS"):
        del clean_settings.OPENAI_COMPATIBLE_TOOL_MODELS
    return clean_settings


def supported(*models: str) -> list[bool]:
    provider = get_registry().get("openai-compatible")
    return [provider.tools_supported(model) for model in models]


def test_unset_every_model_may_be_offered_tools(compatible):
    assert supported("llama3.2", "qwen2.5:7b") == [True, True]


def test_star_opens_tools_to_every_model(compatible):
    compatible.OPENAI_COMPATIBLE_TOOL_MODELS = "*"

    assert supported("llama3.2", "anything") == [True, True]


def test_a_comma_separated_list_names_the_models_that_may(compatible):
    compatible.OPENAI_COMPATIBLE_TOOL_MODELS = "qwen2.5:7b, llama3.1 ,"

    assert supported("qwen2.5:7b", "llama3.1", "llama3.2") == [True, True, False]


def test_a_list_setting_works_too(compatible):
    compatible.OPENAI_COMPATIBLE_TOOL_MODELS = ["llama3.1"]

    assert supported("llama3.1", "llama3.2") == [True, False]


def test_empty_means_no_model(compatible):
    compatible.OPENAI_COMPATIBLE_TOOL_MODELS = ""

    assert supported("llama3.2", "qwen2.5:7b") == [False, False]


def test_a_setting_of_another_type_is_refused_naming_it(compatible):
    compatible.OPENAI_COMPATIBLE_TOOL_MODELS = 3

    with pytest.raises(ImproperlyConfigured, match="OPENAI_COMPATIBLE_TOOL_MODELS"):
        get_registry().get("openai-compatible")


async def test_the_adapter_built_by_hand_defaults_to_every_model():
    base = "http://localhost:11434/v1"
    every = OpenAICompatibleProvider(default_model="llama3.2", base_url=base)
    none = OpenAICompatibleProvider(default_model="llama3.2", base_url=base, tool_models="")

    assert (every.tools_supported("llama3.2"), none.tools_supported("llama3.2")) == (True, False)
    await every.aclose()
    await none.aclose()
