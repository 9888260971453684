"""Fixtures for the seed dialects: providers on the fake upstream, seed clients, the root mount."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

import chatproject.urls


@pytest.fixture(autouse=True)
def no_turn_rate_limit(settings):
    """The suite shares one Redis (and one client IP) across tests: only the test of it limits."""
    settings.RATE_LIMIT_TURNS = ""


def fast_retries(settings) -> None:
    settings.LLM_READ_TIMEOUT = 5.0
    settings.LLM_RETRY_ATTEMPTS = 0
    settings.LLM_RETRY_BACKOFF = 0.01
    settings.LLM_FALLBACKS = []


@pytest.fixture
def gemini_upstream(upstream, settings):
    """LLM_PROVIDER=gemini (google-genai) pointed at the fake upstream."""
    settings.LLM_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = "gemini-test-key"
    settings.GEMINI_BASE_URL = upstream.gemini_base_url
    fast_retries(settings)
    return upstream


@pytest.fixture
def zai_upstream(upstream, settings):
    """The zai provider (zai-sdk) pointed at the fake upstream; LLM_PROVIDER stays whatever it is."""
    settings.ZAI_API_KEY = "id.secret"
    settings.ZAI_BASE_URL = upstream.zai_base_url
    fast_retries(settings)
    return upstream


@pytest.fixture
def responses_upstream(openai_upstream, settings):
    """LLM_PROVIDER=openai-responses (the Responses API, chaining previous_response_id)."""
    settings.LLM_PROVIDER = "openai-responses"
    return openai_upstream


def seed_client(asgi_server, base_path: str):
    return httpx.Client(base_url=asgi_server.url + base_path, timeout=20)


@pytest.fixture
def root_mount(settings):
    """``root_mount("zai")``: serve a fresh import of ``chatproject/urls.py`` made with
    ``COMPAT_ROOT_DIALECT`` set, as a restarted server would (the mount is read at import time).

    The real ``chatproject.urls`` module is left alone: the copy is a module of its own, made the
    ``ROOT_URLCONF`` for the test (Django sets the URLconf per request, server thread included).
    """
    names: list[str] = []

    def mount(dialect: str) -> None:
        settings.COMPAT_ROOT_DIALECT = dialect
        name = f"tests.seeds._root_urlconf_{dialect.replace('-', '_')}"
        spec = importlib.util.spec_from_file_location(name, Path(chatproject.urls.__file__))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        names.append(name)
        spec.loader.exec_module(module)
        settings.ROOT_URLCONF = name

    yield mount
    for name in names:
        sys.modules.pop(name, None)
