"""ASGI entry point: HTTP through Django (the streaming routes beside its per-request handler,
through the same middleware: ``lean_edge.py``), WebSockets through Channels.

A NUL in a URL is refused before routing, for both protocols (``url_guard.py``).
WebSocket connections must come from a page of the server's own origin or one of ALLOWED_ORIGINS,
compared whole (``websocket_origin.py``), and carry the Django session (AuthMiddlewareStack).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.websocket import ApiKeyWebsocketMiddleware  # noqa: E402
from chatproject.body_guard import RequestBodyGuard  # noqa: E402
from chatproject.lean_edge import LeanEdge  # noqa: E402
from chatproject.lifespan import LifespanApp  # noqa: E402
from chatproject.url_guard import NulUrlGuard  # noqa: E402
from chatproject.websocket_origin import SameOriginValidator  # noqa: E402
from conversations.request_end import RequestEndCallbacks  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402
from conversations.ws_tickets import TicketWebsocketMiddleware  # noqa: E402

application = LifespanApp(
    NulUrlGuard(
        ProtocolTypeRouter(
            {
                "http": RequestBodyGuard(RequestEndCallbacks(LeanEdge(django_asgi_app))),
                "websocket": SameOriginValidator(
                    AuthMiddlewareStack(
                        ApiKeyWebsocketMiddleware(TicketWebsocketMiddleware(URLRouter(websocket_urlpatterns)))
                    )
                ),
            }
        )
    )
)
