"""Which pages may open a WebSocket here: the server's own origin and ALLOWED_ORIGINS, whole.

A browser sends the Origin of the page that opens a socket and cookies ride along, so a socket
from a foreign page would act with the user's session (cross-site WebSocket hijacking). Channels'
``OriginValidator`` matches ALLOWED_HOSTS as bare host names, ignoring scheme and port: any page on
``http://127.0.0.1:<any port>`` could open ``ws://127.0.0.1:8000``. Here an origin is compared
whole — scheme, host and port (default ports filled in) — with:

- the origin the socket was opened on: its ``Host`` header (which must be one of ALLOWED_HOSTS)
  with ``ws`` → ``http``, ``wss`` → ``https`` (``X-Forwarded-Proto: https`` counts when
  ``TRUST_X_FORWARDED_PROTO`` is on, for a TLS-terminating proxy);
- each of ALLOWED_ORIGINS (``*`` there allows any origin, and no Origin header, as before).

A socket without an Origin header (not a browser) is refused unless ``*`` is allowed: non-browser
clients send the server's own origin (or one of ALLOWED_ORIGINS), as the bundled clients do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """``(scheme, host, port)`` of an ``http(s)://host[:port]`` origin; None for anything else."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def own_origin(scope: dict[str, Any], headers: dict[bytes, list[bytes]]) -> Origin | None:
    """The origin this socket was opened on, when its Host is one of ALLOWED_HOSTS."""
    hosts = headers.get(b"host", [])
    if len(hosts) != 1:
        return None
    host = hosts[0].decode("latin1").strip().lower()
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    secure = scope.get("scheme") == "wss"
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = headers.get(b"x-forwarded-proto", [b""])[-1].decode("latin1")
        secure = secure or forwarded.split(",")[0].strip().lower() == "https"
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def origin_allowed(scope: dict[str, Any]) -> bool:
    headers: dict[bytes, list[bytes]] = {}
    for name, value in scope.get("headers", []):
        headers.setdefault(name.lower(), []).append(value)
    allowed = list(settings.ALLOWED_ORIGINS)
    if "*" in allowed:
        return True
    origins = headers.get(b"origin", [])
    if len(origins) != 1:
        return False
    origin = parse_origin(origins[0].decode("latin1"))
    if origin is None:
        return False
    return origin == own_origin(scope, headers) or origin in {parse_origin(o) for o in allowed}


class SameOriginValidator:
    """Let a WebSocket through only from an allowed origin (see the module docstring); else 403."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator is for WebSocket connections only")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
