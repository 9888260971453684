"""A TCP proxy in front of PostgreSQL that counts the client's round trips on the wire.

Every client message that makes the client wait for the server is one round trip: a simple
``Query`` ('Q': BEGIN, COMMIT, SET, un-parameterized SQL), a ``Sync`` ('S': the end of an
extended-protocol or pipelined batch, how psycopg sends parameterized SQL), and each connection
start-up (SSLRequest and StartupMessage, each answered before the client goes on). Whatever the
client (Django's ORM or raw psycopg), nothing in the application is changed to count.
Used by ``tests/test_turn_queries.py`` and ``bench/db_roundtrips.py``.
"""

from __future__ import annotations

import asyncio
import collections
import struct
import threading
from typing import Any

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102


def _kind(sql: str) -> str:
    word = sql.strip().split(None, 1)[0].upper() if sql.strip() else "?"
    return (
        word if word in ("BEGIN", "COMMIT", "ROLLBACK", "SET", "SELECT", "SAVEPOINT", "RELEASE") else "other"
    )


class WireCount:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.startup_rtts = 0
        self.types: collections.Counter[str] = collections.Counter()
        self.simple: collections.Counter[str] = collections.Counter()
        self.statements: list[str] = []

    @property
    def round_trips(self) -> int:
        return self.types["Q"] + self.types["S"] + self.startup_rtts

    def snapshot(self) -> dict[str, Any]:
        return {
            "round_trips": self.round_trips,
            "connections": self.connections,
            "startup_round_trips": self.startup_rtts,
            "simple_queries": self.types["Q"],
            "extended_syncs": self.types["S"],
            "parse": self.types["P"],
            "execute": self.types["E"],
            "simple_by_kind": dict(self.simple),
        }


class PgWireProxy:
    """``PgWireProxy(host, port).start()`` returns the local port to connect to instead of PostgreSQL."""

    def __init__(self, pg_host: str = "127.0.0.1", pg_port: int = 5432) -> None:
        self.pg_host, self.pg_port = pg_host, pg_port
        self.count = WireCount()
        self.port = 0

    async def _pump_frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count, started = self.count, False
        while True:
            if not started:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                rest = await reader.readexactly(length - 8)
                writer.write(head + rest)
                if code in (SSL_REQUEST, GSS_REQUEST):
                    count.startup_rtts += 1
                    continue
                if code == CANCEL_REQUEST:
                    continue
                count.connections += 1
                count.startup_rtts += 1
                started = True
                continue
            head = await reader.readexactly(5)
            kind = chr(head[0])
            (length,) = struct.unpack("!i", head[1:])
            body = await reader.readexactly(length - 4)
            writer.write(head + body)
            count.types[kind] += 1
            if kind == "Q":
                sql = body[:-1].decode("utf-8", "replace")
                count.simple[_kind(sql)] += 1
                count.statements.append("Q " + sql[:160])
            elif kind == "P":
                name_end = body.index(b"\0")
                sql_end = body.index(b"\0", name_end + 1)
                count.statements.append("P " + body[name_end + 1 : sql_end].decode("utf-8", "replace")[:160])
            elif kind == "S":
                count.statements.append("S")

    @staticmethod
    async def _pump_backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            pg_r, pg_w = await asyncio.open_connection(self.pg_host, self.pg_port)
        except OSError:
            client_w.close()
            return
        tasks = [
            asyncio.create_task(self._pump_frontend(client_r, pg_w)),
            asyncio.create_task(self._pump_backend(pg_r, client_w)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for w in (client_w, pg_w):
                w.close()

    def start(self) -> int:
        """Serve in a background thread; returns the proxy's port."""
        ready = threading.Event()

        def run() -> None:
            async def serve() -> None:
                server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
                self.port = server.sockets[0].getsockname()[1]
                ready.set()
                async with server:
                    await server.serve_forever()

            asyncio.run(serve())

        threading.Thread(target=run, daemon=True, name="pg-wire-proxy").start()
        if not ready.wait(10):
            raise RuntimeError("the PostgreSQL counting proxy did not start")
        return self.port
