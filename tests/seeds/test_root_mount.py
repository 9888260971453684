"""COMPAT_ROOT_DIALECT: one dialect also at the root paths, read when the root URLconf is imported."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import Resolver404, resolve

from conversations.dialects.urls import DIALECTS, root_urlpatterns
from conversations.urls import ROUTES
from conversations.views.health import health as project_health


def served(dialect, route):
    """The view the seed route table declares for ``route`` of ``dialect``."""
    return next(endpoint.view for endpoint in DIALECTS[dialect] if endpoint.route == route)


SEED_PATHS = {
    "gemini-gateway": {
        "/api/chat": served("gemini-gateway", "api/chat"),
        "/api/chat/stream": served("gemini-gateway", "api/chat/stream"),
    },
    "coding-agent": {
        "/api/chat/stream": served("coding-agent", "api/chat/stream"),
        "/health": served("coding-agent", "health"),
    },
    "zai": {"/api/chat": served("zai", "api/chat"), "/health": served("zai", "health")},
    "layercode": {"/agent": served("layercode", "agent")},
    "chat-api": {
        "/api/chat/stream": served("chat-api", "api/chat/stream"),
        "/health": served("chat-api", "health"),
    },
}
SESSION_MESSAGES = next(endpoint.view for endpoint in ROUTES if endpoint.name == "session-messages")


def view_at(path, settings):
    return resolve(path, urlconf=settings.ROOT_URLCONF).func


def test_without_the_setting_nothing_is_mounted_at_the_root(settings):
    assert getattr(settings, "COMPAT_ROOT_DIALECT", "") == ""
    for path in ("/api/chat", "/agent", "/api/structured"):
        with pytest.raises(Resolver404):
            view_at(path, settings)
    assert view_at("/health", settings) is project_health


@pytest.mark.parametrize("name", list(DIALECTS))
def test_every_dialect_is_served_under_its_prefix(settings, name):
    for path, view in SEED_PATHS[name].items():
        assert view_at(f"/compat/{name}{path}", settings) is view


@pytest.mark.parametrize("name", list(DIALECTS))
def test_the_root_dialect_serves_its_paths_at_the_root(settings, root_mount, name):
    root_mount(name)
    for path, view in SEED_PATHS[name].items():
        assert view_at(path, settings) is view
    if "/health" not in SEED_PATHS[name]:
        assert view_at("/health", settings) is project_health
    assert view_at("/api/sessions/s-1/messages", settings) is SESSION_MESSAGES
    assert view_at(f"/compat/{name}{next(iter(SEED_PATHS[name]))}", settings) is not None


def test_root_urlpatterns_reads_the_setting_when_called(settings):
    settings.COMPAT_ROOT_DIALECT = "layercode"
    assert [str(p.pattern) for p in root_urlpatterns()] == ["agent"]
    settings.COMPAT_ROOT_DIALECT = ""
    assert root_urlpatterns() == []


def test_an_unknown_root_dialect_stops_start_up_with_the_accepted_names():
    with pytest.raises(ImproperlyConfigured, match=r"COMPAT_ROOT_DIALECT='claude'.*gemini-gateway"):
        root_urlpatterns("claude")
