"""What every dialect mount shares: its settings. (Its session keys, ``<dialect>:<client id>``,
are made by :func:`conversations.codecs.base.mount_session_key`.)

* ``COMPAT_<DIALECT>_PROVIDER`` / ``COMPAT_<DIALECT>_MODEL`` (``<DIALECT>`` is the name in upper
  case with ``_`` for ``-``) pick the provider and model of a dialect's turns; empty means the
  dialect's default (``LLM_PROVIDER`` and the provider's default model unless the dialect says).
"""

from __future__ import annotations

from django.conf import settings


def dialect_variable(dialect: str, name: str) -> str:
    """The name of a dialect's setting: ``COMPAT_<DIALECT>_<NAME>`` (``-`` as ``_``)."""
    return f"COMPAT_{dialect.upper().replace('-', '_')}_{name}"


def dialect_setting(dialect: str, name: str, default: str = "") -> str:
    """``COMPAT_<DIALECT>_<NAME>`` from settings, or ``default`` when unset or empty."""
    value = getattr(settings, dialect_variable(dialect, name), None)
    return default if value is None or value == "" else str(value)
