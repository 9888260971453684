"""Newline-delimited JSON: one event object per line."""

from __future__ import annotations

import orjson

from conversations.events import TurnEvent

CONTENT_TYPE = "application/x-ndjson"


def encode_ndjson(event: TurnEvent) -> bytes:
    return orjson.dumps(event.to_dict()) + b"\n"
