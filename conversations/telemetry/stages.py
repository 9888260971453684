"""The turn's stage clock: wall and CPU time per stage, from a request's arrival to its first token
written to the socket (``bench/waterfall.py`` prints it as a waterfall; docs/performance.md).

Off unless the server starts with ``TURN_TIMING=1`` in its environment (read once, at import; only
the bench sets it). Off, every mark site on the turn's path is one attribute check
(``if stages.on:``): nothing is allocated and no clock is read; the ASGI wrapper that keeps the
records (``chatproject/stage_clock.py``) is not even in the stack.

On, each HTTP request gets a :class:`TurnClock` in a context variable, so the tasks a turn starts
(its opening write, its job, the relay, the SDK's request) carry it. Each :func:`mark` reads three
clocks, once per mark name (the first one counts): ``time.perf_counter_ns()`` (wall), the event
loop thread's CPU (``time.thread_time_ns()``) and the process's (``time.process_time_ns()``, every
thread). A task factory (:func:`install_task_clock`) adds a fourth: the turn's *own* CPU, the loop
thread's CPU spent in the steps of the turn's own tasks, so a stage at 10 concurrent shows this
turn's work, not its neighbours'. Not captured as own CPU: what the loop does outside any task
(the server's HTTP parsing, the transport's protocol callbacks, timers), and work in other threads
(the process CPU has it, for every request at once). A turn whose first delta is written is kept in
a ring buffer (:func:`drain` empties it; the wrapper serves it to the bench).
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Callable, Coroutine, Generator
from contextvars import ContextVar, Token
from time import perf_counter_ns, process_time_ns, thread_time_ns, time_ns
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from providers import stage_marks


def flag(raw: str | None) -> bool:
    """``TURN_TIMING``: empty/``0``/``false``/``off`` is off, ``1``/``true``/``on`` is on."""
    value = (raw or "").strip().lower()
    if value in ("", "0", "false", "off", "no"):
        return False
    if value in ("1", "true", "on", "yes"):
        return True
    raise ImproperlyConfigured(
        f"TURN_TIMING={raw!r}: set 1 to turn the stage clock on (bench/waterfall.py does), or leave it unset."
    )


#: Whether the stage clock runs (the mark sites check this, and only this, when it is off).
on: bool = flag(os.environ.get("TURN_TIMING"))

#: The marks of a turn's critical path, in order, each with the stage that ends at it.
STAGES: tuple[tuple[str, str], ...] = (
    ("arrived", "the server parsed the request head (its task created)"),
    ("asgi", "server: request read, its task scheduled on the event loop"),
    ("request", "edge: body guard, lean edge, Django's request object"),
    ("edge", "edge: middleware chain, view dispatch"),
    ("decoded", "caller, body read, codec decode"),
    ("checked", "turn checks: validate, provider, rate limits, opening built"),
    ("admitted", "admission gate"),
    ("db_connection", "opening write: pool checkout"),
    ("db_result", "opening write: one round trip (bind, send, PostgreSQL, COMMIT, results)"),
    ("opened", "opening write: result back to the turn service"),
    ("started", "turn ready (fallbacks, LiveTurn), job launched"),
    ("provider_call", "job start: started event, relay task, provider request"),
    ("request_built", "SDK builds the request (adapter body, SDK, httpx2 request)"),
    ("connected", "upstream connection (pooled, or connect)"),
    ("sent", "request written to the upstream"),
    ("upstream_head", "upstream: response head arrives"),
    ("upstream_body", "upstream: first body bytes arrive"),
    ("first_chunk", "adapter: first text chunk (SDK response, SSE decode, JSON)"),
    ("delta", "relay: transcript, delta event, handed to the connection"),
    ("dequeued", "pipeline wakes and takes the delta"),
    ("written", "encode, first delta frame written to the socket"),
)
#: Marks inside a stage, on PostgreSQL's clock (wall only): the opening write's round trip split.
SUBSTAGES: tuple[tuple[str, str, str], ...] = (
    ("db_connection", "pg_begin", "bind, send, PostgreSQL starts the batch"),
    ("pg_begin", "pg_commit", "the statements before COMMIT (PostgreSQL's clock)"),
    ("pg_commit", "db_result", "COMMIT, results back, parsed"),
)
#: Marks off the critical path, kept for the record.
NOTES = ("response_head",)

BUFFER_SIZE = 50_000
_current: ContextVar[TurnClock | None] = ContextVar("turn_stage_clock", default=None)
_kept: collections.deque[dict[str, Any]] = collections.deque(maxlen=BUFFER_SIZE)


class TurnClock:
    """One request's marks: ``name -> (wall, own CPU, loop thread CPU, process CPU)`` in ns."""

    __slots__ = ("closed", "epoch_offset", "marks", "own_ns", "step_start")

    def __init__(self) -> None:
        self.marks: dict[str, tuple[int, int | None, int | None, int | None]] = {}
        self.own_ns = 0  # the loop thread's CPU in the steps of this turn's tasks
        self.step_start = 0  # thread_time_ns() when the running step of one of its tasks began
        self.closed = False
        self.epoch_offset = time_ns() - perf_counter_ns()  # to place PostgreSQL's clock readings

    def mark(self, name: str) -> None:
        if self.closed or name in self.marks:
            return
        loop_ns = thread_time_ns()
        own = self.own_ns + (loop_ns - self.step_start if self.step_start else 0)
        self.marks[name] = (perf_counter_ns(), own, loop_ns, process_time_ns())

    def mark_at(self, name: str, wall_ns: int, loop_ns: int, proc_ns: int) -> None:
        """A mark taken outside the turn's tasks (a protocol callback): its own CPU is as of then."""
        if not self.closed and name not in self.marks:
            self.marks[name] = (wall_ns, self.own_ns, loop_ns, proc_ns)

    def server_mark(self, name: str, epoch_us: int) -> None:
        """A reading of PostgreSQL's clock (``clock_timestamp()``, µs since the epoch): wall only."""
        if not self.closed and name not in self.marks:
            self.marks[name] = (epoch_us * 1000 - self.epoch_offset, None, None, None)

    def record(self) -> dict[str, list[int | None]]:
        """The marks relative to the first one (ns), in the order they were taken."""
        base = next(iter(self.marks.values()), (0, 0, 0, 0))
        return {
            name: [_since(value, origin) for value, origin in zip(m, base, strict=True)]
            for name, m in self.marks.items()
        }


