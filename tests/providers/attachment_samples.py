"""Attachments the provider attachment tests send: a real PNG, a small PDF, a UTF-8 text file, and a
remote image, with the listing line the fake upstream answers for each (``tests/fake_upstream``)."""

from __future__ import annotations

import hashlib
import struct
import zlib

from providers.base import PDF, TEXT, ChatMessage, InputFile, ProviderRequest


def _png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size (a gradient, so different sizes differ in bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((x * 7 + y * 13) % 256 for x in range(width * 3)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


PNG_BYTES = _png(2, 2)
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
TEXT_BYTES = "Notes: caf\u00e9, na\u00efve \u2713\nsecond line\n".encode()
REMOTE_IMAGE_URL = "https://images.example.com/cat.png"

PNG = InputFile("image/png", PNG_BYTES, filename="cat.png", size=len(PNG_BYTES))
PDF_FILE = InputFile(PDF, PDF_BYTES, filename="report.pdf", size=len(PDF_BYTES))
TEXT_FILE = InputFile(TEXT, TEXT_BYTES, filename="notes.txt", size=len(TEXT_BYTES))
REMOTE_IMAGE = InputFile("image/png", None, url=REMOTE_IMAGE_URL, filename="cat.png", size=0)


def big_png(min_bytes: int) -> bytes:
    """A valid PNG of at least ``min_bytes`` bytes (uncompressed pixels)."""
    side = 2
    while len(data := _png(side, side)) < min_bytes:
        side *= 2
    return data


def line(number: int, media_type: str, data: bytes) -> str:
    """The fake upstream's line for decoded bytes, spelled out here (not taken from the fake)."""
    return f"[attachment {number}: {media_type} {len(data)} sha256={hashlib.sha256(data).hexdigest()}]"


def with_files(
    text: str, *files: InputFile, history: tuple[ChatMessage, ...] = (), **fields: object
) -> ProviderRequest:
    """A request whose last user message is ``text`` carrying ``files``."""
    model = fields.pop("model", "test-model")
    return ProviderRequest(
        model=model, messages=(*history, ChatMessage("user", text, attachments=files)), **fields
    )  # type: ignore[arg-type]
