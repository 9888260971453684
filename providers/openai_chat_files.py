"""Images and files in the Chat Completions shape (OpenAI, OpenAI-compatible servers, Z.AI).

Shapes as in ``PROVIDER_WIRE.md`` "Images and files on the wire". A user message with attachments
goes as a list of content parts: its text (when not empty) as ``{"type":"text"}``, then each
attachment in order:

* an image: ``{"type":"image_url","image_url":{"url": <data URL of its bytes, or its https URL>,
  "detail": <the client's detail>}}`` (``detail`` only when the client gave one);
* a PDF: ``{"type":"file","file":{"filename": <its name, or document.pdf>,"file_data": <data URL>}}``
  (Chat Completions has no ``file_url``: a remote PDF is fetched by the server first);
* a text file: ``{"type":"text","text": text_file_text(file)}`` (its filename, then its text).

Bytes go exactly as the user sent them (base64 in a data URL, never re-encoded as another format).
Kept apart from :mod:`providers.openai_chat` so a message without attachments costs nothing more.
"""

from __future__ import annotations

from typing import Any

from .base import PDF, TEXT, ChatMessage, InputFile, attachment_data, text_file_text

#: The ``filename`` of a PDF the client sent without a name (the API wants one with ``file_data``).
PDF_FILE_NAME = "document.pdf"


def chat_part(provider: str, file: InputFile, *, remote_images: bool = True) -> dict[str, Any]:
    """One attachment as a Chat Completions content part (see the module docstring). An image
    without its bytes goes as its URL only where the provider fetches it (``remote_images``)."""
    if file.media_type == TEXT:
        return {"type": "text", "text": text_file_text(file)}
    if file.media_type == PDF:
        attachment_data(provider, file)  # no file_url in Chat Completions: bytes or nothing
        return {
            "type": "file",
            "file": {"filename": file.filename or PDF_FILE_NAME, "file_data": file.data_url},
        }
    if file.data is None and not (remote_images and file.url):
        attachment_data(provider, file)  # refused, naming it
    image: dict[str, Any] = {"url": file.data_url if file.data is not None else file.url}
    if file.detail:
        image["detail"] = file.detail
    return {"type": "image_url", "image_url": image}


def chat_content(provider: str, message: ChatMessage, *, remote_images: bool = True) -> list[dict[str, Any]]:
    """A message's ``content`` with its attachments: its text part (when any), then one part each."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    return parts + [chat_part(provider, file, remote_images=remote_images) for file in message.attachments]


def joined_text(message: ChatMessage) -> str | None:
    """The message's text and its text files as one string (separated by a blank line), when every
    attachment is a text file; None when one is not (then it needs parts)."""
    if any(file.media_type != TEXT for file in message.attachments):
        return None
    texts = [message.content] if message.content else []
    return "\n\n".join(texts + [text_file_text(file) for file in message.attachments])
