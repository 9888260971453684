"""Recovering answers left ``streaming`` by a process that died (SIGKILL, OOM, power loss).

Every process heartbeats the turns it runs (a Redis key per turn, refreshed
every few seconds). A sweeper in every process marks ``interrupted`` the
answers still ``streaming`` that no live process heartbeats — keeping the
partial text that reached the replay buffer, with an estimated usage. It closes
them with the turn's own closing write (:func:`orm_writes.turn_finish`), guarded
so that an answer closed meanwhile by its turn is left alone. Without Redis
there is one process: at start-up every ``streaming`` answer is an orphan.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.prices import price_book
from conversations.db import run_db
from conversations.models import Message
from conversations.redis_client import redis_client
from conversations.turns.orm_writes import turn_finish
from conversations.turns.replay_buffer import BufferUnavailable, get_replay_buffer
from conversations.turns.rules import TurnOutcome
from conversations.turns.running import running_jobs
from providers.base import ProviderRequest, estimate_usage

logger = logging.getLogger(__name__)


def _heartbeat_seconds() -> float:
    return float(settings.TURN_HEARTBEAT_SECONDS)


def _alive_ttl() -> int:
    return max(1, round(_heartbeat_seconds() * 4))


ABANDONED_MESSAGE = "The server stopped before the answer was complete; the partial text was kept."


def alive_key(message_id: str) -> str:
    return f"chat:turn:{message_id}:alive"


async def heartbeat(message_ids: list[str]) -> None:
    if not settings.REDIS_URL or not message_ids:
        return
    async with redis_client().pipeline(transaction=False) as pipe:
        for message_id in message_ids:
            pipe.set(alive_key(message_id), "1", ex=_alive_ttl())
        await pipe.execute()


def _streaming_candidates(older_than) -> list[tuple[str, str, str, str]]:
    """``(message id, session id, provider, model)`` of answers streaming since before ``older_than``."""
    rows = Message.objects.filter(
        role=Message.Role.ASSISTANT, status=Message.Status.STREAMING, created_at__lt=older_than
    ).values_list("pk", "conversation_id", "provider", "model")[:500]
    return [(str(pk), str(conversation_id), provider, model) for pk, conversation_id, provider, model in rows]


def abandoned_outcome(content: str, provider: str, model: str) -> TurnOutcome:
    """How an orphan ends: ``interrupted``, its partial text kept, the provider and model it was
    opened with, the output usage estimated (the prompt is not known here: input stays unknown)."""
    usage = estimate_usage(ProviderRequest(model=model, messages=()), content)
    return TurnOutcome(
        status=Message.Status.INTERRUPTED,
        content=content,
        provider=provider,
        model=model,
        output_tokens=usage.output_tokens,
        usage_estimated=usage.estimated,
        cost=price_book.cost(provider, model, 0, usage.output_tokens, 0),  # the output's, at least
        error_code="server_stopped",
        error_message=ABANDONED_MESSAGE,
    )


async def _partial_text(message_id: str) -> str:
    try:
        events = await get_replay_buffer().read_after(message_id, 0)
    except BufferUnavailable:
        return ""
    return "".join(e.get("text", "") for e in events or () if e.get("type") == "delta")


async def sweep_orphans(*, local_running: set[str], startup: bool = False) -> list[str]:
    """Mark interrupted the streaming answers no process is running. Returns their ids."""
    orphan_age = timedelta(seconds=settings.TURN_ORPHAN_SECONDS)
    older_than = timezone.now() - (timedelta(0) if startup and not settings.REDIS_URL else orphan_age)
    candidates = [c for c in await run_db(_streaming_candidates, older_than) if c[0] not in local_running]
    if not candidates:
        return []
    if settings.REDIS_URL:
        alive = await redis_client().mget([alive_key(c[0]) for c in candidates])
        candidates = [c for c, flag in zip(candidates, alive, strict=True) if flag is None]
    recovered = []
    for message_id, conversation_id, provider, model in candidates:
        outcome = abandoned_outcome(await _partial_text(message_id), provider, model)
        # A partial, not the function: run_db does not retry it while the database is down (the
        # sweeper runs again soon, and must not hold up the heartbeat meanwhile).
        close = functools.partial(turn_finish, conversation_id, message_id, outcome, only_if_streaming=True)
        if await run_db(close):
            recovered.append(message_id)
    if recovered:
        logger.warning("recovered %d answer(s) left streaming by a stopped process", len(recovered))
    return recovered


class Maintenance:
    """Per event loop: the heartbeat of local turns and the orphan sweeper."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}

    def ensure(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._tasks.get(loop)
        if task is None or task.done():
            self._tasks[loop] = loop.create_task(self._run(), name="turn-maintenance")

    async def _run(self) -> None:
        first, since_sweep = True, 0.0
        while True:
            try:
                await heartbeat(list(running_jobs))
                if first or since_sweep >= settings.TURN_SWEEP_SECONDS:
                    await sweep_orphans(local_running=set(running_jobs), startup=first)
                    first, since_sweep = False, 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("turn maintenance failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(_heartbeat_seconds())
            since_sweep += _heartbeat_seconds()

    async def stop(self) -> None:
        task = self._tasks.pop(asyncio.get_running_loop(), None)
        if task is not None:
            task.cancel()


maintenance = Maintenance()
