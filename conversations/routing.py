"""WebSocket URL patterns (filled by the WebSocket chat consumer)."""

websocket_urlpatterns: list = []
