"""A stream run in a task of its own, read in order by one reader.

A turn's upstream call must stop the moment the turn is stopped, whatever its
reader is doing (handing an event on, waiting for a slow client): the stream
runs in its own task, and :meth:`Relay.cancel` cancels that task, which cancels
the upstream request. The reader gets the items relayed before, then
:class:`Stopped`; an error of the stream is raised to the reader in its place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()
_STOPPED = object()


class Stopped(Exception):
    """The relay was cancelled before its stream ended."""


class Relay(Generic[T]):
    """Starts relaying ``stream`` at once (call it inside a running loop); iterate it once."""

    def __init__(self, stream: AsyncGenerator[T, None]) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(stream))
        # A task cancelled before its first step never enters _run: tell the reader here too.
        self._task.add_done_callback(self._after)

    def cancel(self) -> None:
        if not self._task.done():
            self._task.cancel()

    async def __aiter__(self) -> AsyncIterator[T]:
        while (item := await self._queue.get()) is not _END:
            if item is _STOPPED:
                raise Stopped
            if isinstance(item, BaseException):
                raise item
            yield item

    async def _run(self, stream: AsyncGenerator[T, None]) -> None:
        try:
            async for item in stream:
                self._queue.put_nowait(item)
            self._queue.put_nowait(_END)
        except asyncio.CancelledError:
            self._queue.put_nowait(_STOPPED)  # before the stream is closed: the reader need not wait for it
            raise
        except BaseException as exc:  # handed to the reader, which decides what it means
            self._queue.put_nowait(exc)
        finally:
            await stream.aclose()

    def _after(self, task: asyncio.Task) -> None:
        if task.cancelled():
            self._queue.put_nowait(_STOPPED)
