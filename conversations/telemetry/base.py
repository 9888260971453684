"""The telemetry hooks a turn calls, and the do-nothing ones used when telemetry is off.

A turn asks :meth:`Telemetry.turn` for a :class:`TurnTrace` when it starts relaying, opens one
:class:`AttemptTrace` per provider call (``with trace.attempt(provider, request) as attempt:``,
so the attempt sees how the call ended: returned, raised, cancelled), hands it every chunk, and
ends the turn with its outcome. Off, every call here is a method that does nothing on a shared
object: no OpenTelemetry import, nothing allocated per turn or per chunk.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from providers.base import Provider, ProviderChunk, ProviderRequest


class TurnOutcome(Protocol):
    """What telemetry reads of a turn's end (``conversations.turns.rules.TurnOutcome`` has it):
    stated here so telemetry, which the turn core calls, does not import the turn core back."""

    @property
    def status(self) -> str: ...

    @property
    def error_code(self) -> str: ...


class AttemptTrace:
    """One provider call: from the request to its last chunk, its error or its cancellation."""

    __slots__ = ()

    def __enter__(self) -> AttemptTrace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """The call ended: normally (``exc`` is ``None``), by an error, or cancelled. Never swallows."""

    def chunk(self, chunk: ProviderChunk) -> None:
        """A chunk of the reply arrived (the first one times the wait for the answer)."""


class TurnTrace:
    """One turn: every attempt (retries, fallbacks) it made, and how it ended."""

    __slots__ = ()

    def attempt(self, provider: Provider, request: ProviderRequest) -> AttemptTrace:
        return NO_ATTEMPT

    def end(self, outcome: TurnOutcome) -> None:
        """The turn ended with ``outcome`` (``complete``, ``interrupted`` or ``failed``)."""


class Telemetry:
    """Where turns report to; this base reports nowhere."""

    enabled = False

    def turn(self, session_key: str) -> TurnTrace:
        return NO_TURN

    def prometheus_exposition(self) -> tuple[bytes, str] | None:
        """The metrics in Prometheus' text format and its content type; ``None`` when not kept."""
        return None

    def shutdown(self) -> None:
        """Flush what is buffered and stop exporting."""


NO_ATTEMPT = AttemptTrace()
NO_TURN = TurnTrace()
NO_TELEMETRY = Telemetry()
