"""Django system checks for the provider settings (run by ``manage.py check`` and at start-up).

* ``providers.E001`` (Error): ``LLM_PROVIDER`` names no known provider.
* ``providers.E002`` (Error): a provider setting is malformed, or the selected provider's default
  model is not a valid model name.
* ``providers.W001`` (Warning): the selected provider has no key (or base URL), naming the variable
  to set; requests would fail until it is set.
* ``providers.W002`` (Warning, ``--deploy``): no provider is configured, so without ``DEBUG`` every
  turn fails with ``503 provider_not_configured`` (the demo answers only when chosen by name).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .registry import ProviderRegistry, UnknownModel, UnknownProvider


def check_llm_provider(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        registry = ProviderRegistry.from_settings()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="Fix the setting's value in the environment.", id="providers.E002")]
    try:
        config = registry.config()
    except UnknownProvider:
        known = ", ".join(registry.names())
        return [
            Error(
                f"LLM_PROVIDER={registry.default!r} is not a known provider.",
                hint=f"Set LLM_PROVIDER to one of: {known}.",
                id="providers.E001",
            )
        ]
    messages: list[CheckMessage] = []
    spec = config.spec
    if not config.configured:
        messages.append(
            Warning(
                f"LLM_PROVIDER={spec.name!r} is selected but {spec.required_setting} is not set.",
                hint=f"Set {spec.required_setting}, or set LLM_PROVIDER=demo to use the offline demo provider.",
                id="providers.W001",
            )
        )
    try:
        registry.resolve_model(spec.name, config.default_model)
    except UnknownModel as exc:
        messages.append(Error(str(exc), hint=f"Fix {spec.prefix}_MODEL.", id="providers.E002"))
    return messages


@register(Tags.security, deploy=True)
def check_demo_provider_in_production(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.LLM_PROVIDER != "demo" or getattr(settings, "DEMO_PROVIDER_ALLOWED", True):
        return []
    return [
        Warning(
            "No LLM provider is configured: every turn will fail with 503 provider_not_configured.",
            hint="Set a provider key (OPENAI_API_KEY, GEMINI_API_KEY, ZAI_API_KEY or "
            "OPENAI_COMPATIBLE_BASE_URL), or LLM_PROVIDER=demo to serve the offline demo on purpose.",
            id="providers.W002",
        )
    ]
