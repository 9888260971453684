"""A turn as a job that outlives any one connection.

The job runs the turn in a task of its own and hands every event to:
- its local listeners (the HTTP stream that started it), first and at once;
- the replay buffer (:mod:`conversations.turns.replay_buffer`), for resume on any process;
- the session's channel-layer group, so every WebSocket of the session, on any
  process, sees the same frames.
Publishing is batched by a single publisher task, so order is kept and a fast
stream costs a few Redis round trips rather than two per token.

Policy: a turn keeps running while a listener is attached (a local stream, or a
WebSocket of its session on any process) or for a grace period after the last
one leaves (``HTTP_DETACH_GRACE_SECONDS``, ``WS_DETACH_GRACE_SECONDS``); then it
is stopped and saved ``interrupted``, unless it was started ``unattended`` (a background
response: it runs to its end with nobody listening). ``stop`` from any listener, on any
process, stops it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from conversations import local_fanout
from conversations.db import run_db
from conversations.events import TurnEvent
from conversations.models import Message
from conversations.presence import presence_count
from conversations.redis_client import redis_client
from conversations.request_end import on_request_end
from conversations.selectors import message_for_owner, streaming_message_for_owner
from conversations.telemetry import stages
from conversations.turns.live import LiveTurn
from conversations.turns.recovery import maintenance
from conversations.turns.replay_buffer import BufferUnavailable, get_replay_buffer
from conversations.turns.running import running_jobs

logger = logging.getLogger(__name__)

END = None  # put on a listener queue when the turn is over
#: How old a listener count from the replay buffer may be to stop a turn nobody listens to.
PRESENCE_FRESH_SECONDS = 0.5


def session_group(conversation_id: str) -> str:
    return f"chat.{conversation_id.replace('-', '')}"


class _WarnOnce:
    def __init__(self, interval: float = 30.0) -> None:
        self.interval, self.last = interval, 0.0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            logger.warning(message, *args)


_warn_buffer = _WarnOnce()
_warn_layer = _WarnOnce()


class TurnJob:
    def __init__(self, turn: LiveTurn, *, grace: float, unattended: bool = False) -> None:
        self.turn = turn
        self.unattended = unattended  # exempt from the grace: never stopped for want of listeners
        self.message_id = turn.message_id
        self.group = session_group(turn.opened.conversation_id)
        self.grace = grace
        self.owner_id = turn.request.owner_id
        self.session_key = turn.opened.session_key
        self._listeners: set[asyncio.Queue] = set()
        self.events: list[dict[str, Any]] = []  # every event so far: resume in this process reads here
        self._outbox: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._finished = False
        self._watcher: asyncio.Task | None = None
        # listeners of the session anywhere (sockets, resumed streams), as the last replay-buffer
        # append counted them, and when: (count, time.monotonic()); None until known
        self._presence_seen: tuple[int, float] | None = None
        self.task: asyncio.Task | None = None

    # --- listeners -------------------------------------------------------------------------
    def attach(self) -> asyncio.Queue:
        queue: asyncio.Queue = stages.DeltaQueue() if stages.on else asyncio.Queue()
        self._listeners.add(queue)
        return queue

    def detach(self, queue: asyncio.Queue) -> None:
        self._listeners.discard(queue)
        if not self._listeners:
            self.watch_listeners()

    def watch_listeners(self) -> None:
        """Stop the turn once nobody has listened for the grace period.

        Without a grace period, a count of the session's listeners taken by the last replay-buffer
        append (at most :data:`PRESENCE_FRESH_SECONDS` ago) that found none stops the turn at once,
        with no Redis round trip in between: the client that left is noticed as soon as possible.
        """
        if self.unattended or self._finished or (self._watcher is not None and not self._watcher.done()):
            return
        seen = self._presence_seen
        fresh = seen is not None and time.monotonic() - seen[1] <= PRESENCE_FRESH_SECONDS
        if self.grace <= 0 and fresh and seen[0] == 0:
            self._stop_unheard()
            return
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        await asyncio.sleep(self.grace)
        while not self._finished and not self._listeners:
            if await presence_count(self.group) == 0:
                self._stop_unheard()
                return
            await asyncio.sleep(max(self.grace, 1.0))

    def _stop_unheard(self) -> None:
        self.turn.stop(
            code="disconnected", message="Every listener went away before the answer was complete."
        )

    def stop(self) -> bool:
        return self.turn.stop()

    # --- running ---------------------------------------------------------------------------
    def start(self) -> TurnJob:
        running_jobs[self.message_id] = self
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"turn-{self.message_id}")
        return self

    async def _run(self) -> None:
        publisher = asyncio.get_running_loop().create_task(self._publisher())
        try:
            _ensure_stop_listener()
            async for event in self.turn.events():
                for queue in self._listeners:
                    queue.put_nowait(event)
                data = event.to_dict()
                self.events.append(data)
                local_fanout.publish(self.group, [data])
                self._outbox.append(data)
                self._wake.set()
        except Exception:
            logger.exception("turn job %s crashed", self.message_id)
        finally:
            self._finished = True
            self._wake.set()
            for queue in self._listeners:
                queue.put_nowait(END)
            try:
                await asyncio.shield(publisher)
            finally:
                running_jobs.pop(self.message_id, None)

    async def _publisher(self) -> None:
        layer = get_channel_layer()
        expires_at = 0.0  # when the replay buffer's expiry was last set, plus half the TTL
        while True:
            # what arrives while a batch is on its way (the buffer writes every
            # TURN_PUBLISH_INTERVAL_SECONDS) goes in the next batch
            await self._wake.wait()
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            if batch:
                now = time.monotonic()
                final = self._finished and not self._outbox
                refresh = final or now >= expires_at
                if refresh:
                    expires_at = now + settings.TURN_BUFFER_TTL_SECONDS / 2
                await self._publish(layer, batch, refresh_expiry=refresh)
            if self._finished and not self._outbox:
                return

    async def _publish(self, layer: Any, batch: list[dict[str, Any]], *, refresh_expiry: bool) -> None:
        """To the replay buffer and to sockets of other processes (this process's had each event at once).

        One Redis round trip appends the batch and counts the session's listeners everywhere; the
        channel layer is used only when some of them do not get this process's fan-out (sockets
        of other processes, SSE resumes).
        """
        elsewhere = False
        try:
            listeners = await get_replay_buffer().append(
                self.message_id, batch, refresh_expiry=refresh_expiry, count_listeners_of=self.group
            )
            self._presence_seen = (listeners, time.monotonic())
            elsewhere = listeners > local_fanout.subscriber_count(self.group)
        except BufferUnavailable as exc:
            _warn_buffer("resume buffer unavailable, resume is degraded: %s", exc)
            self._presence_seen = None
            elsewhere = True  # cannot tell: let the layer try
        if not elsewhere:
            return
        try:
            await layer.group_send(self.group, {"type": "turn.events", "events": batch})
        except Exception as exc:
            _warn_layer("channel layer unavailable, other listeners miss events: %s", type(exc).__name__)


def launch(
    turn: LiveTurn, *, grace: float, listen: bool, unattended: bool = False
) -> tuple[TurnJob, asyncio.Queue | None]:
    """Start ``turn`` as a job; with ``listen`` the caller is attached as a local listener first;
    ``unattended``, it runs to its end whether anyone listens or not."""
    maintenance.ensure()
    job = TurnJob(turn, grace=grace, unattended=unattended)
    queue = job.attach() if listen else None
    job.start()
    if not listen:
        job.watch_listeners()
    return job, queue


async def listen(job: TurnJob, queue: asyncio.Queue):
    """Events from a local listener queue until the turn ends; detaching (for any reason) on exit."""
    try:
        while True:
            event: TurnEvent | None = await queue.get()
            if event is END:
                return
            yield event
    finally:
        job.detach(queue)


# --- stopping across processes ---------------------------------------------------------------
# A stop is published on a Redis pub/sub channel that every process listens to; the process
# running the turn stops it. (Not the channel layer: a second receiver on channels-redis's
# process channel delays the consumers' own deliveries.)
STOP_CHANNEL = "chat:turn-stop"
_stop_listeners: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def _ensure_stop_listener() -> None:
    if not settings.REDIS_URL:
        return
    loop = asyncio.get_running_loop()
    task = _stop_listeners.get(loop)
    if task is None or task.done():
        _stop_listeners[loop] = loop.create_task(_stop_listener())


async def _stop_listener() -> None:
    while True:
        try:
            async with redis_client().pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(STOP_CHANNEL)
                async for message in pubsub.listen():
                    job = running_jobs.get(message["data"].decode())
                    if job is not None:
                        job.stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _warn_layer("stop listener lost Redis (%s); retrying", type(exc).__name__)
            await asyncio.sleep(1.0)


async def turn_stop(message_id: str) -> bool:
    """Stop a running turn wherever it runs. The caller has checked that the asker owns it."""
    job = running_jobs.get(message_id)
    if job is not None:
        return job.stop()
    if not settings.REDIS_URL:
        return False
    try:
        receivers = await redis_client().publish(STOP_CHANNEL, message_id)
    except Exception as exc:
        _warn_layer("could not forward stop for %s: %s", message_id, type(exc).__name__)
        return False
    return receivers > 0


def follow(turn: LiveTurn | Any, *, grace: float, unattended: bool = False) -> Any:
    """The events of a just-started turn for a connection-bound client (HTTP stream or JSON);
    ``unattended``, the turn goes on when the client leaves."""
    if not isinstance(turn, LiveTurn):
        return turn.events()  # a replayed turn: nothing runs
    job, queue = launch(turn, grace=grace, listen=True, unattended=unattended)
    # ``listen`` detaches in its ``finally``; a client that disconnects before the body is streamed
    # (while the middleware still handles the response) never starts it: the request's end does.
    on_request_end(lambda: job.detach(queue))
    return listen(job, queue)


def _running_answer_id(owner_id: int | None, session_key: str, message_id: str | None) -> str | None:
    """The owner's answer of this session being generated: the one named, else the streaming one."""
    if message_id:
        message = message_for_owner(owner_id, session_key, message_id)
        return str(message.pk) if message is not None and message.status == Message.Status.STREAMING else None
    message = streaming_message_for_owner(owner_id, session_key)
    return str(message.pk) if message is not None else None


async def turn_stop_for_owner(
    owner_id: int | None, session_key: str, message_id: str | None = None
) -> str | None:
    """Stop the owner's running answer in this session (the one named, else the one streaming),
    wherever it runs; its id, or None when no such answer is being generated."""
    answer_id = await run_db(_running_answer_id, owner_id, session_key, message_id)
    if answer_id is None or not await turn_stop(answer_id):
        return None
    return answer_id
