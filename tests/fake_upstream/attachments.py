"""What the fake upstream received as images and files, and how its answer lists them.

Every wire checks its own part shapes (:mod:`.openai_parts`, :mod:`.gemini_wire`) and turns each
image or file part into a :class:`Received`: its media type and its bytes DECODED from the wire
(base64 in a data URL, bare base64, or a Files API upload), or the URL it was sent by. A request
that carries any is answered with one line per attachment, in the order received across all its
messages (:func:`attachment_listing`), before the usual echo, so a test proves the bytes arrived
exactly::

    [attachment 1: image/png 68 sha256=<64 hex digits of the decoded bytes>]
    [attachment 2: url https://example.com/cat.png]

(JSON mode keeps its JSON reply.) Each attachment also counts :data:`ATTACHMENT_TOKENS` input
tokens in the usage, as providers count image tokens in their prompt tokens. Text files travel as
text parts and are part of the message's text, not listed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

#: Input tokens the fake counts for each received image or file (on top of the words).
ATTACHMENT_TOKENS = 100

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)
#: The image types the providers take (what a data URL's or a bare payload's type may be).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
PDF = "application/pdf"


@dataclass(frozen=True, slots=True)
class Received:
    """One image or file part as received: decoded bytes with their type, or a URL, or an id."""

    media_type: str = ""
    data: bytes | None = None
    url: str = ""
    file_id: str = ""

    def line(self, number: int) -> str:
        if self.data is not None:
            return attachment_line(number, self.media_type, self.data)
        if self.url:
            return f"[attachment {number}: url {self.url}]"
        return f"[attachment {number}: file_id {self.file_id}]"


def attachment_line(number: int, media_type: str, data: bytes) -> str:
    """``[attachment <n>: <media type> <byte count> sha256=<hex>]`` for decoded bytes."""
    return f"[attachment {number}: {media_type} {len(data)} sha256={hashlib.sha256(data).hexdigest()}]"


def attachment_listing(received: list[Received]) -> str:
    """One line per received attachment, numbered from 1 in the order received."""
    return "\n".join(item.line(number) for number, item in enumerate(received, 1))


def decode_base64(text: str) -> bytes | None:
    """Strict base64 in either alphabet (google-genai sends bytes URL-safe), padding optional;
    None when it is not base64."""
    if not isinstance(text, str) or not text or text.strip() != text:
        return None
    standard = text.replace("-", "+").replace("_", "/")
    standard += "=" * (-len(standard) % 4)
    try:
        return base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_data_url(url: str) -> tuple[str, bytes] | None:
    """``(media type, decoded bytes)`` of a ``data:<type>;base64,<payload>`` URL; None when it is
    not one (or its payload is not base64)."""
    match = _DATA_URL.match(url) if isinstance(url, str) else None
    if match is None:
        return None
    data = decode_base64(match.group(2))
    return None if data is None else (match.group(1), data)


def sniff_image(data: bytes) -> str:
    """An image's type from its first bytes (for bare base64, which carries no type)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/unknown"


def remote(url: str) -> bool:
    """An address a provider would fetch (http or https)."""
    return isinstance(url, str) and re.match(r"^https?://[^\s/]+", url) is not None
