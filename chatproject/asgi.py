"""ASGI entry point: HTTP through Django (the streaming routes beside its per-request handler,
through the same middleware: ``lean_edge.py``), WebSockets through Channels.

A NUL in a URL is refused before routing, for both protocols (``url_guard.py``).
WebSocket connections must come from a page of the server's own origin or one of ALLOWED_ORIGINS,
compared whole (``websocket_origin.py``), and carry the Django session (AuthMiddlewareStack).
With ``TURN_TIMING=1`` (the bench's), the turn stage clock goes outermost (``stage_clock.py``).
"""

import os

from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
try:
    django_asgi_app = get_asgi_application()
except ImproperlyConfigured as exc:  # a setting to fix: one line naming it, not a traceback
    raise SystemExit(f"chatproject.asgi: {exc}") from None

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter

from accounts.websocket import ApiKeyWebsocketMiddleware
from chatproject.body_guard import RequestBodyGuard
from chatproject.lean_edge import LeanEdge
from chatproject.lifespan import LifespanApp
from chatproject.url_guard import NulUrlGuard
from chatproject.websocket_origin import SameOriginValidator
from conversations.request_end import RequestEndCallbacks
from conversations.sockets.routing import websocket_urlpatterns
from conversations.sockets.tickets import TicketWebsocketMiddleware
from conversations.telemetry import stages

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
if stages.on:  # the turn stage clock (TURN_TIMING=1, bench/waterfall.py); off, not in the stack
    from chatproject.stage_clock import StageClockApp

    application = StageClockApp(application)
