"""This process's running turn jobs, and whether it still accepts turns.

Kept apart from :mod:`conversations.turns.jobs` so that the turn service (which refuses turns once
shutdown began), recovery (whose heartbeat covers the local jobs) and resume (which reads a local
job's own record) read them without importing the jobs module, and nothing imports in a circle.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

running_jobs: dict[str, Any] = {}  # message id -> its conversations.turns.jobs.TurnJob
_accepting = True


def accepting_turns() -> bool:
    """False once a graceful shutdown began: new turns are refused (another instance answers)."""
    return _accepting


def start_accepting() -> None:
    """At start-up (ASGI lifespan): this process takes turns."""
    global _accepting
    _accepting = True


async def drain(grace: float) -> None:
    """Graceful shutdown: refuse new turns, let running ones finish for ``grace`` s, stop the rest."""
    global _accepting
    _accepting = False
    tasks = [job.task for job in running_jobs.values() if job.task is not None]
    if tasks:
        logger.info("shutdown: waiting up to %.0fs for %d running turn(s)", grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for job in list(running_jobs.values()):
            job.turn.stop(
                code="server_shutdown", message="The server shut down before the answer was complete."
            )
        if pending:
            await asyncio.wait(pending, timeout=10)
