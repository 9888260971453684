"""WebSocket frames: the turn's events as JSON, with ``completed``/``failed`` named ``done``/``error``."""

from __future__ import annotations

from typing import Any

FRAME_TYPES = {"completed": "done", "failed": "error"}


def ws_frame(event: dict[str, Any]) -> dict[str, Any]:
    kind = event["type"]
    return {**event, "type": FRAME_TYPES.get(kind, kind)} if kind in FRAME_TYPES else event


def ws_error(code: str, message: str, **details: Any) -> dict[str, Any]:
    """An error about the client's frame (not a turn's): no seq, the socket stays open."""
    return {
        "type": "error",
        "code": code,
        "message": message,
        **{k: v for k, v in details.items() if v is not None},
    }


def is_terminal(event: dict[str, Any]) -> bool:
    return event["type"] in ("completed", "failed", "done", "error") and "seq" in event
