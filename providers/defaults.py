"""Every provider the registry knows, with its settings names and defaults, in one place.

Plain data: nothing here reads Django settings (only :mod:`providers.registry` and
:mod:`providers.checks` do). Per provider ``spec.prefix`` names its settings:
``<PREFIX>_API_KEY``, ``<PREFIX>_BASE_URL``, ``<PREFIX>_MODEL``, ``<PREFIX>_MODELS`` (the models it
serves) and ``<PREFIX>_EXTRA_HEADERS``; ``openai`` and ``openai-responses`` share the ``OPENAI`` prefix.

A provider serves the model names it is known to serve, and no others: its default model, the
targets of its aliases and ``spec.models`` (the models with a shipped price,
:data:`billing.prices.DEFAULT_PRICES`), or, when ``<PREFIX>_MODELS`` is set, that list and its
default. ``<PREFIX>_MODELS=*`` (:data:`ANY_MODEL`) opens it to any well-formed name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DEFAULT_PROVIDER = "demo"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_DEMO_DELAY = 0.02
DEFAULT_GEMINI_API_VERSION = "v1beta"
#: The OpenAI SDK's HTTP transport: ``asyncio`` (providers/asyncio_transport.py) or ``httpx`` (its own).
DEFAULT_HTTP_TRANSPORT = "asyncio"
HTTP_TRANSPORTS = ("asyncio", "httpx")

#: ``<PREFIX>_MODELS=*``: the provider serves any well-formed model name (the operator's explicit choice).
ANY_MODEL = "*"
#: A well-formed model name (the only check on a name a provider opened with ``*`` serves).
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """How to build one named provider.

    ``required_setting`` is what makes it "configured" (its API key, or for ``openai-compatible``
    its base URL); ``None`` means always available. ``adapter`` is ``module:Class``, imported only
    when the provider is first used so an unused SDK is never loaded. ``models`` are the names it
    serves beside its default and its aliases' targets while ``<PREFIX>_MODELS`` is unset.
    """

    name: str
    adapter: str
    prefix: str
    default_model: str
    required_setting: str | None
    aliases: Mapping[str, str] = field(default_factory=dict)
    models: tuple[str, ...] = ()


def _frozen(mapping: dict[str, str]) -> Mapping[str, str]:
    return MappingProxyType(mapping)


_OPENAI_ALIASES = _frozen({"fast": "gpt-4o-mini", "smart": "gpt-4.1"})
_OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini")

PROVIDERS: Mapping[str, ProviderSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ProviderSpec("demo", "providers.demo:DemoProvider", "DEMO", "demo", None),
            ProviderSpec(
                "gemini",
                "providers.gemini:GeminiProvider",
                "GEMINI",
                "gemini-2.5-flash",
                "GEMINI_API_KEY",
                _frozen({"fast": "gemini-2.5-flash", "smart": "gemini-2.5-pro"}),
                ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite"),
            ),
            ProviderSpec(
                "openai",
                "providers.openai_chat:OpenAIChatProvider",
                "OPENAI",
                "gpt-4o-mini",
                "OPENAI_API_KEY",
                _OPENAI_ALIASES,
                _OPENAI_MODELS,
            ),
            ProviderSpec(
                "openai-responses",
                "providers.openai_responses:OpenAIResponsesProvider",
                "OPENAI",
                "gpt-4o-mini",
                "OPENAI_API_KEY",
                _OPENAI_ALIASES,
                _OPENAI_MODELS,
            ),
            ProviderSpec(
                "zai",
                "providers.zai:ZaiProvider",
                "ZAI",
                "glm-4.6",
                "ZAI_API_KEY",
                _frozen({"fast": "glm-4.5-flash", "smart": "glm-4.6"}),
                ("glm-4.6", "glm-4.5", "glm-4.5-air", "glm-4.5-flash"),
            ),
            ProviderSpec(
                "openai-compatible",
                "providers.openai_compatible:OpenAICompatibleProvider",
                "OPENAI_COMPATIBLE",
                "llama3.2",
                "OPENAI_COMPATIBLE_BASE_URL",
            ),
        )
    }
)


def split_model(model: str | None, provider: str | None = None) -> tuple[str | None, str | None]:
    """``(provider, model)`` of a model id as ``GET /v1/models`` lists it: ``"openai:gpt-4o"`` names
    its provider. A prefix that is not a provider's name is part of the model (Ollama's
    ``llama3.2:1b``). With ``provider`` given, a prefix naming another provider is left in place
    (the provider refuses the name)."""
    if model and ":" in model:
        prefix, _, rest = model.partition(":")
        if prefix in PROVIDERS and provider in (None, prefix):
            return prefix, rest or None
    return provider, model
