"""Where the HTTP transport reports a turn's upstream stages when the turn stage clock is on.

``conversations.telemetry.stages`` sets :data:`current` when ``TURN_TIMING`` is on (only
``bench/waterfall.py`` does), so this floor knows nothing of the turn: it asks for the running
request's clock and marks on it. Off, :data:`current` is ``None``: the transport checks that once
per request and once per new connection, and nothing per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class StageClock(Protocol):
    """The marks a transport may take on a request's clock (``conversations.telemetry.stages.TurnClock``)."""

    def mark(self, name: str) -> None: ...

    def mark_at(self, name: str, wall_ns: int, loop_ns: int, proc_ns: int) -> None: ...


#: The running request's clock, or ``None`` outside a timed request; itself ``None`` when off.
current: Callable[[], StageClock | None] | None = None
