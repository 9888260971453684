"""Where the dialects are served: each under ``/compat/<name>/``, and one optionally at the root.

``urlpatterns`` is included at ``compat/`` by the root URLconf. ``root_urlpatterns()`` gives the
paths of the dialect named by ``COMPAT_ROOT_DIALECT`` (empty: none), for clients whose base URL
cannot carry a prefix; the root URLconf lists them before its own ``health`` so a dialect's
``/health`` wins. Evaluated when the root URLconf is imported: changing the setting needs a restart.
"""

from __future__ import annotations

from types import ModuleType

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, include, path

from conversations.dialects import chat_api, coding_agent, gemini_gateway, layercode, zai

DIALECTS: dict[str, ModuleType] = {
    gemini_gateway.NAME: gemini_gateway,
    coding_agent.NAME: coding_agent,
    zai.NAME: zai,
    layercode.NAME: layercode,
    chat_api.NAME: chat_api,
}

urlpatterns = [path(f"{name}/", include(module.urlpatterns)) for name, module in DIALECTS.items()]


def root_urlpatterns(dialect: str | None = None) -> list[URLPattern]:
    """The paths of ``dialect`` (default: ``COMPAT_ROOT_DIALECT``) to serve at the root."""
    name = getattr(settings, "COMPAT_ROOT_DIALECT", "") if dialect is None else dialect
    name = (name or "").strip()
    if not name:
        return []
    module = DIALECTS.get(name)
    if module is None:
        known = ", ".join(DIALECTS)
        raise ImproperlyConfigured(
            f"COMPAT_ROOT_DIALECT={name!r} is not a dialect: use one of {known}, or leave it empty."
        )
    return list(module.urlpatterns)
