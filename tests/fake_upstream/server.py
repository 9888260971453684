"""``FakeUpstream``: the fake LLM upstream served by uvicorn in a background thread.

Contract: ``start()`` binds a free ``127.0.0.1`` port (a pre-bound socket, so there is no race) and
returns once the server accepts connections; ``stop()`` ends stalls/hangs and shuts it down. All
control methods are thread-safe and may be called from any thread or event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn

from .app import FakeUpstreamApp
from .scenario import DEFAULT_CHUNKS
from .state import RecordedRequest, StoredFile, UpstreamState


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket bound to ``host:port`` (port 0 = any free port)."""
    # IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted sockets (no 40 ms delayed-ACK stalls)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def make_config(app: FakeUpstreamApp, **kwargs: Any) -> uvicorn.Config:
    """Uvicorn config tuned for throughput and quiet logs."""
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
        backlog=4096,
        **kwargs,
    )


class FakeUpstream:
    """In-process fake upstream. ``url`` etc. are valid after :meth:`start`."""

    def __init__(self, chunks: int = DEFAULT_CHUNKS, delay: float = 0.0, host: str = "127.0.0.1") -> None:
        self.state = UpstreamState(default_chunks=chunks, default_delay=delay)
        self.app = FakeUpstreamApp(self.state)
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> FakeUpstream:
        """Serve in a daemon thread; returns self once the server is up."""
        if self._server is not None:
            return self
        sock = bind_socket(self.host, 0)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(make_config(self.app))
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.name = f"fake-upstream-{self.port}"
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake upstream failed to start")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; open streams are ended (stalls/hangs released) and the thread joined."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        loop = self.app.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(self.app.begin_close)
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def zai_base_url(self) -> str:
        return self.url + "/api/paas/v4"

    @property
    def gemini_base_url(self) -> str:
        return self.url

    # ---- records ----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every provider request received (control calls excluded), oldest first."""
        return self.state.snapshot_requests()

    @property
    def disconnects(self) -> list[tuple[str, float]]:
        """Snapshot of ``(path, time.time())`` for each client that left before the response ended."""
        return self.state.snapshot_disconnects()

    @property
    def uploaded_files(self) -> list[StoredFile]:
        """Snapshot of the files uploaded through the Gemini Files API, oldest first."""
        with self.state.lock:
            return list(self.state.files.values())

    def last_request(self, path_contains: str = "") -> RecordedRequest:
        """Most recent recorded request whose path contains ``path_contains``; IndexError if none."""
        return [r for r in self.requests if path_contains in r.path][-1]

    # ---- control ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear records, queued faults and stored responses; restore start-up defaults."""
        self.state.reset()

    def push_fault(
        self, kind: str | int, times: int = 1, model: str | None = None, retry_after: float | None = None
    ) -> None:
        """Apply fault ``kind`` to the next ``times`` requests (only for ``model`` if given)."""
        self.state.push_fault(kind, times=times, model=model, retry_after=retry_after)

    def set_defaults(self, chunks: int | None = None, delay: float | None = None) -> None:
        """Chunk count / inter-chunk delay for requests without directives."""
        self.state.set_defaults(chunks=chunks, delay=delay)

    def hold_files_processing(self, polls: int) -> None:
        """Gemini files uploaded from now on stay PROCESSING for ``polls`` GETs, then turn ACTIVE."""
        with self.state.lock:
            self.state.processing_polls = max(0, int(polls))

    def forget_files(self) -> None:
        """Forget every uploaded Gemini file: referencing one is then Google's 403 for a file gone."""
        self.state.forget_files()

    def wait_for_disconnect(self, timeout: float = 1.0, count: int = 1, path: str | None = None) -> bool:
        """Block until at least ``count`` disconnects (on ``path`` if given) were seen; False on timeout."""

        def seen() -> bool:
            return sum(1 for p, _ in self.state.disconnects if path is None or p == path) >= count

        return self.state.wait_for(seen, timeout)

    async def wait_for_disconnect_async(
        self,
        timeout: float = 1.0,  # noqa: ASYNC109 - mirrors the sync signature
        count: int = 1,
        path: str | None = None,
    ) -> bool:
        """Like :meth:`wait_for_disconnect` without blocking the calling event loop."""
        return await asyncio.to_thread(self.wait_for_disconnect, timeout, count, path)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` provider requests were recorded."""
        return self.state.wait_for(lambda: len(self.state.requests) >= count, timeout)
