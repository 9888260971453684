"""``ws/chat/{session_key}/``: chat over a WebSocket, decoding frames and encoding turn events.

Client frames: ``message`` (the native API's body: content, client_message_id?, provider?, model?,
system?, temperature?, max_tokens?, json?, tools?, tool_choice?, parallel_tool_calls?; or
``role: "tool"`` with ``parts``, the results of the answer's tool calls), ``stop`` (message_id?),
``resume`` (message_id, after_seq), ``ping``.
Server frames: ``started``, ``delta``, ``tool_call_start``, ``tool_call_delta``, ``tool_call_done``,
``artifact``, ``usage``, ``done``, ``error`` (each with ``message_id`` and ``seq``), ``pong``, and
``error`` without seq for a bad client frame.
A socket follows a turn from its ``started`` frame, or from a ``resume``; events are never sent
twice nor out of order (they are filtered by seq).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.callers import Caller, scope_client_ip
from conversations import local_fanout
from conversations.codecs.base import Inbound
from conversations.codecs.native import NativeCodec
from conversations.db import run_db
from conversations.db_errors import DATABASE_DOWN, DATABASE_RETRY_AFTER_SECONDS, database_problem
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.presence import presence_add, presence_remove
from conversations.request_ids import request_id_from, request_id_var
from conversations.selectors import conversation_for_owner
from conversations.sockets.frames import FrameRate, TurnOrder, read_frame
from conversations.turns import resume
from conversations.turns.jobs import launch, session_group, turn_stop_for_owner
from conversations.turns.live import LiveTurn
from conversations.turns.running import running_jobs
from conversations.turns.service import turn_start
from conversations.wire.websocket import ws_error, ws_frame

logger = logging.getLogger(__name__)

NATIVE = NativeCodec()
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_POLICY_VIOLATION = 1008


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        headers = dict(self.scope.get("headers", []))
        request_id_var.set(request_id_from(headers.get(b"x-request-id", b"").decode("latin1")))
        self.session_key = self.scope["url_route"]["kwargs"]["session_key"]
        self.order = TurnOrder()
        self.rate = FrameRate(settings.WS_MAX_FRAMES_PER_SECOND)
        self._sending = asyncio.Lock()  # one event's frames at a time: the order holds across tasks
        self.group: str | None = None
        owner = self._owner()
        if owner is False:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        self.owner_id: int | None = owner  # type: ignore[assignment]
        conversation = await run_db(conversation_for_owner, self.owner_id, self.session_key)
        if conversation is None:
            await self._refuse(CLOSE_FORBIDDEN)
            return
        self.group = session_group(str(conversation.pk))
        self._local = local_fanout.subscribe(self.group)  # events queue here until the pump starts
        # Registered before the socket opens: a turn publishing from another process sees this
        # socket's presence (and then uses the channel layer) from the client's first frame on.
        await presence_add(self.group, self.channel_name)
        degraded = False
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception as exc:  # Redis down: this process's turns still reach the socket
            logger.warning("channel layer unavailable (%s): cross-process fan-out off", type(exc).__name__)
            degraded = True
        await self.accept()
        # After the accept: a frame sent before it is an ASGI error (the socket would be lost).
        self._pump = asyncio.get_running_loop().create_task(self._pump_local())
        if degraded:
            await self.send_json(
                ws_error(
                    "fanout_degraded",
                    "Live updates from other servers are unavailable; this one's still arrive.",
                )
            )

    def _owner(self) -> int | bool | None:
        """The owner id, None for anonymous use, or False when the socket must be refused."""
        if self.scope.get("auth_error") is not None:
            return False
        caller = self.scope.get("caller")
        if caller is not None:
            return caller.owner_id
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            return user.pk
        return None if settings.ALLOW_ANONYMOUS and not getattr(settings, "API_KEY", "") else False

    def _caller(self) -> Caller:
        """The socket's caller: its API key's, else its user's or the anonymous one at its address."""
        caller = self.scope.get("caller")
        if caller is not None:
            return caller
        return Caller(owner_id=self.owner_id, ip=scope_client_ip(self.scope))

    async def _refuse(self, code: int) -> None:
        """Accept, then close with an application code the client can read (4401, 4403)."""
        await self.accept()
        await self.close(code=code)

    async def _pump_local(self) -> None:
        while True:
            for event in await self._local.get():
                await self._send_event(event)

    async def disconnect(self, code: int) -> None:
        if self.group is None:
            return
        local_fanout.unsubscribe(self.group, self._local)
        pump = getattr(self, "_pump", None)  # none when the socket closed before it was accepted
        if pump is not None:
            pump.cancel()
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        except Exception as exc:
            logger.warning("channel layer unavailable (%s) while leaving a group", type(exc).__name__)
        await presence_remove(self.group, self.channel_name)
        for job in list(running_jobs.values()):
            if job.group == self.group:
                job.watch_listeners()

    # --- client frames ---------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.rate.allow(time.monotonic()):
            if self.rate.should_close():
                await self.close(code=CLOSE_POLICY_VIOLATION)
            elif self.rate.should_warn():
                await self.send_json(ws_error("too_many_frames", "Slow down: frames are being dropped."))
            return
        frame, error = read_frame(text_data, settings.WS_MAX_FRAME_BYTES)
        if error is not None:
            await self.send_json(error)
            return
        handlers = {"message": self.on_message, "stop": self.on_stop, "resume": self.on_resume}
        await handlers.get(frame["type"], self.on_ping)(frame)  # type: ignore[index]

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def on_message(self, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_message_id")
        inbound = Inbound(
            headers={},
            body={k: v for k, v in frame.items() if k != "type"},  # the frame's kind, not a field
            caller=self._caller(),
            params={"session_key": self.session_key},
            received_at=0.0,
        )
        try:  # a message frame is the native protocol's body: the native codec decodes it
            turn = await turn_start(await NATIVE.decode(inbound))
        except (HttpError, TurnRejected) as exc:
            await self.send_json(ws_error(exc.code, exc.message, client_message_id=client_id, **exc.details))
            return
        except DATABASE_DOWN as exc:  # nothing was stored: the client may send it again
            code, message = database_problem(exc)
            await self.send_json(
                ws_error(code, message, client_message_id=client_id, retry_after=DATABASE_RETRY_AFTER_SECONDS)
            )
            return
        if isinstance(turn, LiveTurn):
            launch(turn, grace=settings.WS_DETACH_GRACE_SECONDS, listen=False)
            return
        # a replayed turn (its client_message_id was seen): to this socket only, all of it, even when
        # this socket saw the turn end (the order would drop a turn it has finished)
        self.order.follow(turn.message_id, 0)
        async for event in turn.events():
            await self._send_event(event.to_dict())

    async def on_stop(self, frame: dict[str, Any]) -> None:
        message_id = frame.get("message_id")
        if message_id is not None and not isinstance(message_id, str):
            await self.send_json(
                ws_error("invalid_input", "message_id must be a string.", field="message_id")
            )
            return
        if await turn_stop_for_owner(self.owner_id, self.session_key, message_id) is None:
            await self.send_json(ws_error("not_running", "No answer is being generated in this session."))

    async def on_resume(self, frame: dict[str, Any]) -> None:
        message_id, after_seq = frame.get("message_id"), frame.get("after_seq", 0)
        if not isinstance(message_id, str) or not isinstance(after_seq, int) or isinstance(after_seq, bool):
            await self.send_json(
                ws_error("invalid_input", "resume needs message_id (string) and after_seq (whole number).")
            )
            return
        try:
            events = await resume.missed_events(self.owner_id, self.session_key, message_id, after_seq)
        except resume.ResumeError as exc:
            await self.send_json(ws_error(exc.code, exc.message, message_id=message_id))
            return
        self.order.follow(message_id, after_seq)
        for event in events:
            await self._send_event(event)

    # --- group events ----------------------------------------------------------------------
    async def turn_events(self, message: dict[str, Any]) -> None:
        for event in message["events"]:
            await self._send_event(event)

    async def _send_event(self, event: dict[str, Any]) -> None:
        """Send a turn event once and in order, never skipping one (see :class:`TurnOrder`)."""
        async with self._sending:
            for ready in self.order.arrived(event):
                await self.send(text_data=orjson.dumps(ws_frame(ready)).decode())

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """A frame for a client that is already gone is dropped (uvicorn raises ``ClientDisconnected``).

        Its disconnect is on the way and cleans the socket up (presence, groups); raising here would
        end the consumer (or the local pump) before that, leaving a listener that is not there.
        """
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except OSError:
            logger.debug("frame dropped: the client of %s is gone", self.session_key)

    async def send_json(self, content: Any, close: bool = False) -> None:
        await self.send(text_data=await self.encode_json(content), close=close)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return orjson.dumps(content).decode()
