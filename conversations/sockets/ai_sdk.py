"""``ws/ai-sdk/chat``: the AI SDK's ``WebSocketChatTransport`` (ai 7) on the turn jobs.

Many chats' turns over one socket, each request named by the client's ``requestId``:

- ``send`` (``id`` = the chat = our session key, ``messages``, ``trigger``, ``messageId``,
  ``headers``, ``body``) starts a turn as ``POST /api/ai-sdk/chat`` does (a user's message, or the
  results of the client's tools: see :mod:`conversations.codecs.ai_sdk`), and answers ``chunk``
  frames (``sequence`` from 0, one UI message chunk each) and ``end``; a refused turn answers
  ``error`` (``errorText``).
- ``resume`` (a chat ``id``, optional ``lastSequence``) answers ``no-active`` when the chat has no
  answer being generated; else ``start`` and that answer's chunks from the first (after
  ``lastSequence``), live until ``end``, from whichever process runs it (the replay buffer and
  the channel layer). A second tab of the chat resumes and sees the same turn.
- ``abort`` stops the turn its request follows, wherever it runs (saved ``interrupted``).

A chunk's ``sequence`` is its position in the encoding of the turn's events from the first, so
resuming by it is exact in any process. Authentication is the handshake's: a ticket from
``POST /api/ws-ticket`` (``?ticket=``, bound to the page's Origin; taken by
``tickets.TicketWebsocketMiddleware``), the session cookie or an API key header; the Origin
is checked for every socket (``chatproject/asgi.py``). A frame that is not
valid (see ``safeValidateWebSocketChatTransportRequest`` in the ``ai`` package) closes the socket
with 1008, as the protocol says; too large a frame with 1009.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.callers import Caller, scope_client_ip
from conversations.codecs.ai_sdk import continued_message_id, decode_chat_request
from conversations.codecs.base import Inbound
from conversations.codecs.request_fields import TRIGGERS
from conversations.db_errors import DATABASE_DOWN, database_problem
from conversations.edge.http_errors import HttpError
from conversations.errors import TurnRejected
from conversations.namespaces import natively_reachable
from conversations.sockets.frames import FrameRate
from conversations.turns import resume
from conversations.turns.jobs import launch, listen, turn_stop_for_owner
from conversations.turns.live import LiveTurn
from conversations.turns.service import turn_start
from conversations.views.streams import resumed_events
from conversations.views.ui_chat import running_answer, ui_chat_request
from conversations.wire.ui_message import UIMessageEncoder

logger = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHENTICATED = 4401
ROLES = ("system", "user", "assistant")


def _string_record(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _ui_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict)
        and isinstance(m.get("id"), str)
        and m.get("role") in ROLES
        and isinstance(m.get("parts"), list)
        and all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in m["parts"])
        for m in value
    )


def valid_frame(frame: Any) -> bool:
    """What ``safeValidateWebSocketChatTransportRequest`` accepts (the SDK's own check)."""
    if not isinstance(frame, dict) or not isinstance(frame.get("requestId"), str):
        return False
    kind = frame.get("type")
    if kind == "abort":
        return True
    if not isinstance(frame.get("id"), str) or not _string_record(frame.get("headers")):
        return False
    if not isinstance(frame.get("body"), dict):
        return False
    if kind == "resume":
        last = frame.get("lastSequence")
        return last is None or (isinstance(last, int) and not isinstance(last, bool) and last >= 0)
    if kind != "send" or frame.get("trigger") not in TRIGGERS:
        return False
    message_id = frame.get("messageId")
    return (message_id is None or isinstance(message_id, str)) and _ui_messages(frame.get("messages"))


class AISDKChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.requests: dict[str, tuple[asyncio.Task, str, list[str | None]]] = {}
        self.rate = FrameRate(settings.WS_MAX_FRAMES_PER_SECOND)
        caller = await self._authenticate()
        await self.accept()
        if caller is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.caller = caller

    async def _authenticate(self) -> Caller | None:
        """The caller the handshake names (a ticket, an API key, the session), or None: refused."""
        ip = scope_client_ip(self.scope)
        if self.scope.get("auth_error") is not None:
            return None
        if self.scope.get("caller") is not None:
            return self.scope["caller"]
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            return Caller(owner_id=user.pk, ip=ip)
        if settings.ALLOW_ANONYMOUS and not settings.API_KEY:
            return Caller(owner_id=None, ip=ip)
        return None

    async def disconnect(self, code: int) -> None:
        for task, _, _ in getattr(self, "requests", {}).values():
            task.cancel()

    # --- client frames -----------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "caller"):
            return
        if not self.rate.allow(time.monotonic()) and self.rate.should_close():
            await self.close(code=CLOSE_POLICY_VIOLATION)
            return
        if text_data is not None and len(text_data) > settings.AI_SDK_WS_MAX_FRAME_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            frame = orjson.loads(text_data) if text_data is not None else None
        except orjson.JSONDecodeError:
            frame = None
        if not valid_frame(frame):
            await self.close(code=CLOSE_POLICY_VIOLATION)
            return
        request_id = frame["requestId"]
        if frame["type"] == "abort":
            await self.on_abort(request_id)
            return
        if request_id in self.requests:
            await self.close(code=CLOSE_POLICY_VIOLATION)  # a request id is used once per socket
            return
        handler = self.on_send if frame["type"] == "send" else self.on_resume
        answer: list[str | None] = [None]  # the answer this request follows, once known
        task = asyncio.get_running_loop().create_task(handler(request_id, frame, answer))
        self.requests[request_id] = (task, frame["id"], answer)
        task.add_done_callback(lambda _: self.requests.pop(request_id, None))

    async def on_send(self, request_id: str, frame: dict[str, Any], answer: list[str | None]) -> None:
        body = {**frame["body"], **{k: frame.get(k) for k in ("id", "messages", "trigger", "messageId")}}
        inbound = Inbound(headers=frame["headers"], body=body, caller=self.caller, params={}, received_at=0.0)
        try:
            turn_request = decode_chat_request(body, inbound)
            if not natively_reachable(self.caller.owner_id, turn_request.session_key):
                raise HttpError(404, "not_found", "No chat with this id.")
            turn = await turn_start(await ui_chat_request(turn_request))
        except (HttpError, TurnRejected) as exc:
            await self._send(request_id, "error", errorText=exc.message)
            return
        except DATABASE_DOWN as exc:  # nothing was stored: the client may send it again
            await self._send(request_id, "error", errorText=database_problem(exc)[1])
            return
        answer[0] = turn.message_id
        if isinstance(turn, LiveTurn):
            job, queue = launch(turn, grace=settings.WS_DETACH_GRACE_SECONDS, listen=True)
            events: AsyncIterator[Any] = listen(job, queue)  # type: ignore[arg-type]
        else:
            events = turn.events()  # a retried request: the stored answer
        await self._relay(request_id, events, after=-1, ui_message_id=continued_message_id(body))

    async def on_resume(self, request_id: str, frame: dict[str, Any], answer: list[str | None]) -> None:
        owner_id, chat_id = self.caller.owner_id, frame["id"]
        running = None
        if natively_reachable(owner_id, chat_id):
            running = await running_answer(owner_id, chat_id)
        if running is None:
            await self._send(request_id, "no-active")
            return
        answer[0] = running.message_id
        await self._send(request_id, "start")
        try:
            events = resumed_events(owner_id, chat_id, running.message_id, 0)
            after = frame.get("lastSequence", -1)
            await self._relay(request_id, events, after=after, ui_message_id=running.ui_message_id)
        except resume.ResumeError as exc:
            await self._send(request_id, "error", errorText=exc.message)

    async def on_abort(self, request_id: str) -> None:
        entry = self.requests.get(request_id)
        if entry is None:
            return  # finished already, or never known: nothing to stop
        task, chat_id, answer = entry
        if answer[0] is not None:
            await turn_stop_for_owner(self.caller.owner_id, chat_id, answer[0])
        task.cancel()

    # --- server frames -----------------------------------------------------------------------
    async def _relay(
        self, request_id: str, events: AsyncIterator[Any], *, after: int, ui_message_id: str | None
    ) -> None:
        """The events as numbered chunks (those after ``after`` sent), then ``end``;
        ``ui_message_id``: the UI message the answer goes on in (a tool loop's)."""
        encoder, sequence = UIMessageEncoder(ui_message_id), -1
        async for event in events:
            data = event if isinstance(event, dict) else event.to_dict()
            for chunk in encoder.chunks(data):
                sequence += 1
                if sequence > after:
                    await self._send(request_id, "chunk", sequence=sequence, chunk=chunk)
            if data["type"] in ("completed", "failed"):
                break
        await self._send(request_id, "end")

    async def _send(self, request_id: str, kind: str, **fields: Any) -> None:
        try:
            await self.send(
                text_data=orjson.dumps({"type": kind, "requestId": request_id, **fields}).decode()
            )
        except OSError:
            logger.debug("frame dropped: the client of request %s is gone", request_id)
