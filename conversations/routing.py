"""WebSocket URL patterns."""

from django.urls import path

from conversations.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:session_key>/", ChatConsumer.as_asgi()),
]
