"""The event stream of one chat turn.

Every wire format (SSE, NDJSON, OpenAI chunks, WebSocket frames, the seed
dialects) is an encoder of this one stream. Events are pure data: no ORM, no
provider. ``seq`` numbers the events of a turn from 1, so a client that
reconnects can say which it already has.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any, ClassVar


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@dataclass(frozen=True, slots=True)
class TurnEvent:
    type: ClassVar[str] = "event"

    seq: int
    message_id: str

    def to_dict(self) -> dict[str, Any]:
        """``type`` and the fields (all plain values: no deep copy needed, unlike ``dataclasses.asdict``)."""
        return {"type": self.type, **{name: getattr(self, name) for name in _field_names(type(self))}}


@dataclass(frozen=True, slots=True)
class Started(TurnEvent):
    """The assistant message exists (status ``streaming``); the provider is being called."""

    type: ClassVar[str] = "started"

    session_key: str
    conversation_id: str
    user_message_id: str
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class Delta(TurnEvent):
    type: ClassVar[str] = "delta"

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted(TurnEvent):
    """The model began call ``call_id`` of tool ``name``; ``index`` orders the calls of the answer."""

    type: ClassVar[str] = "tool_call_start"

    index: int
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta(TurnEvent):
    """A fragment of the call's arguments (JSON text, cut anywhere)."""

    type: ClassVar[str] = "tool_call_delta"

    index: int
    call_id: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallDone(TurnEvent):
    """The call is whole: ``arguments`` is its JSON text, ``input`` the parsed value (None when the
    text does not parse: the client decides what to answer)."""

    type: ClassVar[str] = "tool_call_done"

    index: int
    call_id: str
    name: str
    arguments: str
    input: Any = None


@dataclass(frozen=True, slots=True)
class ArtifactReady(TurnEvent):
    """A fenced code block of the answer, complete."""

    type: ClassVar[str] = "artifact"

    position: int
    language: str
    filename: str
    content: str


@dataclass(frozen=True, slots=True)
class UsageReported(TurnEvent):
    type: ClassVar[str] = "usage"

    input_tokens: int
    output_tokens: int
    total_tokens: int
    estimated: bool


@dataclass(frozen=True, slots=True)
class Completed(TurnEvent):
    type: ClassVar[str] = "completed"

    content: str
    finish_reason: str
    response_id: str
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class Failed(TurnEvent):
    """The turn ended without a complete answer.

    ``status`` is ``failed`` (the provider or the reply was at fault) or
    ``interrupted`` (stopped or disconnected); ``content`` is the partial text kept.
    """

    type: ClassVar[str] = "failed"

    status: str
    code: str
    message: str
    content: str
    retry_after: float | None = None


TERMINAL_EVENTS = (Completed, Failed)
# Every event of a turn's stream, by its type: what the API documents and a stored event decodes to.
EVENT_TYPES: dict[str, type[TurnEvent]] = {
    cls.type: cls
    for cls in (
        Started,
        Delta,
        ToolCallStarted,
        ToolCallDelta,
        ToolCallDone,
        ArtifactReady,
        UsageReported,
        Completed,
        Failed,
    )
}
