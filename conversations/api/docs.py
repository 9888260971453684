"""The OpenAPI schema (``/api/schema/``) and Swagger UI (``/api/docs/``), visible as ``API_DOCS`` says.

``API_DOCS`` is ``public``, ``authenticated`` (a logged-in user, a personal API key or the shared
``API_KEY``), ``staff`` or ``off``: refused callers get the API's JSON errors (401, 403; 404 when
off), never the schema renderer's YAML or the docs page's HTML. Swagger UI's files come from
drf-spectacular-sidecar (static files of this server) and its init script is a file of its own
(``?script``), so the page runs under ``script-src 'self'`` with no inline script or style.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response


class ApiDocsVisible(BasePermission):
    """The caller may read the schema and the docs under the ``API_DOCS`` setting."""

    def has_permission(self, request: Request, view: Any) -> bool:
        visibility = settings.API_DOCS
        if visibility == "public":
            return True
        if visibility == "off":
            raise exceptions.NotFound(
                "The API schema and docs are turned off on this server (API_DOCS=off); see docs/api.md."
            )
        user = request.user
        signed_in = user is not None and user.is_authenticated
        if not signed_in and request.auth is None:
            raise exceptions.NotAuthenticated(
                f"The API schema and docs are for signed-in callers here (API_DOCS={visibility}): "
                "log in, or send an API key (X-API-Key or Authorization: Bearer)."
            )
        if visibility == "staff" and not (signed_in and user.is_staff):
            raise exceptions.PermissionDenied(
                "The API schema and docs are for staff here (API_DOCS=staff): log in as a staff user."
            )
        return True


class JsonErrorsMixin:
    """Errors in the API's JSON shape, whatever renderer (YAML, HTML, JavaScript) the view answers with."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class ApiSchemaView(JsonErrorsMixin, SpectacularAPIView):
    permission_classes = [ApiDocsVisible]


class ApiDocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI with its styles in a stylesheet (templates/api/docs.html) rather than a ``<style>``."""

    permission_classes = [ApiDocsVisible]
    template_name = "api/docs.html"
