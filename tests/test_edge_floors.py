"""The edge in two floors (docs/architecture.md): the HTTP kit below the codecs imports nothing of the
app, the pipeline above them imports no view or dialect, the turn core imports no edge, and every
route is declared once in a route table (no view marks itself)."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from conversations.dialects.urls import DIALECTS
from conversations.routes.pipeline import Route
from conversations.routes.table import STREAMING_METHODS
from conversations.urls import ROUTES
from tests.test_imports import import_graph


def imports_of(prefix: str) -> dict[str, set[str]]:
    return {module: targets for module, targets in import_graph().items() if module.startswith(prefix)}


def test_the_http_kit_imports_nothing_of_the_app_but_itself():
    outside = {
        f"{module} -> {target}"
        for module, targets in imports_of("conversations.edge").items()
        for target in targets
        if not target.startswith("conversations.edge")
    }
    assert outside == set()


def test_the_pipeline_floor_imports_no_view_or_dialect():
    upward = {
        f"{module} -> {target}"
        for module, targets in imports_of("conversations.routes").items()
        for target in targets
        if target.startswith(("conversations.views", "conversations.dialects"))
    }
    assert upward == set()


@pytest.mark.parametrize("forbidden", ["conversations.codecs", "conversations.views", "conversations.edge"])
def test_the_turn_core_imports_no_edge(forbidden):
    upward = {
        f"{module} -> {target}"
        for module, targets in imports_of("conversations.turns").items()
        for target in targets
        if target.startswith(forbidden)
    }
    assert upward == set()


def test_the_views_a_table_serves_carry_no_decorators_of_their_own():
    """Methods, CSRF exemption and the streaming mark come from the route tables only."""
    decorated = [
        f"{endpoint.route}: {endpoint.serve.__name__}"
        for table in [ROUTES, *DIALECTS.values()]
        for endpoint in table
        if not isinstance(endpoint.serve, Route)
        and (
            hasattr(endpoint.serve, "__wrapped__")
            or getattr(endpoint.serve, "csrf_exempt", False)
            or hasattr(endpoint.serve, STREAMING_METHODS)
        )
    ]
    assert decorated == []


def test_every_turn_route_is_served_by_the_lean_edge_for_post():
    tables = [ROUTES, *DIALECTS.values()]
    turn_routes = [e for table in tables for e in table if isinstance(e.serve, Route)]
    assert len(turn_routes) == 13  # 6 native + 7 seed
    for endpoint in turn_routes:
        assert "POST" in getattr(endpoint.view, STREAMING_METHODS)


def test_the_table_feeds_django_url_resolution():
    match = get_resolver().resolve("/v1/chat/completions")
    assert getattr(match.func, STREAMING_METHODS) == frozenset({"POST"})
    assert match.url_name == "openai-chat-completions"
    match = get_resolver().resolve("/compat/zai/health")
    assert getattr(match.func, STREAMING_METHODS, None) is None
