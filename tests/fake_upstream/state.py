"""Shared, thread-safe state of one fake upstream: records, queued faults, defaults, stored responses.

The ASGI app (server thread) and the test code (any thread) both touch it, so every mutation and every
snapshot goes through ``UpstreamState.lock``. Readers get copies, never live lists.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .scenario import DEFAULT_CHUNKS, Fault, parse_fault


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as received: lowercase header names; ``json`` is the parsed body or ``None``."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: dict[str, Any] | None
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _QueuedFault:
    fault: Fault
    remaining: int
    model: str | None


@dataclass(slots=True)
class StoredResponse:
    """A Responses-API response kept for ``previous_response_id`` and ``GET /v1/responses/{id}``."""

    transcript: list[tuple[str, str]]
    body: dict[str, Any]


@dataclass(slots=True)
class StoredFile:
    """A file uploaded through the Gemini Files API: its bytes, for a later ``fileData`` to reference."""

    name: str  # files/<id>
    uri: str
    mime_type: str
    display_name: str
    data: bytes
    state: str  # ACTIVE, or PROCESSING for ``polls_left`` more GETs
    polls_left: int = 0
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        """The file as the Files API answers it (camelCase, ``sizeBytes`` a string)."""
        body: dict[str, Any] = {
            "name": self.name,
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": self.created,
            "updateTime": self.created,
            "expirationTime": self.created,
            "uri": self.uri,
            "state": self.state,
            "source": "UPLOADED",
        }
        if self.display_name:
            body["displayName"] = self.display_name
        return body


@dataclass(slots=True)
class PendingUpload:
    """A resumable upload started and not yet finalized."""

    version: str
    mime_type: str
    display_name: str
    size: int
    origin: str  # scheme://host of the server, for the file's URI
    received: bytearray = field(default_factory=bytearray)


@dataclass(slots=True)
class UpstreamState:
    """Everything the fake remembers between requests (see module docstring for threading)."""

    default_chunks: int = DEFAULT_CHUNKS
    default_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    requests: list[RecordedRequest] = field(default_factory=list)
    disconnects: list[tuple[str, float]] = field(default_factory=list)
    responses: dict[str, StoredResponse] = field(default_factory=dict)
    faults: list[_QueuedFault] = field(default_factory=list)
    files: dict[str, StoredFile] = field(default_factory=dict)
    uploads: dict[str, PendingUpload] = field(default_factory=dict)
    #: Files uploaded from now on stay PROCESSING for this many GETs (``hold_files_processing``).
    processing_polls: int = 0
    _boot_defaults: tuple[int, float] = (DEFAULT_CHUNKS, 0.0)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)
        self._boot_defaults = (self.default_chunks, self.default_delay)

    # ---- mutation -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear records, queued faults and stored responses; restore the start-up defaults."""
        with self.lock:
            self.requests.clear()
            self.disconnects.clear()
            self.responses.clear()
            self.faults.clear()
            self.files.clear()
            self.uploads.clear()
            self.processing_polls = 0
            self.default_chunks, self.default_delay = self._boot_defaults

    def push_fault(
        self, kind: str | int, times: int = 1, model: str | None = None, retry_after: float | None = None
    ) -> None:
        """Queue ``kind`` for the next ``times`` requests (only those for ``model`` if given)."""
        fault = parse_fault(str(kind), retry_after=retry_after)
        with self.lock:
            self.faults.append(_QueuedFault(fault, max(1, int(times)), model))

    def set_defaults(self, chunks: int | None = None, delay: float | None = None) -> None:
        """Change the chunk count / inter-chunk delay used when a request has no directive."""
        with self.lock:
            if chunks is not None:
                self.default_chunks = max(1, int(chunks))
            if delay is not None:
                self.default_delay = max(0.0, float(delay))

    def take_fault(self, model: str | None) -> Fault | None:
        """Consume one queued fault matching ``model`` (first match wins), or return ``None``."""
        with self.lock:
            for i, q in enumerate(self.faults):
                if q.model is None or q.model == model:
                    q.remaining -= 1
                    if q.remaining <= 0:
                        del self.faults[i]
                    return q.fault
        return None

    def defaults(self) -> tuple[int, float]:
        with self.lock:
            return self.default_chunks, self.default_delay

    def record_request(self, req: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(req)
            self.changed.notify_all()

    def record_disconnect(self, path: str) -> None:
        with self.lock:
            self.disconnects.append((path, time.time()))
            self.changed.notify_all()

    def store_response(self, resp_id: str, stored: StoredResponse) -> None:
        with self.lock:
            self.responses[resp_id] = stored

    def get_response(self, resp_id: str) -> StoredResponse | None:
        with self.lock:
            return self.responses.get(resp_id)

    def start_upload(self, upload_id: str, upload: PendingUpload) -> None:
        with self.lock:
            self.uploads[upload_id] = upload

    def pending_upload(self, upload_id: str) -> PendingUpload | None:
        with self.lock:
            return self.uploads.get(upload_id)

    def finish_upload(self, upload_id: str, stored: StoredFile) -> None:
        with self.lock:
            self.uploads.pop(upload_id, None)
            self.files[stored.name] = stored

    def get_file(self, name: str, *, poll: bool = False) -> StoredFile | None:
        """The stored file called ``name``; ``poll`` (a GET) brings a PROCESSING file closer to ACTIVE."""
        with self.lock:
            stored = self.files.get(name)
            if stored is not None and poll and stored.state == "PROCESSING":
                stored.polls_left -= 1
                if stored.polls_left <= 0:
                    stored.state = "ACTIVE"
            return stored

    def forget_files(self) -> None:
        """Forget every uploaded file (as Google does after 48 hours)."""
        with self.lock:
            self.files.clear()

    # ---- snapshots / waiting ----------------------------------------------------------------------
    def snapshot_requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self.requests)

    def snapshot_disconnects(self) -> list[tuple[str, float]]:
        with self.lock:
            return list(self.disconnects)

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Block until ``predicate()`` (called under the lock) is true or ``timeout`` elapses."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)
