"""The attachment settings the registry reads into the adapters: ``OPENAI_COMPATIBLE_ATTACHMENT_MODELS``,
``ZAI_VISION_MODELS`` and ``GEMINI_INLINE_MAX_BYTES`` (defaults, values, malformed values refused)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from providers.base import IMAGE_TYPES, TEXT
from providers.gemini_files import DEFAULT_INLINE_MAX_BYTES
from providers.registry import get_registry

if not django_settings.configured:  # run without pytest-django (-p no:django)
    pytest.skip("needs Django settings", allow_module_level=True)

ATTACHMENT_SETTINGS = ("OPENAI_COMPATIBLE_ATTACHMENT_MODELS", "ZAI_VISION_MODELS", "GEMINI_INLINE_MAX_BYTES")
WITH_IMAGES = IMAGE_TYPES | {TEXT}
TEXT_ONLY = frozenset({TEXT})


@pytest.fixture
def configured(clean_settings):
    clean_settings.OPENAI_COMPATIBLE_BASE_URL = "http://localhost:11434/v1"
    clean_settings.ZAI_API_KEY = "id.secret"
    clean_settings.GEMINI_API_KEY = "AIzaTest"
    for name in ATTACHMENT_SETTINGS:
        if hasattr(clean_settings, name):
            delattr(clean_settings, name)
    return clean_settings


def takes(provider: str, model: str) -> frozenset[str]:
    return get_registry().get(provider).attachment_types(model)


def test_unset_no_compatible_model_takes_images_and_the_glm_vision_models_do(configured):
    assert takes("openai-compatible", "llava") == TEXT_ONLY
    assert [takes("zai", m) for m in ("glm-4.6v", "glm-4.5v", "glm-4v-plus", "glm-4.6")] == [
        WITH_IMAGES,
        WITH_IMAGES,
        WITH_IMAGES,
        TEXT_ONLY,
    ]
    assert get_registry().get("gemini").inline_max_bytes == DEFAULT_INLINE_MAX_BYTES


def test_compatible_attachment_models_as_a_comma_separated_string_of_globs(configured):
    configured.OPENAI_COMPATIBLE_ATTACHMENT_MODELS = "llava*, qwen2.5vl:7b ,"

    assert [takes("openai-compatible", m) for m in ("llava:13b", "qwen2.5vl:7b", "llama3.2")] == [
        WITH_IMAGES,
        WITH_IMAGES,
        TEXT_ONLY,
    ]


def test_a_list_setting_and_a_star_work_too(configured):
    configured.OPENAI_COMPATIBLE_ATTACHMENT_MODELS = ["*"]
    configured.ZAI_VISION_MODELS = ["glm-5v*"]

    assert takes("openai-compatible", "anything") == WITH_IMAGES
    assert (takes("zai", "glm-5v"), takes("zai", "glm-4.6v")) == (WITH_IMAGES, TEXT_ONLY)


def test_an_empty_zai_vision_models_means_no_model(configured):
    configured.ZAI_VISION_MODELS = ""

    assert takes("zai", "glm-4.6v") == TEXT_ONLY


def test_the_gemini_inline_budget_is_read(configured):
    configured.GEMINI_INLINE_MAX_BYTES = 1024

    assert get_registry().get("gemini").inline_max_bytes == 1024


@pytest.mark.parametrize(
    ("name", "value", "provider"),
    [
        ("OPENAI_COMPATIBLE_ATTACHMENT_MODELS", 3, "openai-compatible"),
        ("ZAI_VISION_MODELS", {"glm": 1}, "zai"),
        ("GEMINI_INLINE_MAX_BYTES", -1, "gemini"),
        ("GEMINI_INLINE_MAX_BYTES", "20MB", "gemini"),
        ("GEMINI_INLINE_MAX_BYTES", True, "gemini"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_setting(configured, name, value, provider):
    setattr(configured, name, value)

    with pytest.raises(ImproperlyConfigured, match=name):
        get_registry().get(provider)
