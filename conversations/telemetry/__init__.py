"""OpenTelemetry GenAI telemetry of turns: spans per turn and per provider attempt, GenAI metrics.

:func:`current` is what a turn reports to: built from settings on first use (or at start-up, by
the lifespan), it is the do-nothing :data:`~conversations.telemetry.base.NO_TELEMETRY` unless an
``OTEL_*`` exporter or ``METRICS_ENABLED`` asks for telemetry — then, and only then, the
OpenTelemetry SDK is imported (:mod:`~conversations.telemetry.setup`). docs/telemetry.md says
what is exported.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from conversations.telemetry.base import NO_TELEMETRY, Telemetry

_active: Telemetry | None = None
_lock = threading.Lock()

SETTINGS = ("OTEL_", "METRICS_")


def current() -> Telemetry:
    """The process's telemetry (built from settings on first call)."""
    active = _active
    return active if active is not None else configure()


def wanted() -> bool:
    """Whether the settings ask for any telemetry (``OTEL_SDK_DISABLED`` overrides them all)."""
    from django.conf import settings

    if settings.OTEL_SDK_DISABLED:
        return False
    return bool(settings.OTEL_TRACES_EXPORTER or settings.OTEL_METRICS_EXPORTER or settings.METRICS_ENABLED)


def configure() -> Telemetry:
    """Build the telemetry the settings ask for, once per process (until :func:`shutdown`)."""
    global _active
    with _lock:
        if _active is None:
            if wanted():
                from conversations.telemetry.setup import telemetry_from_settings

                _active = telemetry_from_settings()
            else:
                _active = NO_TELEMETRY
        return _active


def install(telemetry: Telemetry | None) -> Telemetry | None:
    """Use ``telemetry`` from now on (``None``: build from settings again); return the one replaced.

    For tests, which hand in one built on the SDK's in-memory exporter and reader.
    """
    global _active
    with _lock:
        previous, _active = _active, telemetry
    return previous


def shutdown() -> None:
    """Flush and stop the telemetry in use; the next :func:`current` builds it from settings again."""
    previous = install(None)
    if previous is not None:
        previous.shutdown()


@receiver(setting_changed)
def _rebuild_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(SETTINGS):
        shutdown()
