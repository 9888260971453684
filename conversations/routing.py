"""WebSocket URL patterns."""

from django.urls import path

from conversations.ai_sdk_socket import AISDKChatConsumer
from conversations.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:session_key>/", ChatConsumer.as_asgi()),
    path("ws/ai-sdk/chat", AISDKChatConsumer.as_asgi()),
]
