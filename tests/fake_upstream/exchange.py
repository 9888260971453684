"""One request/response exchange: timing, faults, disconnect detection and the provider-neutral flow.

Contract:

* ``Exchange`` wraps the raw ASGI ``receive``/``send``. After the request body is read, a watcher task
  awaits ``receive()``; an ``http.disconnect`` before the response finished is recorded at once in
  ``UpstreamState.disconnects`` (so it is seen within milliseconds, even while sleeping or stalling).
* ``serve_turn`` turns a provider-neutral :class:`Turn` into a reply, applies the directive / queued
  fault, and hands the bytes to the provider's :class:`Wire` encoder.
* ``drop`` cuts the connection mid-body by raising :class:`DropConnection` after the response has
  started: uvicorn then closes the transport without the terminating zero-length chunk, so clients see an
  incomplete chunked body (``RemoteProtocolError``), never a clean end. The log line uvicorn writes for it
  is filtered out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from .attachments import Received, attachment_listing
from .scenario import (
    DEFAULT_RETRY_AFTER,
    Fault,
    PlannedCall,
    expected_tool_reply,
    parse_directives,
    plan_tool_calls,
    reply_text,
    split_reply,
)
from .state import UpstreamState

STALL_MAX_SECONDS = 300.0
JSON_CT = (b"content-type", b"application/json")

Headers = list[tuple[bytes, bytes]]


class DropConnection(Exception):
    """Raised inside the ASGI app to make uvicorn abort the connection mid-response."""


class _HideDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


def install_log_filter() -> None:
    """Keep uvicorn from logging a traceback for every deliberate :class:`DropConnection`."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDrops) for f in logger.filters):
        logger.addFilter(_HideDrops())


