"""A streaming HTTP client for the turn endpoints, parsing frames the way a browser would."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx


@dataclass
class SSEFrame:
    id: str | None = None
    event: str | None = None
    data: str = ""

    def json(self) -> dict:
        return json.loads(self.data)


@dataclass
class SSEParser:
    """Incremental text/event-stream parser (the WHATWG algorithm, minus retry)."""

    _buffer: str = ""
    _frame: SSEFrame = field(default_factory=SSEFrame)
    _data: list[str] = field(default_factory=list)

    def feed(self, text: str) -> list[SSEFrame]:
        self._buffer += text
        frames = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            line = line.rstrip("\r")
            if not line:
                if self._data or self._frame.event or self._frame.id:
                    self._frame.data = "\n".join(self._data)
                    frames.append(self._frame)
                self._frame, self._data = SSEFrame(), []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._frame.event = value
            elif name == "id":
                self._frame.id = value
        return frames


def sse_events(client: httpx.Client, url: str, body: dict, **kwargs) -> tuple[int, list[dict]]:
    """POST and collect every SSE frame's JSON (native format)."""
    parser = SSEParser()
    events: list[dict] = []
    with client.stream("POST", url, json=body, headers={"Accept": "text/event-stream"}, **kwargs) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, [response.json()]
        for text in response.iter_text():
            events.extend(frame.json() for frame in parser.feed(text))
    return response.status_code, events


def post_turn(url: str, session: str, content: str, key: str | None = None, **body) -> httpx.Response:
    """One native turn answered as JSON by the server at ``url`` (with an API key, or anonymous)."""
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(
        f"{url}/api/sessions/{session}/messages",
        json={"content": content, **body},
        headers=headers,
        timeout=30,
    )
