"""Admission: how many turns open at once in this process, and a fair queue for the rest.

A burst of new turns (thousands of clients arriving within seconds) must be served, not failed:
each turn's opening write needs one of the ``TURN_DB_POOL_SIZE`` database connections, and a
saturated event loop hands them out slowly, so without a gate a burst waits in the connection
pool until ``TURN_DB_POOL_TIMEOUT`` and then fails as if the database were down.

The gate lets ``TURN_DB_POOL_SIZE`` openings run at once per event loop; the others wait in
arrival order (``asyncio.Semaphore`` is first-in, first-out) for up to ``TURN_QUEUE_TIMEOUT``
seconds, at most ``TURN_QUEUE_MAX_WAITING`` of them. Past either bound a turn is refused with
``503 server_busy`` and ``Retry-After``, before anything is stored or sent upstream. A client
that leaves while waiting leaves the queue. Closing writes are never gated: they are owed.
"""

from __future__ import annotations

import asyncio
import weakref

from django.conf import settings

from conversations.errors import TurnRejected

#: Retry-After of a turn refused at the gate (seconds).
BUSY_RETRY_AFTER_SECONDS = 5


class ServerBusy(TurnRejected):
    status = 503
    code = "server_busy"


class AdmissionGate:
    """A FIFO gate with a bounded queue (one per event loop: see :func:`admission_gate`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0
        self._slots = asyncio.Semaphore(limit)

    @property
    def running(self) -> int:
        return self.limit - self._slots._value

    async def acquire(self) -> None:
        """Wait for a slot; raise :class:`ServerBusy` past the queue's bounds (or leave on cancel)."""
        if not self._slots.locked():
            await self._slots.acquire()
            return
        if self.waiting >= settings.TURN_QUEUE_MAX_WAITING:
            raise self._busy(
                f"{self.waiting} new turns are already waiting to start on this server "
                f"(TURN_QUEUE_MAX_WAITING={settings.TURN_QUEUE_MAX_WAITING})"
            )
        self.waiting += 1
        try:
            async with asyncio.timeout(settings.TURN_QUEUE_TIMEOUT):
                await self._slots.acquire()
        except TimeoutError:
            raise self._busy(
                f"this turn waited TURN_QUEUE_TIMEOUT ({settings.TURN_QUEUE_TIMEOUT:g} s) to start"
            ) from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        self._slots.release()

    @staticmethod
    def _busy(why: str) -> ServerBusy:
        return ServerBusy(
            f"The server is at capacity: {why}. Retry after the given seconds, or add server processes.",
            retry_after=BUSY_RETRY_AFTER_SECONDS,
        )


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AdmissionGate] = weakref.WeakKeyDictionary()


def admission_gate() -> AdmissionGate:
    """This event loop's gate (``TURN_DB_POOL_SIZE`` slots)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = AdmissionGate(settings.TURN_DB_POOL_SIZE)
    return gate
