"""An HTTP/1.1 transport for the SDKs' ``httpx2`` clients, on asyncio's own protocols and httptools.

Why: the SDK's default transport (httpcore2 over anyio) costs about 260 µs of CPU per body read,
against about 26 µs for an asyncio protocol feeding httptools (``bench/upstream_client.py``): a
turn relays one read per token, so for thousands of slow streams the HTTP client was most of the
server's CPU. The SDK is unchanged above it: it still builds, authenticates and sends each request,
raises its own errors for non-2xx answers, and maps this transport's failures (``httpx2``'s own
exception classes) to its ``APIConnectionError`` / ``APITimeoutError`` as before.

What it does: HTTP/1.1 over TCP or TLS (the SDK's default certificate store); keep-alive
connections reused last-in first-out and dropped when idle for :data:`KEEPALIVE_EXPIRY` seconds
or when the server closes them; the connect and read timeouts of each request
(``request.extensions["timeout"]``; ``connect`` also bounds the TLS handshake); reading paused while
more than :data:`READ_BUFFER_HIGH` bytes wait unread (back-pressure); a body with neither a length
nor chunked coding ends where the connection does (as HTTP/1.1 allows). A response closed before its
end closes its connection. No HTTP/2, no proxies: a provider whose environment names a proxy
(``HTTPS_PROXY`` …), or ``LLM_HTTP_TRANSPORT=httpx``, gets the SDK's default transport instead
(:func:`use_asyncio_transport`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator
from time import perf_counter_ns, process_time_ns, thread_time_ns

import httptools
import httpx2

from . import stage_marks

#: Idle keep-alive connections older than this are closed rather than reused (httpx's default).
KEEPALIVE_EXPIRY = 5.0
#: Unread body bytes above which the socket is no longer read until the reader catches up.
READ_BUFFER_HIGH = 256 * 1024


def use_asyncio_transport(setting: str) -> bool:
    """Whether a provider client gets :class:`AsyncioTransport`: ``LLM_HTTP_TRANSPORT`` is
    ``asyncio`` (the default) and no proxy is configured in the environment."""
    return setting == "asyncio" and not urllib.request.getproxies()


class _Connection(asyncio.Protocol):
    """One TCP/TLS connection, one HTTP/1.1 exchange at a time; httptools parses the responses."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self._begin()

    def _begin(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    # --- asyncio protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx2.RemoteProtocolError("the server switched protocols, which is not supported"))
        except httptools.HttpParserError as exc:
            self._fail(httpx2.RemoteProtocolError(f"malformed HTTP response from the server: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost tells the reader

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self.headers_done and exc is None and not self._delimited():
            self.complete = True  # a body without a length or chunks ends where the connection does
            self._wake()
            return
        if not self.headers_done:
            message = "the server closed the connection without sending a response"
        else:
            message = "the server closed the connection before the end of the response body"
        if exc is not None:
            self._fail(httpx2.ReadError(f"{message} ({exc})"))
        else:
            self._fail(httpx2.RemoteProtocolError(message))

    def _delimited(self) -> bool:
        """Whether the body's end is marked (a length, chunked coding, or no body at all)."""
        if self.status in (204, 304) or 100 <= self.status < 200:
            return True
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (
                lowered == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return True
        return False

    # --- httptools callbacks ---
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > READ_BUFFER_HIGH and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # (reset once this callback returns)
        self._wake()

    # --- the reader's side ---
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        if self.transport is not None:
            self.transport.close()
        self._wake()

    async def wait(self, seconds: float | None) -> None:
        """Until the parser or the connection has news; ``httpx2.ReadTimeout`` after ``seconds``.

        One timer per connection, re-armed only when it fires early (a read in between moved the
        deadline): a timer per read cost more than the read itself.
        """
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        if seconds is not None:
            self.deadline = loop.time() + seconds
            if self.timer is None:
                self.timer = loop.call_at(self.deadline, self._check_deadline, seconds)
        try:
            await waiter
        finally:
            self.waiter = None

    def _check_deadline(self, seconds: float) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # not waiting: the next wait arms a timer again
        loop = waiter.get_loop()
        if loop.time() >= self.deadline:
            waiter.set_exception(
                httpx2.ReadTimeout(f"no data from the server within the read timeout ({seconds:g} s)")
            )
        else:
            self.timer = loop.call_at(self.deadline, self._check_deadline, seconds)

    def take(self) -> bytes:
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()


class _TimedConnection(_Connection):
    """A connection made while the turn stage clock is on: it marks when the response head and the
    first body bytes arrive (in the protocol callbacks, on the clock of the request it serves)."""

    def _begin(self) -> None:
        super()._begin()
        self.clock: stage_marks.StageClock | None = None
        self.body_seen = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.clock is not None:
            self.clock.mark_at("upstream_head", perf_counter_ns(), thread_time_ns(), process_time_ns())

    def on_body(self, body: bytes) -> None:
        if self.clock is not None and not self.body_seen:
            self.body_seen = True
            self.clock.mark_at("upstream_body", perf_counter_ns(), thread_time_ns(), process_time_ns())
        super().on_body(body)


class _Body(httpx2.AsyncByteStream):
    """A response body, read as it arrives; at its end the connection goes back to the pool."""

    def __init__(
        self, pool: AsyncioTransport, key: tuple[str, str, int], conn: _Connection, timeout: float | None
    ):
        self._pool, self._key, self._conn, self._timeout = pool, key, conn, timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
            elif conn.complete:
                self._release()
                return
            elif conn.error is not None:
                self._release()
                raise conn.error
            else:
                await conn.wait(self._timeout)

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._pool._release(self._key, self._conn)


class AsyncioTransport(httpx2.AsyncBaseTransport):
    """See the module docstring. One per provider client; ``aclose()`` closes its connections."""

    def __init__(self, *, max_keepalive: int = 1000, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max_keepalive = max_keepalive
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_count = 0
        self._closed = False

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context()
        return self._ssl_context

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        find_clock = stage_marks.current
        clock = find_clock() if find_clock is not None else None
        if clock is not None:
            clock.mark("request_built")
        timeouts = request.extensions.get("timeout") or {}
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}: use http or https")
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.host, port)
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        head = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        sized = False
        for name, value in request.headers.raw:
            lowered = name.lower()
            if lowered == b"transfer-encoding":  # the body is sent whole, with its length
                continue
            sized = sized or lowered == b"content-length"
            head += (name, b": ", value, b"\r\n")
        if not sized and (body or request.method in ("POST", "PUT", "PATCH")):
            head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"\r\n")
        message = b"".join(head) + body

        conn = self._checkout(key) or await self._connect(key, timeouts.get("connect"), request)
        conn._begin()
        if clock is not None:
            clock.mark("connected")
            if isinstance(conn, _TimedConnection):
                conn.clock = clock
        conn.transport.write(message)  # type: ignore[union-attr]
        if clock is not None:
            clock.mark("sent")
        read_timeout = timeouts.get("read")
        try:
            while not conn.headers_done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(read_timeout)
        except BaseException:
            conn.close()
            raise
        if request.method == "HEAD":
            conn.complete = True
        return httpx2.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(self, key, conn, read_timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason, "network_stream": conn},
            request=request,
        )

    def _checkout(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if not conn.closed and now - conn.idle_since < KEEPALIVE_EXPIRY:
                return conn
            conn.close()
        return None

    async def _connect(
        self, key: tuple[str, str, int], seconds: float | None, request: httpx2.Request
    ) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls = self._ssl() if scheme == "https" else None
        protocol = _Connection if stage_marks.current is None else _TimedConnection
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(
                    protocol, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise httpx2.ConnectTimeout(
                f"could not connect to {host}:{port} within {seconds:g} s", request=request
            ) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise httpx2.ConnectError(f"could not connect to {host}:{port}: {exc}", request=request) from exc
        return conn

    def _release(self, key: tuple[str, str, int], conn: _Connection) -> None:
        if self._closed or not conn.reusable() or self._idle_count >= self._max_keepalive:
            conn.close()
            return
        now = time.monotonic()
        conn.idle_since = now
        self._idle.setdefault(key, []).append(conn)
        self._idle_count += 1

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._idle_count = 0
