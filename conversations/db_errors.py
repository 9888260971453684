"""Database errors that are not the caller's fault, told apart and named the same on every edge."""

from __future__ import annotations

import sqlite3

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError

# The database is unreachable, restarting or shutting down (or the connection broke): a transient
# failure, unlike an integrity or programming error. Django's and psycopg's own classes (the
# native psycopg code paths raise the latter).
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


DATABASE_RETRY_AFTER_SECONDS = 2


def database_busy(exc: BaseException) -> bool:
    """SQLite's one write lock held past the busy timeout: the database is up, only contended."""
    cause = exc.__cause__ if isinstance(exc, OperationalError) else exc
    if not isinstance(cause, sqlite3.OperationalError):
        return False
    name = getattr(cause, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in str(cause)


def database_problem(exc: BaseException) -> tuple[str, str]:
    """``(code, message)`` for a database error of :data:`DATABASE_DOWN`, the same on every edge:
    ``database_busy`` (SQLite's writer lock outlasted ``DATABASE_BUSY_TIMEOUT``) or
    ``database_unavailable`` (unreachable, restarting). Either way nothing was stored."""
    if database_busy(exc):
        return (
            "database_busy",
            "The database is busy: SQLite allows one writer at a time and this write waited "
            f"DATABASE_BUSY_TIMEOUT ({settings.DATABASE_BUSY_TIMEOUT:g} s) for it. Retry in a moment; "
            "for many concurrent writers set DATABASE_URL to a PostgreSQL database.",
        )
    return "database_unavailable", "The database is unreachable (restarting?): retry in a moment."
