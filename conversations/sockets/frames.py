"""The WebSocket's own concerns, as small parts without a socket: reading a client frame, the
frame rate a socket may send, and the order in which turn events go out.

The consumer (:mod:`conversations.sockets.chat`) wires them to Channels; turns start through the
same codec as the native HTTP API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from conversations.wire.websocket import is_terminal, ws_error

FRAME_TYPES = ("message", "stop", "resume", "ping")


def read_frame(text_data: str | None, max_bytes: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(frame, None)`` for a well-formed client frame, else ``(None, error frame)``."""
    if text_data is None:
        return None, ws_error("bad_frame", "Send JSON text frames, not binary.")
    if len(text_data) > max_bytes:
        return None, ws_error("frame_too_large", f"Frames are limited to {max_bytes} bytes.")
    try:
        frame = orjson.loads(text_data)
    except orjson.JSONDecodeError:
        return None, ws_error("bad_frame", "The frame is not valid JSON.")
    if not isinstance(frame, dict):
        return None, ws_error("bad_frame", "A frame must be a JSON object with a type.")
    if frame.get("type") not in FRAME_TYPES:
        message = "type must be one of message, stop, resume, ping."
        return None, ws_error("unknown_type", message, got=frame.get("type"))
    return frame, None


@dataclass(slots=True)
class FrameRate:
    """A token bucket: ``rate`` frames a second, bursts up to twice that. ``strikes`` counts the
    frames refused, so the socket can warn now and then and close a client that keeps flooding."""

    rate: float
    tokens: float | None = None
    last: float | None = None
    strikes: int = 0

    def allow(self, now: float) -> bool:
        if self.tokens is None or self.last is None:
            self.tokens, self.last = self.rate * 2, now
        self.tokens = min(self.rate * 2, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            self.strikes += 1
            return False
        self.tokens -= 1
        return True

    def should_close(self) -> bool:
        return self.strikes > self.rate * 5

    def should_warn(self) -> bool:
        return self.strikes == 1 or self.strikes % 50 == 0


@dataclass(slots=True)
class TurnOrder:
    """Which turn events a socket sends, and when: each once, in seq order, none skipped.

    An event may come both from this process and through the channel layer. A socket that resumes
    mid-turn may have dropped this process's copy of an event (before it followed the turn) that
    was not in the replay buffer yet, and then get later events before that one comes through the
    layer: those wait until the gap is filled. A turn is followed from its first event, or from
    :meth:`follow` (a resume).
    """

    following: dict[str, int] = field(default_factory=dict)  # message id -> last seq sent
    held: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    finished: dict[str, None] = field(default_factory=dict)  # insertion-ordered, the newest kept
    remember: int = 200

    def follow(self, message_id: str, after_seq: int) -> None:
        self.finished.pop(message_id, None)  # asked for again: send it again
        self.following[message_id] = max(self.following.get(message_id, 0), after_seq)

    def arrived(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The events to send now, in order, because ``event`` arrived."""
        message_id, seq = event["message_id"], event["seq"]
        if event.get("snapshot"):  # the stored answer, numbered on its own
            return [self._sent(event)]
        if message_id in self.finished:
            return []  # a late duplicate of a turn this socket saw end
        last = self.following.get(message_id)
        if last is None:
            if seq != 1:
                return []  # joined mid-turn without resuming: the client asks with resume
            last = 0
        if seq <= last:
            return []
        if seq > last + 1:
            self.held.setdefault(message_id, {})[seq] = event
            return []
        out = [self._sent(event)]
        held = self.held.get(message_id)
        while held and message_id in self.following:
            queued = held.pop(self.following[message_id] + 1, None)
            if queued is None:
                break
            out.append(self._sent(queued))
        return out

    def _sent(self, event: dict[str, Any]) -> dict[str, Any]:
        message_id = event["message_id"]
        self.following[message_id] = event["seq"]
        if is_terminal(event):
            self.following.pop(message_id, None)
            self.held.pop(message_id, None)
            self.finished[message_id] = None
            while len(self.finished) > self.remember:
                self.finished.pop(next(iter(self.finished)))
        return event
