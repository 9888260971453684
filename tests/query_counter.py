"""Count SQL queries from every thread (the turn service runs its ORM work in worker threads)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.db.backends.signals import connection_created


class QueryCounter:
    def __init__(self) -> None:
        self.queries: list[str] = []
        self._lock = threading.Lock()
        self._wrapped: list[object] = []

    def __call__(self, execute, sql, params, many, context):
        with self._lock:
            self.queries.append(sql)
        return execute(sql, params, many, context)

    @property
    def count(self) -> int:
        return len(self.queries)

    def attach(self, connection) -> None:
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)
            self._wrapped.append(connection)


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    counter = QueryCounter()

    def on_connect(sender, connection, **kwargs):
        counter.attach(connection)

    connection_created.connect(on_connect, weak=False)
    for conn in connections.all(initialized_only=True):
        counter.attach(conn)
    try:
        yield counter
    finally:
        connection_created.disconnect(on_connect)
        for conn in counter._wrapped:
            if counter in conn.execute_wrappers:
                conn.execute_wrappers.remove(counter)
