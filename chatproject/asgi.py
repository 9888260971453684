"""ASGI entry point: HTTP through Django (the streaming routes beside its per-request handler,
through the same middleware: ``lean_edge.py``), WebSockets through Channels.

A NUL in a URL is refused before routing, for both protocols (``url_guard.py``).
WebSocket connections must come from an allowed host or one of ALLOWED_ORIGINS,
and carry the Django session (AuthMiddlewareStack).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.websocket import ApiKeyWebsocketMiddleware  # noqa: E402
from chatproject.body_guard import RequestBodyGuard  # noqa: E402
from chatproject.lean_edge import LeanEdge  # noqa: E402
from chatproject.lifespan import LifespanApp  # noqa: E402
from chatproject.url_guard import NulUrlGuard  # noqa: E402
from conversations.request_end import RequestEndCallbacks  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402


def allowed_websocket_origins() -> list[str]:
    """ALLOWED_HOSTS (as host patterns) plus ALLOWED_ORIGINS (scheme://host:port)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts + list(settings.ALLOWED_ORIGINS)


application = LifespanApp(
    NulUrlGuard(
        ProtocolTypeRouter(
            {
                "http": RequestBodyGuard(RequestEndCallbacks(LeanEdge(django_asgi_app))),
                "websocket": OriginValidator(
                    AuthMiddlewareStack(ApiKeyWebsocketMiddleware(URLRouter(websocket_urlpatterns))),
                    allowed_websocket_origins(),
                ),
            }
        )
    )
)
