"""A native turn with attachments end to end over real HTTP (the ASGI app under uvicorn, the offline
demo provider, which says what it received: type, size, the first 16 hex digits of the bytes'
SHA-256, filename): upload, send, the history's parts, the row bound to its message; resent in an
edit, refused in another session; the limits; regenerate sends the files again; the budget's
reservation counts the image."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from billing.models import Budget
from conversations.models import Attachment, Message
from providers.base import IMAGE_TOKENS
from tests.attachment_files import pdf_bytes, png_bytes, sha256
from tests.attachment_sessions import media_fixture  # noqa: F401 (the fixture media)

pytestmark = pytest.mark.django_db(transaction=True)

IMAGE = png_bytes(6, 4)


@pytest.fixture
def http(asgi_server, settings, media):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    settings.LLM_FALLBACKS = []
    with httpx.Client(base_url=asgi_server.url, timeout=30) as client:
        yield client


def upload(http: httpx.Client, data: bytes, name: str) -> str:
    response = http.post("/api/attachments", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def say(http: httpx.Client, session: str, path: str = "", **body) -> httpx.Response:
    return http.post(
        f"/api/sessions/{session}/messages{path}", json=body, headers={"Accept": "application/json"}
    )


def described(data: bytes, media_type: str, filename: str, number: int = 1) -> str:
    """What the demo says of an attachment it received (providers/demo.py, attachment_line)."""
    return f'Attachment {number}: {media_type}, {len(data)} bytes, sha256 {sha256(data)[:16]}, "{filename}".'


def history(http: httpx.Client, session: str) -> list[dict]:
    response = http.get(f"/api/sessions/{session}/messages")
    assert response.status_code == 200, response.text
    return response.json()["results"]


def answer_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return Message.objects.get(pk=response.json()["message_id"]).content


def test_an_uploaded_file_reaches_the_model_and_the_history_shows_it(http):
    image = upload(http, IMAGE, "cat.png")
    response = say(http, "native-1", content="what is this?", attachments=[image])
    assert answer_text(response).startswith(described(IMAGE, "image/png", "cat.png") + "\n\n")
    question, answer = history(http, "native-1")
    assert (question["role"], question["content"]) == ("user", "what is this?")
    assert question["parts"] == [
        {"type": "text", "text": "what is this?"},
        {
            "type": "file",
            "id": image,
            "media_type": "image/png",
            "filename": "cat.png",
            "size": len(IMAGE),
            "sha256": sha256(IMAGE),
            "download_url": f"/api/attachments/{image}/content",
        },
    ]
    assert http.get(question["parts"][1]["download_url"]).content == IMAGE
    assert Attachment.objects.get(pk=image).message_id is not None
    assert str(Attachment.objects.get(pk=image).message_id) == question["id"]
    shown = http.get(f"/api/attachments/{image}").json()
    assert shown["sent"] is True and "unsent_expires_at" not in shown
    assert answer["role"] == "assistant"


def test_attachments_alone_make_a_message(http):
    paper = upload(http, pdf_bytes(), "paper.pdf")
    response = say(http, "native-2", attachments=[paper])
    assert described(pdf_bytes(), "application/pdf", "paper.pdf") in answer_text(response)
    question = history(http, "native-2")[0]
    assert question["content"] == ""
    assert [p["type"] for p in question["parts"]] == ["file"]


def test_an_edit_may_resend_the_file_but_another_session_may_not(http):
    image = upload(http, IMAGE, "cat.png")
    first = say(http, "native-3", content="what is this?", attachments=[image])
    assert first.status_code == 200, first.text
    question = history(http, "native-3")[0]
    edited = say(http, "native-3", f"/{question['id']}/edit", content="and now?", attachments=[image])
    assert described(IMAGE, "image/png", "cat.png") in answer_text(edited)
    edit = next(m for m in history(http, "native-3") if m["content"] == "and now?")
    assert [p.get("id") for p in edit["parts"]] == [None, image]
    assert str(Attachment.objects.get(pk=image).message_id) == question["id"]  # the original keeps it
    elsewhere = say(http, "native-3b", content="and here?", attachments=[image])
    assert elsewhere.status_code == 404, elsewhere.text
    error = elsewhere.json()["error"]
    assert (error["code"], error["field"]) == ("attachment_not_found", "attachments[0]")
    assert not Message.objects.filter(conversation__session_key="native-3b").exists()


def test_regenerate_sends_the_files_again(http):
    image = upload(http, IMAGE, "cat.png")
    first = say(http, "native-4", content="what is this?", attachments=[image])
    again = say(http, "native-4", f"/{first.json()['message_id']}/regenerate")
    assert answer_text(again).startswith(described(IMAGE, "image/png", "cat.png"))
    refused = say(http, "native-4", f"/{first.json()['message_id']}/regenerate", attachments=[image])
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "attachments"


def test_more_files_than_a_message_may_carry_and_files_on_a_tool_message_are_422(http, settings):
    settings.ATTACHMENT_MAX_FILES = 1
    ids = [upload(http, IMAGE, "a.png"), upload(http, pdf_bytes(), "b.pdf")]
    response = say(http, "native-5", content="two", attachments=ids)
    assert response.status_code == 422, response.text
    assert "ATTACHMENT_MAX_FILES" in response.json()["error"]["message"]
    results = {"type": "tool_result", "call_id": "call_1", "output": "21 C"}
    response = say(http, "native-5", role="tool", parts=[results], attachments=ids[:1])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "attachments"
    assert not Message.objects.exists()
    assert not Attachment.objects.filter(message__isnull=False).exists()


def test_an_unknown_id_is_404_and_stores_nothing(http):
    response = say(http, "native-6", content="this?", attachments=["4f6b1a52-7a44-4c86-9b0b-0a4b9f0c1e11"])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "attachment_not_found"
    assert not Message.objects.exists()


@pytest.mark.parametrize("write_path", ["native", "orm"] if connection.vendor == "postgresql" else ["orm"])
def test_the_budget_reservation_counts_the_image(http, settings, write_path):
    """The same words, with and without an image: the image's estimate (IMAGE_TOKENS) is reserved
    on top, at the model's input price (on both write paths)."""
    settings.TURN_DB_ASYNC = write_path == "native"
    settings.PRICES = {"demo:*": {"input": 1_000_000, "output": 0}}  # a dollar per input token
    Budget.objects.create(
        scope="anonymous",
        subject="",
        amount=Decimal(1_000_000),
        spent=Decimal(0),
        period="day",
        period_start=timezone.now(),
    )
    text = say(http, "budget-text", content="what is this?")
    image = say(http, "budget-image", content="what is this?", attachments=[upload(http, IMAGE, "cat.png")])
    assert text.status_code == image.status_code == 200, (text.text, image.text)
    reserved = {
        session: Message.objects.get(conversation__session_key=session, role="assistant").reserved_cost
        for session in ("budget-text", "budget-image")
    }
    assert reserved["budget-text"] > 0
    assert reserved["budget-image"] - reserved["budget-text"] == IMAGE_TOKENS
