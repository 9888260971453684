"""OpenAI's ``metadata`` (Responses and Chat Completions): at most 16 pairs, keys of at most 64
characters, values strings of at most 512 — the limits OpenAI documents, so a request accepted here
is one OpenAI accepts, and a response's stored metadata stays small (16 values of 400 kB each were
stored and echoed before these limits).
"""

from __future__ import annotations

from typing import Any

from conversations.edge.bodies import Field
from conversations.edge.http_errors import HttpError

METADATA_PAIRS = 16
METADATA_KEY_CHARS = 64
METADATA_VALUE_CHARS = 512
LIMITS = (
    f"at most {METADATA_PAIRS} pairs, keys of at most {METADATA_KEY_CHARS} characters, "
    f"values strings of at most {METADATA_VALUE_CHARS} characters"
)


def _shown(key: str) -> str:
    """A key as an error quotes it: never the whole of a long one."""
    return repr(key if len(key) <= METADATA_KEY_CHARS else key[:METADATA_KEY_CHARS] + "…")


def _refused(problem: str) -> HttpError:
    return HttpError(422, "invalid_input", f"{problem}: metadata takes {LIMITS}.", field="metadata")


def read_metadata(field: Field) -> dict[str, Any]:
    """The request's ``metadata`` (``{}`` when absent), or a 422 naming the limit it breaks."""
    metadata = field.object("metadata") or {}
    if len(metadata) > METADATA_PAIRS:
        raise _refused(f"metadata has {len(metadata)} pairs")
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_CHARS:
            raise _refused(f"metadata key {_shown(key)} is {len(key)} characters")
        if not isinstance(value, str):
            raise _refused(f"metadata[{_shown(key)}] is not a string")
        if len(value) > METADATA_VALUE_CHARS:
            raise _refused(f"metadata[{_shown(key)}] is {len(value)} characters")
    return metadata
