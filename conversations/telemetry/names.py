"""What the GenAI semantic conventions call our providers, and which server each one calls.

``gen_ai.provider.name`` takes the conventions' well-known value where one applies (``openai``,
``gcp.gemini`` for the Gemini API at generativelanguage.googleapis.com); for the others the
conventions allow a custom value, spelled as theirs are (``x_ai``, ``mistral_ai``): ``z_ai`` for
Z.AI, ``openai_compatible`` for any OpenAI-compatible server (Ollama, vLLM, a gateway: we do not
know who is behind it, and calling it ``openai`` would mix it into OpenAI's numbers), ``demo`` for
the offline demo. docs/telemetry.md lists them.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from providers.base import Provider

#: Provider adapter kind -> gen_ai.provider.name
PROVIDER_NAMES = {
    "openai": "openai",
    "openai-responses": "openai",
    "gemini": "gcp.gemini",
    "zai": "z_ai",
    "openai-compatible": "openai_compatible",
    "demo": "demo",
}

#: The host each adapter's SDK calls when no ``<PREFIX>_BASE_URL`` is set.
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "openai-responses": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com",
    "zai": "https://api.z.ai/api/paas/v4",
}


def provider_name(provider: Provider) -> str:
    return PROVIDER_NAMES.get(provider.kind, provider.kind)


def server_of(provider: Provider) -> tuple[str, int] | None:
    """``(server.address, server.port)`` of the upstream ``provider`` calls; ``None`` for the demo."""
    from providers.registry import get_registry

    try:
        base_url = get_registry().config(provider.name).options.get("base_url")
    except ValueError:  # not a registry provider
        base_url = None
    return _host_and_port(base_url or DEFAULT_BASE_URLS.get(provider.kind))


@lru_cache(maxsize=64)
def _host_and_port(url: str | None) -> tuple[str, int] | None:
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)
