"""Fixtures for the provider tests: one fake upstream per session, real SDKs over real HTTP.

``make_provider(kind, ...)`` builds an adapter pointed at the fake upstream (``kind`` is one of
:data:`HTTP_ADAPTERS`) and closes it after the test. Only ``test_registry``/``test_checks`` need
Django; the rest also runs with ``-p no:django``, which is why the suite-wide ``settle_turns`` (it
imports ``conversations``) is replaced here by a no-op.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from providers.base import ChatMessage, Provider, ProviderChunk, ProviderRequest, Timeouts
from providers.gemini import GeminiProvider
from providers.openai_chat import OpenAIChatProvider
from providers.openai_compatible import OpenAICompatibleProvider
from providers.openai_responses import OpenAIResponsesProvider
from providers.zai import ZaiProvider
from tests.fake_upstream import FakeUpstream

OPENAI_KEY = "sk-test-0123456789abcdef"
GEMINI_KEY = "AIzaTest0123456789abcdef"
ZAI_KEY = "0123456789abcdef0123456789abcdef.Secret0123456789"

#: Every adapter that talks HTTP; the contract tests run against each.
HTTP_ADAPTERS = ("openai", "openai-responses", "openai-compatible", "gemini", "zai")
#: Where each adapter's requests land on the fake upstream.
PATHS = {
    "openai": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "openai-compatible": "/v1/chat/completions",
    "gemini": ":streamGenerateContent",
    "zai": "/api/paas/v4/chat/completions",
}
FAST = Timeouts(connect=2.0, read=5.0)


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(autouse=True)
def settle_turns() -> Iterator[None]:
    """Provider tests start no turns: no need to wait for them (and no Django import, see module doc)."""
    yield


@pytest.fixture(autouse=True)
def _fresh_fake_upstream(request: pytest.FixtureRequest) -> None:
    """Reset the shared upstream before each test that uses it."""
    if "fake_upstream" in request.fixturenames:
        request.getfixturevalue("fake_upstream").reset()


def build_provider(
    kind: str,
    base: str,
    *,
    timeouts: Timeouts = FAST,
    extra_headers: dict[str, str] | None = None,
    **options: Any,
) -> Provider:
    """An adapter of ``kind`` whose upstream is the server at ``base`` (``http://host:port``)."""
    common: dict[str, Any] = {"timeouts": timeouts, "extra_headers": extra_headers, **options}
    if kind == "openai":
        return OpenAIChatProvider(
            default_model="gpt-4o-mini", api_key=OPENAI_KEY, base_url=base + "/v1", **common
        )
    if kind == "openai-responses":
        return OpenAIResponsesProvider(
            default_model="gpt-4o-mini", api_key=OPENAI_KEY, base_url=base + "/v1", **common
        )
    if kind == "openai-compatible":
        return OpenAICompatibleProvider(default_model="llama3.2", base_url=base + "/v1", **common)
    if kind == "gemini":
        return GeminiProvider(default_model="gemini-2.5-flash", api_key=GEMINI_KEY, base_url=base, **common)
    if kind == "zai":
        return ZaiProvider(default_model="glm-4.6", api_key=ZAI_KEY, base_url=base + "/api/paas/v4", **common)
    raise ValueError(kind)


@pytest.fixture
async def make_provider(fake_upstream: FakeUpstream) -> AsyncIterator[Callable[..., Provider]]:
    built: list[Provider] = []

    def make(kind: str, *, base: str | None = None, **kwargs: Any) -> Provider:
        provider = build_provider(kind, base or fake_upstream.url, **kwargs)
        built.append(provider)
        return provider

    yield make
    for provider in built:
        await provider.aclose()


@pytest.fixture
def closed_port_url() -> str:
    """A local URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def ask(text: str, *, history: tuple[ChatMessage, ...] = (), **fields: Any) -> ProviderRequest:
    """A request whose last user message is ``text`` (the fake upstream reads directives from it)."""
    return ProviderRequest(
        model=fields.pop("model", "test-model"), messages=(*history, ChatMessage("user", text)), **fields
    )


async def collect(provider: Provider, request: ProviderRequest) -> list[ProviderChunk]:
    return [chunk async for chunk in provider.stream(request)]


def disconnected_since(upstream: FakeUpstream, since: float, path: str) -> list[float]:
    """Seconds after ``since`` at which clients left ``path`` mid-response."""
    return [t - since for p, t in upstream.disconnects if path in p and t >= since]


async def wait_for_disconnect(
    upstream: FakeUpstream, since: float, path: str, within: float = 1.0
) -> list[float]:
    """Wait (off the event loop) until a client left ``path`` after ``since``, for at most ``within`` s."""

    def left() -> bool:  # called by the fake with its state lock held
        return any(path in p and t >= since for p, t in upstream.state.disconnects)

    await asyncio.to_thread(upstream.state.wait_for, left, within)
    return disconnected_since(upstream, since, path)


#: Every setting the registry reads; ``clean_settings`` removes them all.
PROVIDER_SETTINGS = [
    "LLM_PROVIDER",
    "LLM_MODEL_ALIASES",
    "LLM_CONNECT_TIMEOUT",
    "LLM_READ_TIMEOUT",
    "DEMO_DELAY",
    "DEMO_MODELS",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "GEMINI_MODEL",
    "GEMINI_MODELS",
    "GEMINI_API_VERSION",
    "GEMINI_EXTRA_HEADERS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "OPENAI_MODELS",
    "OPENAI_EXTRA_HEADERS",
    "ZAI_API_KEY",
    "ZAI_BASE_URL",
    "ZAI_MODEL",
    "ZAI_MODELS",
    "ZAI_EXTRA_HEADERS",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENAI_COMPATIBLE_API_KEY",
    "OPENAI_COMPATIBLE_MODEL",
    "OPENAI_COMPATIBLE_MODELS",
]


@pytest.fixture
def clean_settings(settings: Any) -> Any:
    """No provider setting at all (pytest-django ``settings``): everything falls back to the defaults."""
    for name in PROVIDER_SETTINGS:
        if hasattr(settings, name):
            delattr(settings, name)
    return settings
