"""WebSocket URL patterns."""

from django.urls import path

from conversations.sockets.ai_sdk import AISDKChatConsumer
from conversations.sockets.chat import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:session_key>/", ChatConsumer.as_asgi()),
    path("ws/ai-sdk/chat", AISDKChatConsumer.as_asgi()),
]
