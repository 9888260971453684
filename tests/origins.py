"""The Origin a browser page served by a test server sends (the WebSocket Origin check compares it whole)."""

from urllib.parse import urlsplit


def page_origin(url: str) -> str:
    """``http://127.0.0.1:8123`` for ``ws://127.0.0.1:8123/ws/chat/x/`` (or any URL of that server)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"