class WireError(Exception):
    """A request the provider would reject: ``status`` and the provider-shaped ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass(slots=True)
class Turn:
    """What a provider request boils down to. ``user_text`` is the raw last user message.

    A wire that speaks tools fills the last three: the request's ``tools`` (answered with calls when
    the last message is the user's, :func:`~.scenario.plan_tool_calls`), and ``tool_outputs``, the
    contents of the trailing tool messages when the last message is one (answered with
    :func:`~.scenario.expected_tool_reply`). ``attachments`` are the images and files the request
    carries, decoded (listed before the echo: :mod:`.attachments`)."""

    model: str
    user_text: str
    input_words: int
    stream: bool
    json_mode: bool = False
    max_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tools: list[Any] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    tool_outputs: list[str] | None = None
    attachments: list[Received] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """The reply about to be sent: its pieces (one per content chunk), finish reason and the usage
    breakdowns to report (``None``: the wire reports none; see :mod:`.scenario`)."""

    turn: Turn
    pieces: list[str]
    finish: str  # "stop", "length" or "tool_calls"
    cached: int | None = None
    reasoning: int | None = None
    calls: list[PlannedCall] = field(default_factory=list)  # sent after the pieces

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def input_tokens(self) -> int:
        return self.turn.input_words

    @property
    def output_tokens(self) -> int:
        """The visible reply's tokens (one per content chunk: text pieces, each call's header and
        argument fragments), without reasoning."""
        return len(self.pieces) + sum(1 + len(call.fragments) for call in self.calls)

    @property
    def cached_tokens(self) -> int | None:
        """Cached input tokens (never more than the input tokens, which include them)."""
        return None if self.cached is None else min(self.cached, self.input_tokens)

    @property
    def has_breakdown(self) -> bool:
        return self.cached is not None or self.reasoning is not None


class Wire:
    """Provider encoder interface; subclasses fill in the provider's exact shapes."""

    stream_content_type: bytes = b"text/event-stream; charset=utf-8"

    def parse(self, body: dict[str, Any], path_params: dict[str, str]) -> Turn:
        raise NotImplementedError

    def error_body(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def stream_events(self, plan: Plan) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """Return ``(prelude, one event per piece, trailer)`` as encoded SSE bytes."""
        raise NotImplementedError

    def full_body(self, plan: Plan) -> dict[str, Any]:
        raise NotImplementedError


class Exchange:
    """ASGI plumbing for one request (see module docstring)."""

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any, state: UpstreamState) -> None:
        self.scope = scope
        self.path: str = scope["path"]
        self._receive = receive
        self._send = send
        self.state = state
        self.gone = asyncio.Event()
        self.finished = False
        self._watch: asyncio.Task[None] | None = None
        self.closing: asyncio.Event | None = None

    async def read_body(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            msg = await self._receive()
            if msg["type"] == "http.disconnect":
                self.gone.set()
                return b""
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                return b"".join(chunks)

    def start_watch(self) -> None:
        self._watch = asyncio.ensure_future(self._watch_disconnect())

    async def _watch_disconnect(self) -> None:
        while not self.finished:
            msg = await self._receive()
            if msg["type"] == "http.disconnect":
                if not self.finished:
                    self.gone.set()
                    self.state.record_disconnect(self.path)
                return

    def stop_watch(self) -> None:
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the client leaves first; True while the client is still there."""
        if self.gone.is_set():
            return False
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), seconds)
        return not self.gone.is_set()

    async def hold(self, seconds: float = STALL_MAX_SECONDS) -> None:
        """Wait until the client leaves, the server shuts down, or ``seconds`` pass."""
        waiters = [asyncio.ensure_future(self.gone.wait())]
        if self.closing is not None:
            waiters.append(asyncio.ensure_future(self.closing.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def start(self, status: int, headers: Headers) -> None:
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def finish(self, data: bytes = b"") -> None:
        self.finished = True
        self.stop_watch()
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def send_json(self, status: int, obj: Any, headers: Headers | None = None) -> None:
        data = orjson.dumps(obj)
        hdrs = [JSON_CT, (b"content-length", str(len(data)).encode()), *(headers or [])]
        await self.start(status, hdrs)
        await self.finish(data)


def _fault_for(ex: Exchange, turn: Turn, directive_fault: Fault | None) -> Fault | None:
    return ex.state.take_fault(turn.model) or directive_fault


async def serve_turn(ex: Exchange, wire: Wire, turn: Turn, extra_headers: Headers | None = None) -> None:
    """Apply directives, defaults and faults to ``turn`` and send the provider-shaped response."""
    try:
        d = parse_directives(turn.user_text)
        calls = (
            plan_tool_calls(turn.tools, turn.tool_choice, turn.parallel_tool_calls, turn.user_text, d)
            if turn.tools and turn.tool_outputs is None
            else []
        )
    except ValueError as err:
        await ex.send_json(400, wire.error_body(400, f"Bad fake-upstream directive: {err}"))
        return
    fault = _fault_for(ex, turn, d.fault)
    default_chunks, default_delay = ex.state.defaults()
    chunks = d.chunks or default_chunks
    delay = d.delay if d.delay is not None else default_delay
    hdrs = list(extra_headers or [])

    if d.first_byte and not await ex.pause(d.first_byte):
        return
    if fault is not None and fault.is_status:
        retry = fault.retry_after if fault.retry_after is not None else d.retry_after
        retry = retry if retry is not None else DEFAULT_RETRY_AFTER
        if fault.status == 429:
            hdrs.append((b"retry-after", _fmt_seconds(retry)))
        await ex.send_json(fault.status, wire.error_body(fault.status, _MESSAGES[fault.status], retry), hdrs)
        return
    if fault is not None and fault.kind == "hang":
        await ex.hold()
        if not ex.gone.is_set():
            raise DropConnection("hang ended")
        return

    if turn.tool_outputs is not None:
        text = expected_tool_reply(turn.tool_outputs, chunks)
    else:
        text = reply_text(turn.user_text, chunks, json_mode=turn.json_mode, json_invalid=d.json_invalid)
        if turn.attachments and not turn.json_mode:
            text = attachment_listing(turn.attachments) + "\n" + text
    pieces = split_reply(text, chunks)
    finish = "stop"
    if calls:
        pieces, finish = (pieces if d.text_first else []), "tool_calls"
    elif turn.max_tokens is not None and 0 < turn.max_tokens < len(pieces):
        pieces, finish = pieces[: turn.max_tokens], "length"
    plan = Plan(turn, pieces, finish, cached=d.cached, reasoning=d.reasoning, calls=calls)
    if turn.stream:
        await _stream(ex, wire, plan, delay, fault, hdrs)
    else:
        await _full(ex, wire, plan, fault, hdrs)


async def _stream(
    ex: Exchange, wire: Wire, plan: Plan, delay: float, fault: Fault | None, hdrs: Headers
) -> None:
    prelude, events, trailer = wire.stream_events(plan)
    cut = fault.after if fault is not None and fault.kind in ("drop", "stall") else None
    await ex.start(200, [(b"content-type", wire.stream_content_type), (b"cache-control", b"no-cache"), *hdrs])
    if delay <= 0:
        head = events if cut is None else events[:cut]
        payload = b"".join((*prelude, *head))
        if cut is None:
            await ex.finish(payload + b"".join(trailer))
            return
        await ex.body(payload)
    else:
        if prelude:
            await ex.body(b"".join(prelude))
        for i, ev in enumerate(events):
            if i == cut:
                break
            if i and not await ex.pause(delay):
                return
            await ex.body(ev)
        if cut is None:
            if not ex.gone.is_set():
                await ex.finish(b"".join(trailer))
            return
    await _apply_cut(ex, fault)


async def _full(ex: Exchange, wire: Wire, plan: Plan, fault: Fault | None, hdrs: Headers) -> None:
    if fault is None or fault.kind not in ("drop", "stall"):
        await ex.send_json(200, wire.full_body(plan), hdrs)
        return
    data = orjson.dumps(wire.full_body(plan))
    await ex.start(200, [JSON_CT, *hdrs])  # no content-length: chunked, so a cut is detectable
    await ex.body(data[: len(data) // 2])
    await _apply_cut(ex, fault)


async def _apply_cut(ex: Exchange, fault: Fault | None) -> None:
    if fault is not None and fault.kind == "stall":
        await ex.hold()
    if not ex.gone.is_set():
        ex.finished = True  # a deliberate cut is not a client disconnect
        ex.stop_watch()
        raise DropConnection(f"fault {fault}")


def _fmt_seconds(value: float) -> bytes:
    return (str(int(value)) if float(value).is_integer() else repr(float(value))).encode()


_MESSAGES = {
    400: "Invalid request (fake upstream fault 400).",
    401: "Incorrect API key provided (fake upstream fault 401).",
    429: "Rate limit reached (fake upstream fault 429). Please try again later.",
    500: "The server had an error while processing your request (fake upstream fault 500).",
    503: "The model is overloaded (fake upstream fault 503). Please try again later.",
}