def _since(value: int | None, origin: int | None) -> int | None:
    return value - origin if value is not None and origin is not None else None


def current() -> TurnClock | None:
    """The clock of the request this task serves (None off, or outside a request)."""
    return _current.get()


def mark(name: str) -> None:
    """Mark ``name`` on the current request's clock (call it under ``if stages.on:``)."""
    clock = _current.get()
    if clock is not None:
        clock.mark(name)


def server_mark(name: str, epoch_us: int) -> None:
    clock = _current.get()
    if clock is not None:
        clock.server_mark(name, epoch_us)


def begin(arrived: tuple[int, int, int] | None = None) -> tuple[TurnClock, Token]:
    """A clock for the request this task starts to serve; ``arrived`` is when its task was created."""
    clock = TurnClock()
    if arrived is not None:
        clock.mark_at("arrived", *arrived)
    clock.step_start = thread_time_ns()  # the rest of this step is the request's
    clock.mark("asgi")
    return clock, _current.set(clock)


def end(token: Token) -> None:
    _current.reset(token)


def keep(clock: TurnClock) -> None:
    """Close ``clock`` and keep its record for :func:`drain`."""
    if not clock.closed:
        clock.closed = True
        _kept.append(clock.record())


def drain() -> list[dict[str, list[int | None]]]:
    """The records kept since the last drain (oldest first), and forget them."""
    out = list(_kept)
    _kept.clear()
    return out


def enable() -> None:
    """Turn the clock on in this process (the environment does it at start-up; tests call this)."""
    global on
    on = True
    stage_marks.current = current


def disable() -> None:
    global on
    on = False
    stage_marks.current = None
    _kept.clear()


if on:
    stage_marks.current = current


class DeltaQueue(asyncio.Queue):
    """A turn's listener queue (``turns/jobs.py``) that marks the first delta handed to the
    connection (``delta``) and taken by it (``dequeued``), on the clock of the request it serves."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _current.get()

    def put_nowait(self, item: Any) -> None:
        super().put_nowait(item)
        if self._clock is not None and getattr(item, "type", None) == "delta":
            self._clock.mark("delta")

    async def get(self) -> Any:
        item = await super().get()
        if self._clock is not None and getattr(item, "type", None) == "delta":
            self._clock.mark("dequeued")
        return item


# --- the turn's own CPU: a task factory that times each step of a task ------------------------
class _TimedCoroutine(Coroutine):
    """A task's coroutine, each step's loop-thread CPU added to the clock of the request it serves
    (the clock in the task's context when the step ends: the step that starts a request counts)."""

    __slots__ = ("_coro", "created")

    def __init__(self, coro: Coroutine) -> None:
        self._coro = coro
        self.created = (perf_counter_ns(), thread_time_ns(), process_time_ns())

    def send(self, value: Any) -> Any:
        clock = _current.get()
        if clock is not None:
            if clock.closed:  # the turn's first token is out: nothing more to count
                return self._coro.send(value)
            clock.step_start = thread_time_ns()
        try:
            return self._coro.send(value)
        finally:
            _end_step()

    def throw(self, *args: Any) -> Any:
        clock = _current.get()
        if clock is not None:
            if clock.closed:
                return self._coro.throw(*args)
            clock.step_start = thread_time_ns()
        try:
            return self._coro.throw(*args)
        finally:
            _end_step()

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()


def _end_step() -> None:
    clock = _current.get()
    if clock is not None and clock.step_start and not clock.closed:
        clock.own_ns += thread_time_ns() - clock.step_start
        clock.step_start = 0


def arrival() -> tuple[int, int, int] | None:
    """When the running task was created (wall, loop CPU, process CPU), if the task clock timed it."""
    task = asyncio.current_task()
    coro = task.get_coro() if task is not None else None
    return coro.created if isinstance(coro, _TimedCoroutine) else None


def install_task_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Time every task ``loop`` creates from now on; returns what undoes it."""
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine, **kwargs: Any) -> asyncio.Future:
        clock = _current.get()
        if clock is not None and clock.closed:  # a task of a turn whose first token is out
            timed = coro
        else:
            timed = coro if isinstance(coro, _TimedCoroutine) else _TimedCoroutine(coro)
        if previous is not None:
            return previous(loop, timed, **kwargs)
        return asyncio.Task(timed, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return lambda: loop.set_task_factory(previous)
