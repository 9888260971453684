"""ASGI, only when the turn stage clock is on (``TURN_TIMING=1``: ``bench/waterfall.py``): each HTTP
request gets its clock (:mod:`conversations.telemetry.stages`), and the first body write after the
turn's first delta was taken by the pipeline marks the first token out and keeps the record.

``GET /_turn_timing`` (this wrapper's, not Django's: it exists only while the clock is on) answers
the records kept since the last call, as JSON, and forgets them. ``chatproject/asgi.py`` puts this
wrapper outermost only when the clock is on: off, it is not in the stack at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from conversations.telemetry import stages

RECORDS_PATH = "/_turn_timing"


class StageClockApp:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._timed_loop: asyncio.AbstractEventLoop | None = None
        self._undo: Any = None

    def time_tasks(self) -> None:
        """Time the tasks of the running loop (once per loop; the lifespan, or the first request)."""
        loop = asyncio.get_running_loop()
        if self._timed_loop is not loop:
            self._timed_loop, self._undo = loop, stages.install_task_clock(loop)

    def untime_tasks(self) -> None:
        if self._undo is not None:
            self._undo()
        self._timed_loop = self._undo = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.time_tasks()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == RECORDS_PATH and scope["method"] == "GET":
            await _send_records(send)
            return
        clock, token = stages.begin(stages.arrival())

        async def timed_send(message: dict) -> None:
            await send(message)
            if clock.closed:
                return
            kind = message["type"]
            if kind == "http.response.start":
                clock.mark("response_head")
            elif kind == "http.response.body" and "dequeued" in clock.marks:
                clock.mark("written")
                stages.keep(clock)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            stages.end(token)


async def _send_records(send: Any) -> None:
    body = orjson.dumps(
        {
            "stages": stages.STAGES,
            "substages": stages.SUBSTAGES,
            "notes": stages.NOTES,
            "records": stages.drain(),
        }
    )
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
