"""Builds the configured providers from Django settings and resolves provider and model names.

``get_registry()`` returns the process-wide :class:`ProviderRegistry`, built lazily on first use and
rebuilt after Django's ``setting_changed`` signal touches a provider setting (tests override
settings). Providers are built on first :meth:`ProviderRegistry.get`, one instance per name, so each
SDK client lives as long as the process. The settings read, with their defaults, are listed in
:mod:`providers.defaults`; unset or empty settings fall back to those defaults.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .base import Provider, Timeouts
from .defaults import (
    ANY_MODEL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEMO_DELAY,
    DEFAULT_GEMINI_API_VERSION,
    DEFAULT_HTTP_TRANSPORT,
    DEFAULT_PROVIDER,
    DEFAULT_READ_TIMEOUT,
    HTTP_TRANSPORTS,
    MODEL_NAME_RE,
    PROVIDERS,
    ProviderSpec,
)


class UnknownProvider(ValueError):
    """No provider has this name."""


class UnknownModel(ValueError):
    """The model name is malformed or not one the provider serves."""


class ProviderNotConfigured(ValueError):
    """The provider exists but its key (or base URL) is not set."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider's settings, read once.

    ``allowed_models`` is ``<PREFIX>_MODELS`` (``None``: unset, the spec's models are served);
    ``any_model`` is ``<PREFIX>_MODELS=*``. ``options`` are its adapter's extra constructor
    arguments, the API key among them: never expose them (they are left out of ``repr``).
    """

    spec: ProviderSpec
    configured: bool
    default_model: str
    allowed_models: frozenset[str] | None
    aliases: Mapping[str, str]
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    any_model: bool = False

    @property
    def served(self) -> frozenset[str]:
        """The model names it serves by name (beside any name when ``any_model``): see
        :mod:`providers.defaults`."""
        if self.allowed_models is not None:
            return self.allowed_models | {self.default_model}
        return frozenset({self.default_model, *self.spec.models, *self.aliases.values()})


def _setting(name: str, default: Any = None) -> Any:
    value = getattr(settings, name, None)
    return default if value is None or value == "" else value


def _number(name: str, default: float) -> float:
    value = _setting(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name}={value!r} is not valid: expected a number of seconds.") from None


def _mapping(name: str) -> dict[str, Any]:
    value = _setting(name, {})
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f'{name} is not valid: expected a dict such as {{"key": "value"}}.')
    return dict(value)


def _allowlist(name: str) -> frozenset[str] | None:
    value = _setting(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple | set | frozenset) or not all(isinstance(v, str) for v in value):
        raise ImproperlyConfigured(f"{name} is not valid: expected a list of model names.")
    return frozenset(v.strip() for v in value if v.strip()) or None


def _tool_models(name: str) -> str | list[str] | None:
    """``OPENAI_COMPATIBLE_TOOL_MODELS`` as set (empty: no model), or None when unset (the adapter's
    default, every model)."""
    value = getattr(settings, name, None)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ImproperlyConfigured(
        f"{name} is not valid: expected model names, comma-separated (* for every model, empty for none)."
    )


def _model_globs(name: str) -> str | list[str] | None:
    """``OPENAI_COMPATIBLE_ATTACHMENT_MODELS`` / ``ZAI_VISION_MODELS`` as set (model names with
    ``*`` globs; empty: no model), or None when unset (the adapter's default)."""
    value = getattr(settings, name, None)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ImproperlyConfigured(
        f"{name} is not valid: expected model names, comma-separated (* as a glob, e.g. llava*; empty for none)."
    )


def _byte_count(name: str) -> int | None:
    """``GEMINI_INLINE_MAX_BYTES`` as a whole number of bytes (0 or more), or None when unset."""
    value = _setting(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ImproperlyConfigured(
            f"{name}={value!r} is not valid: expected a whole number of bytes (0 or more)."
        )
    return int(value)


def _http_transport() -> str:
    value = str(_setting("LLM_HTTP_TRANSPORT", DEFAULT_HTTP_TRANSPORT)).strip().lower()
    if value not in HTTP_TRANSPORTS:
        raise ImproperlyConfigured(
            f"LLM_HTTP_TRANSPORT={value!r} is not valid: use {' or '.join(HTTP_TRANSPORTS)}."
        )
    return value


def _aliases(spec: ProviderSpec, configured: Mapping[str, Any]) -> dict[str, str]:
    """Defaults, then flat ``alias: model`` entries, then ``provider: {alias: model}`` entries."""
    aliases = {k.lower(): v for k, v in spec.aliases.items()}
    for key, value in configured.items():
        if isinstance(value, str):
            aliases[key.lower()] = value
    per_provider = configured.get(spec.name, {})
    if not isinstance(per_provider, Mapping):
        raise ImproperlyConfigured(
            f"LLM_MODEL_ALIASES[{spec.name!r}] is not valid: expected a dict of alias to model."
        )
    aliases.update({str(k).lower(): str(v) for k, v in per_provider.items()})
    return aliases


def read_config(spec: ProviderSpec) -> ProviderConfig:
    """Read one provider's settings (raises ``ImproperlyConfigured`` on malformed values)."""
    prefix = spec.prefix
    aliases = _aliases(spec, _mapping("LLM_MODEL_ALIASES"))
    options: dict[str, Any] = {}
    if spec.name == "demo":
        options["delay"] = _number("DEMO_DELAY", DEFAULT_DEMO_DELAY)
        every_alias = {alias.lower() for other in PROVIDERS.values() for alias in other.aliases}
        aliases = dict.fromkeys(every_alias | aliases.keys(), "demo")  # the demo answers any alias
    else:
        options["api_key"] = _setting(f"{prefix}_API_KEY")
        options["base_url"] = _setting(f"{prefix}_BASE_URL")
        options["extra_headers"] = {str(k): str(v) for k, v in _mapping(f"{prefix}_EXTRA_HEADERS").items()}
    if spec.adapter.startswith("providers.openai"):
        options["http_transport"] = _http_transport()
    if spec.name == "openai-compatible" and (tools := _tool_models(f"{prefix}_TOOL_MODELS")) is not None:
        options["tool_models"] = tools
    if (
        spec.name == "openai-compatible"
        and (files := _model_globs(f"{prefix}_ATTACHMENT_MODELS")) is not None
    ):
        options["attachment_models"] = files
    if spec.name == "zai" and (vision := _model_globs("ZAI_VISION_MODELS")) is not None:
        options["vision_models"] = vision
    if spec.name == "gemini":
        options["api_version"] = _setting("GEMINI_API_VERSION", DEFAULT_GEMINI_API_VERSION)
        if (inline := _byte_count("GEMINI_INLINE_MAX_BYTES")) is not None:
            options["inline_max_bytes"] = inline
    required = spec.required_setting
    allowed = _allowlist(f"{prefix}_MODELS")
    any_model = allowed is not None and ANY_MODEL in allowed
    return ProviderConfig(
        spec=spec,
        configured=required is None or bool(_setting(required)),
        default_model=str(_setting(f"{prefix}_MODEL", spec.default_model)),
        allowed_models=None if any_model else allowed,
        aliases=aliases,
        options=options,
        any_model=any_model,
    )


class ProviderRegistry:
    """The known providers, which of them are configured, and name → (provider, model) resolution."""

    def __init__(self, configs: Mapping[str, ProviderConfig], *, default: str, timeouts: Timeouts) -> None:
        self._configs = dict(configs)
        self.default = default
        self.timeouts = timeouts
        self._built: dict[str, Provider] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> ProviderRegistry:
        timeouts = Timeouts(
            connect=_number("LLM_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
            read=_number("LLM_READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
        )
        default = str(_setting("LLM_PROVIDER", DEFAULT_PROVIDER)).strip().lower()
        configs = {name: read_config(spec) for name, spec in PROVIDERS.items()}
        return cls(configs, default=default, timeouts=timeouts)

    def names(self, *, configured_only: bool = False) -> list[str]:
        """Provider names, in a stable order; with ``configured_only`` just the usable ones."""
        return [n for n, c in self._configs.items() if c.configured or not configured_only]

    def config(self, name: str | None = None) -> ProviderConfig:
        key = (name or self.default).strip().lower()
        try:
            return self._configs[key]
        except KeyError:
            known = ", ".join(self._configs)
            raise UnknownProvider(f"unknown provider {key!r}: use one of {known} (LLM_PROVIDER)") from None

    def get(self, name: str | None = None) -> Provider:
        """The provider called ``name`` (``None``: ``LLM_PROVIDER``), built on first use."""
        config = self.config(name)
        spec = config.spec
        if not config.configured:
            raise ProviderNotConfigured(
                f"provider {spec.name!r} is not configured: set {spec.required_setting}, or use LLM_PROVIDER=demo"
            )
        with self._lock:
            provider = self._built.get(spec.name)
            if provider is None:
                module_name, _, class_name = spec.adapter.partition(":")
                adapter = getattr(importlib.import_module(module_name), class_name)
                provider = adapter(
                    name=spec.name,
                    default_model=config.default_model,
                    timeouts=self.timeouts,
                    **config.options,
                )
                self._built[spec.name] = provider
        return provider

    def resolve_model(self, provider: str | None, model: str | None) -> str:
        """The model name to send: ``None`` → the provider's default, aliases applied; a name the
        provider does not serve (:attr:`ProviderConfig.served`) raises :class:`UnknownModel`."""
        config = self.config(provider)
        requested = (model or "").strip()
        if not requested:
            return config.default_model
        prefix = config.spec.prefix
        target = config.aliases.get(requested.lower())
        if target is not None:
            if not self._allowed(config, target):
                raise UnknownModel(
                    f"model alias {requested!r} means {target!r}, which {prefix}_MODELS does not allow"
                )
            return target
        if not MODEL_NAME_RE.match(requested):
            raise UnknownModel(
                f"invalid model name {requested!r}: use letters, digits and . _ : / - (at most 128 characters)"
            )
        if not self._allowed(config, requested):
            served = ", ".join(sorted(config.served))
            raise UnknownModel(
                f"model {requested!r} is not served by {config.spec.name}: use one of {served} "
                f"(GET /v1/models lists them), or ask the operator to add it to {prefix}_MODELS"
            )
        return requested

    @staticmethod
    def _allowed(config: ProviderConfig, model: str) -> bool:
        return config.any_model or model in config.served

    def catalog(self) -> list[tuple[str, str]]:
        """``(model id, provider)`` for every model id a request may name, in a stable order: for
        each configured provider ``provider:model`` for the models it serves by name and
        ``provider:alias`` for its usable aliases; then the default provider's, bare. (A provider
        opened to any name with ``<PREFIX>_MODELS=*`` serves names beyond these.)"""
        entries: list[tuple[str, str]] = []
        bare: list[tuple[str, str]] = []
        for name in self.names(configured_only=True):
            config = self._configs[name]
            ids = [config.default_model, *sorted(config.served - {config.default_model})]
            usable = {alias for alias, target in config.aliases.items() if self._allowed(config, target)}
            ids += sorted(usable - set(ids))  # an alias whose model the allowlist refuses is left out
            entries += [(f"{name}:{model}", name) for model in ids]
            if name == self.default:
                bare = [(model, name) for model in ids]
        return entries + bare

    def resolve(self, provider: str | None = None, model: str | None = None) -> tuple[Provider, str]:
        """``(provider instance, model name)`` for a request that may name either, both or neither."""
        model_name = self.resolve_model(provider, model)
        return self.get(provider), model_name

    async def aclose(self) -> None:
        """Close every provider built so far (their SDK connection pools)."""
        with self._lock:
            built, self._built = list(self._built.values()), {}
        for provider in built:
            await provider.aclose()


_registry: ProviderRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> ProviderRegistry:
    """The process-wide registry, built from settings on first use."""
    global _registry
    registry = _registry
    if registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = ProviderRegistry.from_settings()
            registry = _registry
    return registry


def reset_registry() -> None:
    """Forget the process-wide registry; the next :func:`get_registry` re-reads settings."""
    global _registry
    with _registry_lock:
        _registry = None


_PREFIXES = tuple({f"{spec.prefix}_" for spec in PROVIDERS.values()} | {"LLM_"})


@receiver(setting_changed)
def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(_PREFIXES):
        reset_registry()
