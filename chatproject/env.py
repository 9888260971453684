"""Typed reading of environment variables for settings.

django-environ does the parsing; this module turns its errors (and values
outside the accepted range) into one ``ImproperlyConfigured`` that names the
variable and the accepted form, so a bad deployment stops at start-up with a
message that says what to fix.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()


def read_env_file(path: str) -> bool:
    """Load ``path`` (a ``.env`` file: ``NAME=value`` lines) into the environment, without
    overwriting a variable that is already set: the real environment wins. An empty path or a
    missing file reads nothing. Returns whether a file was read."""
    if not path or not os.path.isfile(path):
        return False
    environ.Env.read_env(path, overwrite=False)
    return True


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def invalid(name: str, value: object, form: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is not valid: expected {form}.")


def env_str(name: str, default: str = "") -> str:
    return env.str(name, default=default).strip()


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower() or default
    if value not in choices:
        raise invalid(name, value, " or ".join(choices))
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    if raw.lower() in environ.Env.BOOLEAN_TRUE_STRINGS:
        return True
    if raw.lower() in ("false", "off", "no", "n", "0", ""):
        return False
    raise invalid(name, raw, "true or false (also 1/0, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, raw, "a whole number") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" if minimum is not None else ""
        bounds += f" to {maximum}" if maximum is not None else " or more"
        raise invalid(name, raw, f"a whole number {bounds}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise invalid(name, raw, "a number of seconds such as 2.5") from None
    if value < minimum:
        raise invalid(name, raw, f"a number ≥ {minimum}")
    return value


def parse_list(name: str, raw: str) -> list[str]:
    """A JSON array of strings or a comma-separated list (as seed 001 accepts)."""
    raw = raw.strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError:
            raise invalid(
                name, raw, 'a JSON array of strings such as ["a","b"] or a comma-separated list'
            ) from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise invalid(name, raw, "a JSON array of strings")
        return [i.strip() for i in items if i.strip()]
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = env.str(name, default="")
    return parse_list(name, raw) if raw.strip() else list(default or [])


def parse_origins(name: str, raw: str) -> list[str]:
    """Origins such as ``https://app.example.com`` or ``http://localhost:5173``; ``*`` allows all."""
    origins = parse_list(name, raw)
    form = 'origins like "https://app.example.com" or "http://localhost:5173" (scheme, host, optional port)'
    for origin in origins:
        if origin == "*":
            continue
        parsed = urlparse(origin)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/"):
            raise invalid(name, origin, form)
        if parsed.query or parsed.fragment or parsed.username:
            raise invalid(name, origin, form)
        try:
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise invalid(name, origin, form) from None
    return [o.rstrip("/") for o in origins]


def env_json_object(name: str) -> dict[str, Any]:
    raw = env.str(name, default="").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise invalid(name, raw, 'a JSON object such as {"key": "value"}') from None
    if not isinstance(value, dict):
        raise invalid(name, raw, 'a JSON object such as {"key": "value"}')
    return value


def env_log_level(name: str = "LOG_LEVEL", default: str = "INFO") -> str:
    raw = env.str(name, default=default).strip().upper() or default
    if raw not in LOG_LEVELS or not isinstance(logging.getLevelName(raw), int):
        raise invalid(name, raw, "one of " + ", ".join(LOG_LEVELS))
    return raw


def env_rate(name: str, default: str) -> str:
    """A rate such as ``60/minute`` or ``20/60 seconds`` (the ``limits`` library's syntax); empty: none."""
    import limits

    raw = env.str(name, default=default).strip()
    try:
        if raw:
            limits.parse(raw)
    except ValueError:
        raise invalid(name, raw, 'a rate such as "60/minute" or "20/60 seconds", or empty for none') from None
    return raw


def env_database(name: str = "DATABASE_URL", default: str = "") -> dict[str, Any]:
    raw = env.str(name, default="").strip() or default
    try:
        config = environ.Env.db_url_config(raw)
    except Exception:
        raise invalid(name, raw.split("@")[-1], "a URL like postgres://user:pass@host:5432/dbname") from None
    if not config.get("ENGINE") or not config.get("NAME"):
        raise invalid(name, raw.split("@")[-1], "a URL like postgres://user:pass@host:5432/dbname")
    return config


def env_redis_url(name: str = "REDIS_URL") -> str:
    raw = env.str(name, default="").strip()
    if raw and urlparse(raw).scheme not in ("redis", "rediss", "unix"):
        raise invalid(name, raw.split("@")[-1], "a URL like redis://host:6379/0")
    return raw
