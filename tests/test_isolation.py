"""Owner A, with A's key, against every endpoint with owner B's ids: always a 404, never data."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.keys import api_key_create
from chatproject.asgi import application
from conversations.models import Attachment, Message
from tests.attachment_files import png_bytes
from tests.attachment_sessions import (
    is_stored,
    media_fixture,  # noqa: F401 (the fixture media)
    send,
    upload,
)
from tests.factories import make_artifact, make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(user, other_user, settings):
    settings.ALLOW_ANONYMOUS = False
    conv = make_conversation(owner=other_user, session_key="bobs", title="Bob's secret plans")
    question = make_message(conv, content="bob's private question")
    answer = make_message(conv, role="assistant", content="bob's private answer", parent=question)
    artifact = make_artifact(answer, content="BOB_ONLY = True\n")
    _, alice_key = api_key_create(owner=user, name="alice")
    return {"conv": conv, "question": question, "answer": answer, "artifact": artifact, "alice": alice_key}


def endpoints(w):
    s, m, a = "/api/sessions/bobs", w["answer"].pk, w["artifact"].pk
    return [
        ("get", s, None),
        ("patch", s, {"title": "mine now"}),
        ("delete", s, None),
        ("get", f"{s}/messages", None),
        ("post", f"{s}/messages/{w['question'].pk}/edit", {"content": "x"}),
        ("post", f"{s}/messages/{m}/regenerate", {}),
        ("get", f"{s}/messages/{m}", None),
        ("delete", f"{s}/messages/{m}", None),
        ("post", f"{s}/messages/{m}/stop", None),
        ("get", f"{s}/messages/{m}/stream", None),
        ("get", f"{s}/messages/{m}/artifacts", None),
        ("get", f"{s}/artifacts", None),
        ("get", f"{s}/artifacts/{a}", None),
        ("get", f"{s}/artifacts/{a}/raw", None),
        ("get", f"{s}/export", None),
    ]


def test_another_owners_objects_are_404_on_every_endpoint(world):
    alice = Client(headers={"X-API-Key": world["alice"]})
    for method, url, body in endpoints(world):
        kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
        response = getattr(alice, method)(url, **kwargs)
        assert response.status_code == 404, (method, url, response.status_code)
        assert b"bob" not in response.content.lower(), (method, url)
    world["conv"].refresh_from_db()
    assert world["conv"].title == "Bob's secret plans"
    assert world["answer"].__class__.objects.filter(pk=world["answer"].pk).exists()


@pytest.fixture
def bobs_attachment(world, other_user, media):
    """Bob's image, sent in his session."""
    attachment = upload(png_bytes(), "bob-secret.png", owner_id=other_user.pk)
    send(world["question"], attachment)
    return attachment


def attachment_endpoints(attachment_id) -> list[tuple[str, str]]:
    url = f"/api/attachments/{attachment_id}"
    return [("get", url), ("get", f"{url}/content"), ("delete", url)]


def test_another_owners_attachment_is_404_and_cannot_be_sent(world, bobs_attachment):
    alice = Client(headers={"X-API-Key": world["alice"]})
    for method, url in attachment_endpoints(bobs_attachment.pk):
        response = getattr(alice, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
        assert b"bob" not in response.content.lower(), (method, url)
    response = alice.post(
        "/api/sessions/alices/messages",
        {"content": "what is this?", "attachments": [str(bobs_attachment.pk)]},
        content_type="application/json",
    )
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "attachment_not_found"
    assert b"bob" not in response.content.lower()
    assert not Message.objects.filter(conversation__session_key="alices").exists()
    row = Attachment.objects.get(pk=bobs_attachment.pk)
    assert row.message_id == world["question"].pk and is_stored(row.storage_name)


def test_no_credentials_are_401_on_an_attachment(world, bobs_attachment):
    anonymous = Client()
    for method, url in [*attachment_endpoints(bobs_attachment.pk), ("post", "/api/attachments")]:
        assert getattr(anonymous, method)(url).status_code == 401, (method, url)
    assert Attachment.objects.filter(pk=bobs_attachment.pk).exists()


def test_another_owners_session_does_not_appear_in_lists_or_search(world):
    alice = Client(headers={"X-API-Key": world["alice"]})
    assert alice.get("/api/sessions").json()["results"] == []
    assert alice.get("/api/sessions", {"q": "secret"}).json()["results"] == []


def test_posting_to_another_owners_session_key_creates_the_callers_own_session(world):
    alice = Client(headers={"X-API-Key": world["alice"]})
    response = alice.post("/api/sessions", {"session_key": "bobs"}, content_type="application/json")
    assert response.status_code == 201  # keys are per owner: Alice gets her own "bobs"
    assert response.json()["message_count"] == 0


def test_no_credentials_are_401_everywhere(world):
    anonymous = Client()
    for method, url, body in endpoints(world):
        kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
        assert getattr(anonymous, method)(url, **kwargs).status_code == 401, (method, url)


async def test_another_owners_socket_is_4403(world):
    key = world["alice"]
    communicator = WebsocketCommunicator(
        application,
        "/ws/chat/bobs/",
        headers=[(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"x-api-key", key.encode())],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert (await communicator.receive_output(timeout=5))["code"] == 4403
    await sync_to_async(make_conversation)(owner=world["question"].conversation.owner, session_key="other")


async def test_a_revoked_or_malformed_key_on_a_socket_is_4401(world):
    communicator = WebsocketCommunicator(
        application,
        "/ws/chat/bobs/",
        headers=[(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"x-api-key", b"ck_nope_nope")],
    )
    assert (await communicator.connect(timeout=5))[0]
    assert (await communicator.receive_output(timeout=5))["code"] == 4401
