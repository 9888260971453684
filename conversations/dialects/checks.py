"""Deploy check: an open seed mount needs per-client rate limits, which need Redis."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from conversations.dialects.access import access_variable, mount_access


@register(Tags.security, deploy=True)
def check_open_mounts_are_rate_limited(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.REDIS_URL:
        return []
    return [
        Error(
            f"/compat/{dialect}/ is open to anyone ({access_variable(dialect)}=anonymous) but REDIS_URL "
            "is not set, so its callers are not rate limited.",
            hint="Set REDIS_URL, or close the mount (=closed) or require a key (=api_key).",
            id="compat.E001",
        )
        for dialect in settings.COMPAT_DIALECTS
        if mount_access(dialect) == "anonymous"
    ]
