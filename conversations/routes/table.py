"""Route tables: each HTTP endpoint declared once, as data, and Django's URL patterns made from it.

An :class:`Endpoint` is a path served either by the turn pipeline (a :class:`Route`: protocol →
codec → caller rule → lookups) or by a plain view. :func:`url_patterns` turns a table into Django
``path()`` entries: the view a Route needs is made here, the methods are enforced here, and the
methods the lean edge serves (``chatproject/lean_edge.py``) are marked on the view here — no view
carries decorators of its own for these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conversations.routes.pipeline import Route, turn_pipeline

# The attribute naming the methods for which a view is served by the lean edge.
STREAMING_METHODS = "streaming_methods"


@dataclass(frozen=True)
class Endpoint:
    """One path and what serves it.

    ``serve`` is a turn :class:`Route` (the pipeline answers; ``methods`` default ``POST``) or a
    view. ``methods`` are the methods allowed (``None``: the view decides). ``streaming`` are the
    methods served beside Django's per-request handler (the lean edge); for a Route, all of its
    methods. ``csrf_exempt``: the caller rule checks CSRF itself (a session caller must send the
    token; an API key needs none) or the endpoint only reads. ``otherwise``: the view for the
    methods a Route does not take (a collection that lists on ``GET`` and starts a turn on ``POST``).
    """

    route: str
    serve: Route | Callable[..., Any]
    name: str | None = None
    methods: tuple[str, ...] | None = None
    streaming: tuple[str, ...] | None = None
    csrf_exempt: bool = True
    otherwise: Callable[..., Any] | None = None
    view: Callable[..., Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "view", _view_of(self))


def turn(route: str, serve: Route, name: str | None = None) -> Endpoint:
    """A turn-starting endpoint: ``POST``, served by the lean edge."""
    return Endpoint(route, serve, name, methods=("POST",), streaming=("POST",))


def _view_of(endpoint: Endpoint) -> Callable[..., Any]:
    serve = endpoint.serve
    if isinstance(serve, Route):
        otherwise = endpoint.otherwise

        async def view(request: HttpRequest, **params: Any) -> HttpResponse:
            if otherwise is not None and request.method != "POST":
                return await otherwise(request, **params)
            return await turn_pipeline(request, serve, **{k: str(v) for k, v in params.items()})

        view.__name__ = view.__qualname__ = f"turn_{endpoint.name or endpoint.route}".replace("-", "_")
    else:
        view = serve
    if endpoint.methods is not None:
        view = require_http_methods(list(endpoint.methods))(view)
    if endpoint.csrf_exempt:
        view = csrf_exempt(view)
    if endpoint.streaming:
        setattr(view, STREAMING_METHODS, frozenset(endpoint.streaming))
    return view


def url_patterns(table: Iterable[Endpoint]) -> list[URLPattern]:
    """Django's URL patterns for a route table, in its order."""
    return [path(e.route, e.view, name=e.name) for e in table]
