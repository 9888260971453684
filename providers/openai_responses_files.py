"""Images and files in the Responses API's shape.

Shapes as in ``PROVIDER_WIRE.md`` "Images and files on the wire". A user message with attachments
goes as a message whose ``content`` is a list of input parts: its text (when not empty) as
``input_text``, then each attachment in order:

* an image: ``{"type":"input_image","image_url": <data URL of its bytes, or its https URL>,
  "detail": <the client's detail, else "auto">}`` (``image_url`` a plain string; ``detail`` always
  sent, as the SDK's types require it);
* a PDF: ``{"type":"input_file","filename": <its name, or document.pdf>,"file_data": <data URL>}``,
  or ``{"type":"input_file","file_url": <its https URL>}`` for a remote one (OpenAI fetches it);
* a text file: ``{"type":"input_text","text": text_file_text(file)}`` (its filename, then its text).

Bytes go exactly as the user sent them. Kept apart from :mod:`providers.openai_responses` so a
message without attachments costs nothing more.
"""

from __future__ import annotations

from typing import Any

from .base import PDF, TEXT, ChatMessage, InputFile, attachment_data, text_file_text
from .openai_chat_files import PDF_FILE_NAME

#: The ``detail`` of an image the client gave none for.
DEFAULT_DETAIL = "auto"


def responses_part(provider: str, file: InputFile) -> dict[str, Any]:
    """One attachment as a Responses input part (see the module docstring)."""
    if file.media_type == TEXT:
        return {"type": "input_text", "text": text_file_text(file)}
    remote = file.data is None and bool(file.url)
    if not remote:
        attachment_data(provider, file)  # refused, naming it, when it has neither bytes nor URL
    if file.media_type == PDF:
        if remote:
            return {"type": "input_file", "file_url": file.url}
        return {"type": "input_file", "filename": file.filename or PDF_FILE_NAME, "file_data": file.data_url}
    return {
        "type": "input_image",
        "image_url": file.url if remote else file.data_url,
        "detail": file.detail or DEFAULT_DETAIL,
    }


def responses_content(provider: str, message: ChatMessage) -> list[dict[str, Any]]:
    """A message's ``content`` with its attachments: ``input_text`` (when any), then one part each."""
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": message.content}] if message.content else []
    return parts + [responses_part(provider, file) for file in message.attachments]
