"""The seed mounts' route table: each dialect under ``/compat/<name>/``, and one optionally at the root.

Each endpoint is declared once, protocol → codec → caller rule (the mount's access rule,
:mod:`.access`) → lookups; Django's URL patterns and the lean edge's streaming marks are made from
it (:mod:`conversations.routes.table`). ``urlpatterns`` is included at ``compat/`` by the root
URLconf. ``root_urlpatterns()`` gives the paths of the dialect named by ``COMPAT_ROOT_DIALECT``
(empty: none), for clients whose base URL cannot carry a prefix; the root URLconf lists them before
its own ``health`` so a dialect's ``/health`` wins. Evaluated when the root URLconf is imported:
changing the setting needs a restart.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, include, path

from conversations.codecs.base import Codec
from conversations.codecs.chat_api import ChatApiCodec
from conversations.codecs.coding_agent import CodingAgentCodec
from conversations.codecs.gemini_gateway import GeminiGatewayCodec
from conversations.codecs.layercode import LayercodeCodec, Voice
from conversations.codecs.zai import ZaiCodec
from conversations.dialects import chat_api, coding_agent, gemini_gateway, layercode, zai
from conversations.dialects.access import mount_caller
from conversations.dialects.sessions import asession_key_for_answer
from conversations.routes.pipeline import Route
from conversations.routes.table import Endpoint, turn, url_patterns


def mount_route(name: str, codec: Codec, **options: Any) -> Route:
    """A turn route of the mount ``name``: its access rule decides who calls; its budget applies."""
    caller = partial(mount_caller, dialect=name)
    return Route(codec, caller=caller, session_for_answer=asession_key_for_answer, mount=name, **options)


def _gemini(mode: str) -> Route:
    codec = GeminiGatewayCodec(mode, gemini_gateway.choice, gemini_gateway.forwarded_headers)
    return mount_route(gemini_gateway.NAME, codec)


_voice = Voice(layercode.choice, layercode.system_prompt, layercode.greeting, layercode.fallback)
GET = ("GET",)

DIALECTS: dict[str, list[Endpoint]] = {
    gemini_gateway.NAME: [
        turn("api/chat", _gemini("chat")),
        turn("api/chat/stream", _gemini("stream")),
        turn("api/structured", _gemini("structured")),
    ],
    coding_agent.NAME: [
        turn("api/chat/stream", mount_route(coding_agent.NAME, CodingAgentCodec(coding_agent.choice))),
        Endpoint("health", coding_agent.health, methods=GET),
    ],
    zai.NAME: [
        turn("api/chat", mount_route(zai.NAME, ZaiCodec(zai.provider_name, zai.model_name))),
        Endpoint("health", zai.health, methods=GET),
    ],
    layercode.NAME: [
        turn("agent", mount_route(layercode.NAME, LayercodeCodec(_voice), start=layercode.start)),
    ],
    chat_api.NAME: [
        turn("api/chat/stream", mount_route(chat_api.NAME, ChatApiCodec(chat_api.choice))),
        Endpoint("health", chat_api.health, methods=GET),
    ],
}


_PATTERNS = {name: url_patterns(table) for name, table in DIALECTS.items()}


def dialect_urlpatterns(name: str) -> list[URLPattern]:
    """The paths of one dialect, relative to where it is mounted."""
    return list(_PATTERNS[name])


urlpatterns = [path(f"{name}/", include(dialect_urlpatterns(name))) for name in DIALECTS]


def root_urlpatterns(dialect: str | None = None) -> list[URLPattern]:
    """The paths of ``dialect`` (default: ``COMPAT_ROOT_DIALECT``) to serve at the root."""
    name = getattr(settings, "COMPAT_ROOT_DIALECT", "") if dialect is None else dialect
    name = (name or "").strip()
    if not name:
        return []
    if name not in DIALECTS:
        known = ", ".join(DIALECTS)
        raise ImproperlyConfigured(
            f"COMPAT_ROOT_DIALECT={name!r} is not a dialect: use one of {known}, or leave it empty."
        )
    return dialect_urlpatterns(name)
