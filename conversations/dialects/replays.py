"""Signed requests seen within their window: a replayed Layercode webhook never starts a turn.

A signed request is accepted again as long as its signature is in the window (300 s either way,
:mod:`.signature`). Every replay of it names the same turn — its ``turn_id``, or without one an
id taken from the signature (:class:`~conversations.codecs.layercode.SignedCaller`) — so the turn
service's idempotency answers it with the original's answer: replayed from storage when
finished, joined (or awaited, in another process) while it streams; never a second provider call.

What this module adds is the memory of the requests themselves, for as long as their signature
is valid: the first sight of a request (``SET NX`` under a hash of its signature, the time left
in the window as TTL) records its state — ``opening``, then ``opened`` or ``refused``. A replay
waits while its original is opening, then goes to its answer; the replay of a request that was
refused (rate limit, budget, provider down…) is refused in turn (the fallback is spoken), so a
replay never becomes a turn of its own, even once the cause of the refusal is gone.

Where the memory lives:

* ``REDIS_URL`` set: Redis, shared by every process.
* Without Redis (the embedded default): this process's memory, at most :data:`LOCAL_LIMIT`
  requests (the oldest forgotten first). With several processes and no Redis each remembers
  its own requests: a replay that reaches another process is a first sight there, and is still
  answered from storage by the turn's idempotency (the database is shared) — only the refusal
  of a refused request's replay is per process.
* Redis set but unreachable: **fail open**, as the rate limits do (a warning at most once a
  minute). A request counts as first seen, so the turn's idempotency still answers a replay
  from storage; what is lost for the outage is the refusal of a refused request's replay.
  Failing closed would silence every voice call while Redis is down.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict

from django.conf import settings

from conversations.redis_client import redis_client

logger = logging.getLogger(__name__)

OPENING, OPENED, REFUSED = "opening", "opened", "refused"
LOCAL_LIMIT = 10_000  # requests remembered by one process without Redis
WARN_INTERVAL = 60.0
_KEY = "chat:layercode-request:"
_local: OrderedDict[str, tuple[float, str]] = OrderedDict()  # replay key -> (expires at, state)
_last_warning = 0.0


def _warn(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_INTERVAL:
        _last_warning = now
        logger.warning(
            "Layercode replay memory (Redis) unreachable (%s): requests count as first seen; a "
            "replay is still answered from storage",
            type(exc).__name__,
        )


def _seconds_left(valid_until: float) -> int:
    return max(1, math.ceil(valid_until - time.time()))


def _forget_expired(now: float) -> None:
    for key in [key for key, (expires, _) in _local.items() if expires <= now]:
        del _local[key]


async def request_first_seen(replay_key: str, valid_until: float) -> bool:
    """Record a signed request as ``opening``: True the first time within its window, False for
    a replay (True as well when the memory cannot be reached: fail open)."""
    ttl = _seconds_left(valid_until)
    if settings.REDIS_URL:
        try:
            return bool(await redis_client().set(_KEY + replay_key, OPENING, nx=True, ex=ttl))
        except Exception as exc:
            _warn(exc)
            return True
    now = time.monotonic()
    seen = _local.get(replay_key)
    if seen is not None and seen[0] > now:
        return False
    if len(_local) >= LOCAL_LIMIT:
        _forget_expired(now)
        while len(_local) >= LOCAL_LIMIT:
            _local.popitem(last=False)
    _local[replay_key] = (now + ttl, OPENING)
    return True


async def request_settle(replay_key: str, state: str) -> None:
    """The original's outcome, ``opened`` or ``refused``, for its replays (kept to the same TTL)."""
    if settings.REDIS_URL:
        try:
            await redis_client().set(_KEY + replay_key, state, xx=True, keepttl=True)
        except Exception as exc:
            _warn(exc)
        return
    seen = _local.get(replay_key)
    if seen is not None:
        _local[replay_key] = (seen[0], state)


async def request_state(replay_key: str) -> str | None:
    """The recorded state of a request; None when forgotten, expired or unreachable."""
    if settings.REDIS_URL:
        try:
            value = await redis_client().get(_KEY + replay_key)
        except Exception as exc:
            _warn(exc)
            return None
        return value.decode() if value is not None else None
    seen = _local.get(replay_key)
    return seen[1] if seen is not None and seen[0] > time.monotonic() else None
