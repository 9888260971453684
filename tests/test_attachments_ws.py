"""Attachments over ``ws/chat`` (Channels' communicator through the real ASGI application, the
offline demo provider, which says what it received): a message frame's ``attachments`` are the
native API's upload ids, decoded by the same codec; an id the caller cannot send is an error frame,
``attachment_not_found``, whether unknown or another owner's (never readable), nothing stored."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.keys import api_key_create
from chatproject.asgi import application
from conversations.models import Attachment, Message
from tests.attachment_files import pdf_bytes, png_bytes, sha256
from tests.attachment_sessions import (
    media_fixture,  # noqa: F401 (the fixture media)
    upload,
)
from tests.factories import make_conversation

pytestmark = pytest.mark.django_db(transaction=True)
HEADERS = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
IMAGE = png_bytes(6, 4)


@pytest.fixture
def demo(settings, media):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    settings.LLM_FALLBACKS = []


async def connect(session_key: str, key: str | None = None) -> WebsocketCommunicator:
    headers = HEADERS + ([(b"x-api-key", key.encode())] if key else [])
    communicator = WebsocketCommunicator(application, f"/ws/chat/{session_key}/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    assert connected, code
    return communicator


async def until_terminal(ws: WebsocketCommunicator) -> list[dict]:
    frames = []
    while True:
        frame = await ws.receive_json_from(timeout=10)
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            return frames


def described(data: bytes, media_type: str, filename: str, number: int = 1) -> str:
    return f'Attachment {number}: {media_type}, {len(data)} bytes, sha256 {sha256(data)[:16]}, "{filename}".'


async def test_an_uploaded_file_sent_over_the_socket_reaches_the_model(demo):
    await sync_to_async(make_conversation)(owner=None, session_key="ws-files")
    image = await sync_to_async(upload)(IMAGE, "cat.png")
    paper = await sync_to_async(upload)(pdf_bytes(), "paper.pdf")
    ws = await connect("ws-files")
    await ws.send_json_to(
        {"type": "message", "content": "what are these?", "attachments": [str(image.pk), str(paper.pk)]}
    )
    frames = await until_terminal(ws)
    assert frames[-1]["type"] == "done", frames
    said = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert said.startswith(
        described(IMAGE, "image/png", "cat.png")
        + "\n"
        + described(pdf_bytes(), "application/pdf", "paper.pdf", 2)
    )
    question = await Message.objects.aget(conversation__session_key="ws-files", role="user")
    assert question.content == "what are these?"
    assert [(p["type"], p.get("id")) for p in question.parts] == [
        ("text", None),
        ("file", str(image.pk)),
        ("file", str(paper.pk)),
    ]
    bound = {row.pk: row.message_id async for row in Attachment.objects.all()}
    assert bound == {image.pk: question.pk, paper.pk: question.pk}
    # the next turn's model sees them again, from the history
    await ws.send_json_to({"type": "message", "content": "and again?"})
    again = "".join(f["text"] for f in await until_terminal(ws) if f["type"] == "delta")
    assert again.startswith(described(IMAGE, "image/png", "cat.png"))
    await ws.disconnect()


async def test_an_unknown_or_another_owners_id_is_an_error_frame_and_nothing_is_stored(
    demo, user, other_user
):
    def setup():
        make_conversation(owner=user, session_key="alices")
        bobs = upload(IMAGE, "bob-secret.png", owner_id=other_user.pk)
        return api_key_create(owner=user, name="alice")[1], str(bobs.pk)

    alice, bobs = await sync_to_async(setup)()
    ws = await connect("alices", alice)
    for attachment_id in ("4f6b1a52-7a44-4c86-9b0b-0a4b9f0c1e11", bobs):
        await ws.send_json_to(
            {"type": "message", "content": "this?", "attachments": [attachment_id], "client_message_id": "c1"}
        )
        error = await ws.receive_json_from(timeout=5)
        assert (error["type"], error["code"], error["field"]) == (
            "error",
            "attachment_not_found",
            "attachments[0]",
        )
        assert error["client_message_id"] == "c1" and "seq" not in error
        assert "bob" not in str(error).lower()
    assert not await Message.objects.aexists()
    assert (await Attachment.objects.aget(pk=bobs)).message_id is None
    await ws.send_json_to({"type": "message", "content": "x", "attachments": ["not-an-id"]})
    assert (await ws.receive_json_from(timeout=5))["code"] == "invalid_input"
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()
