"""What the server will do, said once at start-up (logger ``chatproject.startup``).

An operator reading the first lines of the log should know, without opening the settings: which
database, channel layer and attachment storage the process uses, which providers answer (and, in production, that none
can because no key is set), whether plain HTTP is redirected to HTTPS, and which forwarded headers
it believes. A setting that commonly surprises (a redirect to HTTPS without TLS, a proxy it does not
believe) is stated as such.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger("chatproject.startup")


def _database() -> str:
    conf = settings.DATABASES["default"]
    if conf["ENGINE"].endswith("sqlite3"):
        return f"SQLite {conf['NAME']} (one writer at a time; set DATABASE_URL for PostgreSQL)"
    pool = "pooled" if conf.get("OPTIONS", {}).get("pool") else "not pooled (DATABASE_POOL=true pools)"
    return f"PostgreSQL {conf.get('HOST') or 'localhost'}:{conf.get('PORT') or 5432}/{conf['NAME']}, {pool}"


def _channel_layer() -> str:
    if not settings.REDIS_URL:
        return "in-memory (one process only; set REDIS_URL to share sockets and resume across processes)"
    url = urlsplit(settings.REDIS_URL)
    return f"Redis {url.hostname}:{url.port or 6379}"


def _providers() -> tuple[str, bool]:
    """The providers line, and whether a turn can be answered at all."""
    from providers.registry import get_registry

    registry = get_registry()
    usable = [
        n for n in registry.names(configured_only=True) if n != "demo" or settings.DEMO_PROVIDER_ALLOWED
    ]
    default = registry.default
    if default == "demo" and not settings.DEMO_PROVIDER_ALLOWED:
        return (
            "none: no provider key is set (GEMINI_API_KEY, OPENAI_API_KEY, ZAI_API_KEY or "
            "OPENAI_COMPATIBLE_BASE_URL) and the offline demo answers in production only with "
            "LLM_PROVIDER=demo; every turn will fail",
            False,
        )
    return f"default {default}; configured: {', '.join(usable) or 'none'}", bool(usable)


def _attachments() -> str:
    """Where uploaded files are kept (``ATTACHMENT_STORAGE``)."""
    options = settings.STORAGES["attachments"].get("OPTIONS", {})
    if settings.ATTACHMENT_STORAGE == "s3":
        where = options.get("endpoint_url") or "AWS"
        return (
            f"S3 bucket {options.get('bucket_name')} ({where}), prefix {options.get('location') or '(none)'}"
        )
    return (
        f"the filesystem at {options.get('location')} (one host, or a directory every host shares; "
        "ATTACHMENT_STORAGE=s3 for object storage)"
    )


def _https() -> str:
    if not settings.SECURE_SSL_REDIRECT:
        return "plain HTTP is served as it is (SECURE_SSL_REDIRECT=false)"
    trusted = settings.SECURE_PROXY_SSL_HEADER is not None
    behind = (
        "a request is HTTPS when the proxy says so (X-Forwarded-Proto, TRUST_X_FORWARDED_PROTO=true)"
        if trusted
        else "without TRUST_X_FORWARDED_PROTO=true, requests through a TLS-terminating proxy look like "
        "plain HTTP and the redirect loops"
    )
    return f"plain HTTP is redirected to HTTPS (SECURE_SSL_REDIRECT=true; false to try it locally); {behind}"


def _proxies() -> str:
    hops = settings.TRUSTED_PROXIES
    if hops == 0:
        return "no proxy believed: the client address is the socket's peer (TRUSTED_PROXIES=0)"
    return f"the client address is the X-Forwarded-For entry {hops} hop(s) from the right (TRUSTED_PROXIES={hops})"


def report() -> None:
    """Log the process's configuration, a line each, at INFO (a deployment that cannot answer: WARNING)."""
    providers, answers = _providers()
    mode = "DEBUG (development only)" if settings.DEBUG else "production (DEBUG off)"
    logger.info("mode: %s; hosts: %s", mode, ", ".join(settings.ALLOWED_HOSTS) or "none")
    logger.info("database: %s", _database())
    logger.info("channel layer: %s", _channel_layer())
    logger.info("attachments: %s", _attachments())
    logger.log(logging.INFO if answers else logging.WARNING, "providers: %s", providers)
    logger.info("https: %s", _https())
    logger.info("proxies: %s", _proxies())
