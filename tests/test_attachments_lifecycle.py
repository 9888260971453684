"""An attachment's life after its turn: exported with its bytes (chat-session/3) and restored by
import as a new attachment, checked as an upload is (nothing kept of a refused import); deleted with
its session (the API, prune_sessions, the admin) or its message, its file with it; the admin's
read-only view of attachments. What is stored is checked in the storage itself."""

from __future__ import annotations

import base64
import gzip
import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.keys import api_key_create
from conversations import session_writes
from conversations.models import Attachment, Conversation, Message
from tests.attachment_files import jpeg_bytes, pdf_bytes, png_bytes, sha256
from tests.attachment_sessions import (
    is_stored,
    media_fixture,  # noqa: F401 (the fixture media)
    send,
    stored_bytes,
    stored_names,
    upload,
)
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)  # the files go once the delete commits


@pytest.fixture
def api(user):
    _, secret = api_key_create(owner=user, name="tests")
    return Client(headers={"X-API-Key": secret})


@pytest.fixture
def photo_session(user, media):
    """A session whose question sent an image and a PDF, answered; then edited, the edit resending
    the image (the original keeps it)."""
    conv = make_conversation(owner=user, session_key="photos", title="Photos")
    question = make_message(conv, content="what are these?")
    image, paper = (
        upload(png_bytes(6, 4), "cat.png", owner_id=user.pk),
        upload(pdf_bytes(), "paper.pdf", owner_id=user.pk),
    )
    send(question, image, paper)
    answer = make_message(conv, role="assistant", content="A cat and a paper.", parent=question)
    edit = make_message(conv, content="and this one?")
    send(edit, image, bind=False)
    return {
        "conv": conv,
        "question": question,
        "answer": answer,
        "edit": edit,
        "image": image,
        "paper": paper,
    }


def body_of(response) -> bytes:
    """A response's body, a streamed one (an async iterator under ASGI) read whole."""
    if not response.streaming:
        return response.content
    if not response.is_async:
        return b"".join(response.streaming_content)

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(read)()


def exported(api, key: str) -> dict:
    response = api.get(f"/api/sessions/{key}/export")
    assert response.status_code == 200
    return json.loads(body_of(response))


def file_parts(message: dict) -> list[dict]:
    return [p for p in message.get("parts", []) if p["type"] == "file"]


# --- export and import -----------------------------------------------------------------------------
def test_the_export_carries_each_files_bytes_and_is_streamed(api, photo_session):
    export = exported(api, "photos")
    assert export["format"] == "chat-session/3"
    question, _, edit = export["messages"]
    image, paper = file_parts(question)
    assert base64.b64decode(image["data"]) == png_bytes(6, 4)
    assert base64.b64decode(paper["data"]) == pdf_bytes()
    assert (image["id"], image["sha256"], image["filename"]) == (
        str(photo_session["image"].pk),
        sha256(png_bytes(6, 4)),
        "cat.png",
    )
    assert question["parts"][0] == {"type": "text", "text": "what are these?"}
    assert file_parts(edit)[0]["data"] == image["data"]  # each message carries its files: one document
    assert api.get("/api/sessions/photos/export").streaming  # a session with files is never held whole


def test_export_then_import_restores_each_file_as_a_new_attachment(api, user, photo_session, media):
    export = exported(api, "photos")
    response = api.post("/api/sessions/import", export, content_type="application/json")
    assert response.status_code == 201, response.content
    new = Conversation.objects.get(session_key=response.json()["session_key"])
    rows = list(Attachment.objects.filter(conversation=new).order_by("filename"))
    assert [(r.filename, r.media_type, r.owner_id) for r in rows] == [
        ("cat.png", "image/png", user.pk),
        ("paper.pdf", "application/pdf", user.pk),
    ]
    old_ids = {str(photo_session["image"].pk), str(photo_session["paper"].pk)}
    assert not {str(r.pk) for r in rows} & old_ids  # new ids
    assert stored_bytes(rows[0].storage_name) == png_bytes(6, 4)
    assert rows[0].storage_name != photo_session["image"].storage_name  # a file of its own
    question = new.messages.get(content="what are these?")
    edit = new.messages.get(content="and this one?")
    assert {r.message_id for r in rows} == {question.pk}  # the edit resent the image: one row, one file
    assert [p["id"] for p in question.parts if p["type"] == "file"] == [str(rows[0].pk), str(rows[1].pk)]
    assert [p["id"] for p in edit.parts if p["type"] == "file"] == [str(rows[0].pk)]
    assert all("data" not in p for p in question.parts)  # the bytes live in the storage, not the row
    history = api.get(f"/api/sessions/{new.session_key}/messages").json()["results"]
    shown = next(m for m in history if m["content"] == "what are these?")["parts"]
    assert shown[1]["download_url"] == f"/api/attachments/{rows[0].pk}/content"
    assert body_of(api.get(shown[1]["download_url"])) == png_bytes(6, 4)
    again = exported(api, new.session_key)
    strip = lambda p: {k: v for k, v in p.items() if k != "id"}  # noqa: E731
    assert [[strip(p) for p in m.get("parts", [])] for m in again["messages"]] == [
        [strip(p) for p in m.get("parts", [])] for m in export["messages"]
    ]


def test_the_previous_formats_still_import(api, user, media):
    text = {"role": "user", "content": "hi", "status": "complete", "created_at": "2026-01-01T00:00:00Z"}
    for fmt in ("chat-session/1", "chat-session/2"):
        payload = {"format": fmt, "session": {"session_key": fmt[-1]}, "messages": [{**text, "id": "1"}]}
        assert api.post("/api/sessions/import", payload, content_type="application/json").status_code == 201


def bad_import(part: dict, fmt: str = "chat-session/3", more: list | None = None) -> dict:
    message = {
        "id": "u1",
        "role": "user",
        "content": "look",
        "status": "complete",
        "created_at": "2026-01-01T00:00:00Z",
        "parts": [{"type": "text", "text": "look"}, part],
    }
    return {"format": fmt, "session": {"session_key": "bad"}, "messages": [message, *(more or [])]}


def file_of(content: bytes, filename: str = "cat.png", media_type: str = "image/png", **changes) -> dict:
    part = {
        "type": "file",
        "id": "4f6b1a52-7a44-4c86-9b0b-0a4b9f0c1e11",
        "media_type": media_type,
        "filename": filename,
        "size": len(content),
        "sha256": sha256(content),
        "data": base64.b64encode(content).decode(),
    }
    return {**part, **changes}


PNG = png_bytes()


@pytest.mark.parametrize(
    ("part", "fmt", "says"),
    [
        (
            file_of(PNG, data=base64.b64encode(jpeg_bytes()).decode()),
            None,
            "was changed since it was exported",
        ),
        (file_of(PNG, sha256="0" * 64), None, "was changed since it was exported"),
        (file_of(PNG, size=len(PNG) + 1), None, "was changed since it was exported"),
        (file_of(pdf_bytes(), "cat.png", "image/png"), None, "its bytes are application/pdf"),
        (file_of(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.txt", "text/plain"), None, "markup"),
        (file_of(PNG, data="not base64!"), None, "data must be the file's bytes in base64"),
        ({k: v for k, v in file_of(PNG).items() if k != "data"}, None, "lacks data"),
        (file_of(PNG, size="12"), None, "size must be a int"),
        (file_of(PNG, colour="red"), None, "unknown keys: colour"),
        (file_of(PNG, url="javascript:alert(1)"), None, "url must be the http(s) URL"),
        (file_of(PNG, detail="ultra"), None, "detail must be one of auto, low, high"),
        (file_of(PNG), "chat-session/2", "files (with their bytes) came with chat-session/3"),
    ],
    ids=[
        "other-bytes",
        "other-sha256",
        "other-size",
        "not-its-type",
        "markup",
        "not-base64",
        "no-data",
        "size-not-a-number",
        "unknown-key",
        "url-not-http",
        "unknown-detail",
        "file-in-chat-session-2",
    ],
)
def test_an_import_whose_file_is_not_what_its_part_says_is_refused_naming_message_and_part(
    api, media, part, fmt, says
):
    response = api.post(
        "/api/sessions/import", bad_import(part, fmt or "chat-session/3"), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "messages[0] (id u1): parts[1]" in error["message"], error["message"]
    assert says in error["message"], error["message"]
    assert not Conversation.objects.exists() and not Attachment.objects.exists()
    assert stored_names(media) == set()


def test_a_file_in_another_role_or_one_id_with_two_contents_is_refused(api, media):
    answer = {
        "id": "a1",
        "parent_id": "u1",
        "role": "assistant",
        "content": "x",
        "status": "complete",
        "created_at": "2026-01-01T00:00:01Z",
        "parts": [file_of(PNG)],
    }
    response = api.post(
        "/api/sessions/import", bad_import(file_of(PNG), more=[answer]), content_type="application/json"
    )
    assert response.status_code == 400
    assert (
        "messages[1] (id a1): parts[0] is a file part: only a user message"
        in response.json()["error"]["message"]
    )
    other = {**answer, "role": "user", "parts": [file_of(jpeg_bytes(), "cat.jpg", "image/jpeg")]}  # same id
    response = api.post(
        "/api/sessions/import", bad_import(file_of(PNG), more=[other]), content_type="application/json"
    )
    assert response.status_code == 400
    assert "messages[1] (id a1): parts[0] names attachment" in response.json()["error"]["message"]
    assert not Conversation.objects.exists() and stored_names(media) == set()


def test_a_refusal_after_files_were_stored_keeps_nothing_of_the_import(api, media, settings):
    """The second file is over the day's bytes: the first, already stored, is deleted again."""
    second = {
        "id": "u2",
        "parent_id": "u1",
        "role": "user",
        "content": "and this",
        "status": "complete",
        "created_at": "2026-01-01T00:00:01Z",
        "parts": [
            file_of(pdf_bytes(), "paper.pdf", "application/pdf", id="5f6b1a52-7a44-4c86-9b0b-0a4b9f0c1e12")
        ],
    }
    settings.ATTACHMENT_DAILY_BYTES = len(PNG) + 10
    response = api.post(
        "/api/sessions/import", bad_import(file_of(PNG), more=[second]), content_type="application/json"
    )
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "attachment_quota_exceeded"
    assert error["message"].startswith("messages[1] (id u2): parts[0]: ")
    assert not Conversation.objects.exists() and not Attachment.objects.exists()
    assert stored_names(media) == set()


def test_more_files_than_a_message_may_carry_are_refused(api, media, settings):
    settings.ATTACHMENT_MAX_FILES = 1
    payload = bad_import(file_of(PNG))
    payload["messages"][0]["parts"].append(file_of(PNG, id="5f6b1a52-7a44-4c86-9b0b-0a4b9f0c1e12"))
    response = api.post("/api/sessions/import", payload, content_type="application/json")
    assert response.status_code == 400
    assert "ATTACHMENT_MAX_FILES" in response.json()["error"]["message"]


def test_a_file_no_longer_stored_is_exported_without_data_and_its_import_says_so(api, photo_session, media):
    from django.core.files.storage import storages

    storages["attachments"].delete(photo_session["paper"].storage_name)
    export = exported(api, "photos")
    image, paper = file_parts(export["messages"][0])
    assert "data" in image and "data" not in paper
    response = api.post("/api/sessions/import", export, content_type="application/json")
    assert response.status_code == 400
    assert "messages[0] (id " in response.json()["error"]["message"]
    assert "parts[2] (file) lacks data" in response.json()["error"]["message"]


def test_an_export_carries_only_the_sessions_own_files(api, user, other_user, media):
    """A part that named another session's attachment (no turn writes one) exports no bytes of it."""
    theirs = make_conversation(owner=other_user, session_key="theirs")
    secret = upload(png_bytes(9, 9), "secret.png", owner_id=other_user.pk)
    send(make_message(theirs, content="mine"), secret)
    mine = make_conversation(owner=user, session_key="mine")
    send(make_message(mine, content="look"), secret, bind=False)
    (part,) = file_parts(exported(api, "mine")["messages"][0])
    assert part["id"] == str(secret.pk) and "data" not in part


def test_the_streamed_export_writes_a_message_with_files_at_a_time(photo_session, monkeypatch):
    monkeypatch.setattr(session_writes, "EXPORT_FLUSH_BYTES", 1)
    chunks = list(session_writes.conversation_export_stream(photo_session["conv"]))
    assert len(chunks) == 2 + 3  # the head, one chunk per message, the tail
    whole = json.loads(b"".join(chunks))
    assert whole == json.loads(json.dumps(session_writes.conversation_export(photo_session["conv"])))


# --- deletes ---------------------------------------------------------------------------------------
def test_deleting_a_session_through_the_api_deletes_its_files(api, photo_session, user, media):
    other = make_conversation(owner=user, session_key="kept")
    kept = upload(png_bytes(2, 2), "kept.png", owner_id=user.pk)
    send(make_message(other, content="mine"), kept)
    unsent = upload(png_bytes(3, 3), "later.png", owner_id=user.pk)
    names = {photo_session["image"].storage_name, photo_session["paper"].storage_name}
    assert all(is_stored(name) for name in names)
    assert api.delete("/api/sessions/photos").status_code == 204
    assert not any(is_stored(name) for name in names)
    assert not Attachment.objects.filter(storage_name__in=names).exists()
    assert stored_names(media) == {kept.storage_name, unsent.storage_name}  # nothing else goes


def test_deleting_a_message_deletes_its_files_unless_an_edit_still_sends_them(api, photo_session):
    question, image, paper = photo_session["question"], photo_session["image"], photo_session["paper"]
    response = api.delete(f"/api/sessions/photos/messages/{question.pk}")
    assert response.status_code == 204
    assert not Attachment.objects.filter(pk=paper.pk).exists() and not is_stored(paper.storage_name)
    image.refresh_from_db()  # the edit resent it: it passes to the edit, file and all
    assert image.message_id == photo_session["edit"].pk and is_stored(image.storage_name)
    assert body_of(api.get(f"/api/attachments/{image.pk}/content")) == png_bytes(6, 4)
    photo_session["answer"].refresh_from_db()
    assert photo_session["answer"].parent_id is None  # its children stay
    assert Conversation.objects.get(pk=photo_session["conv"].pk).message_count == 2
    assert api.delete(f"/api/sessions/photos/messages/{photo_session['edit'].pk}").status_code == 204
    assert not Attachment.objects.exists() and not is_stored(image.storage_name)


def test_prune_sessions_archives_the_files_and_deletes_them(photo_session, tmp_path, settings):
    Conversation.objects.filter(pk=photo_session["conv"].pk).update(
        updated_at=timezone.now() - timedelta(days=40)
    )
    names = [photo_session["image"].storage_name, photo_session["paper"].storage_name]
    out = io.StringIO()
    call_command("prune_sessions", "--days", "30", "--archive-dir", str(tmp_path / "archive"), stdout=out)
    assert "1 sessions" in out.getvalue()
    (path,) = (tmp_path / "archive").rglob("photos-*.json.gz")
    archive = json.loads(gzip.decompress(path.read_bytes()))
    assert archive["format"] == "chat-session/3"
    image, paper = file_parts(archive["messages"][0])
    assert (
        base64.b64decode(image["data"]) == png_bytes(6, 4) and base64.b64decode(paper["data"]) == pdf_bytes()
    )
    assert not Conversation.objects.exists() and not Attachment.objects.exists()
    assert not any(is_stored(name) for name in names)


def test_an_archive_imports_back_with_its_files(api, photo_session, tmp_path, user):
    Conversation.objects.filter(pk=photo_session["conv"].pk).update(
        updated_at=timezone.now() - timedelta(days=40)
    )
    call_command("prune_sessions", "--days", "30", "--archive-dir", str(tmp_path), stdout=io.StringIO())
    (path,) = tmp_path.rglob("*.json.gz")
    response = api.post(
        "/api/sessions/import", gzip.decompress(path.read_bytes()), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    row = Attachment.objects.get(filename="cat.png")
    assert stored_bytes(row.storage_name) == png_bytes(6, 4) and row.owner_id == user.pk


def test_an_archive_past_the_request_limit_is_restored_by_import_session(
    photo_session, tmp_path, user, settings
):
    """A retention archive carrying files may pass REQUEST_MAX_BYTES: manage.py import_session
    imports it with the API's checks, its files stored again."""
    Conversation.objects.filter(pk=photo_session["conv"].pk).update(
        updated_at=timezone.now() - timedelta(days=40)
    )
    call_command("prune_sessions", "--days", "30", "--archive-dir", str(tmp_path), stdout=io.StringIO())
    (path,) = tmp_path.rglob("*.json.gz")
    settings.REQUEST_MAX_BYTES = 1024  # the API could not take it
    out = io.StringIO()
    call_command("import_session", str(path), "--owner", user.username, stdout=out)
    assert "as session photos (3 messages, 2 attachments)" in out.getvalue()
    row = Attachment.objects.get(filename="paper.pdf")
    assert stored_bytes(row.storage_name) == pdf_bytes() and row.owner_id == user.pk
    assert row.message_id == Message.objects.get(content="what are these?").pk


def test_import_session_refuses_what_the_api_refuses(tmp_path, user, media):
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(bad_import(file_of(PNG, sha256="0" * 64))))
    with pytest.raises(
        CommandError, match=r"messages\[0\] \(id u1\): parts\[1\] \(file 'cat.png'\) was changed"
    ):
        call_command("import_session", str(path), "--owner", user.username)
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("import_session", str(path), "--owner", "nobody")
    (tmp_path / "junk.json.gz").write_bytes(b"not gzip")
    with pytest.raises(CommandError, match="cannot be read as a session export"):
        call_command("import_session", str(tmp_path / "junk.json.gz"))
    assert not Conversation.objects.exists() and stored_names(media) == set()


# --- the admin -------------------------------------------------------------------------------------
def test_the_attachment_admin_lists_searches_and_is_read_only(staff_client, photo_session, media):
    url = reverse("admin:conversations_attachment_changelist")
    page = staff_client.get(url)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2
    for term, count in (
        ("cat", 1),
        (photo_session["paper"].sha256[:12], 1),
        (str(photo_session["image"].pk), 1),
    ):
        assert staff_client.get(url, {"q": term}).context["cl"].result_count == count, term
    unsent = upload(png_bytes(1, 1), "lonely.png")
    assert staff_client.get(url, {"sent": "no"}).context["cl"].result_count == 1
    assert staff_client.get(url, {"sent": "yes"}).context["cl"].result_count == 2
    change = reverse("admin:conversations_attachment_change", args=[unsent.pk])
    page = staff_client.get(change)
    assert page.status_code == 200 and b"lonely.png" in page.content
    assert b'name="filename"' not in page.content  # read-only
    assert staff_client.post(change, {"filename": "renamed.png"}).status_code == 403
    assert staff_client.get(reverse("admin:conversations_attachment_add")).status_code == 403
    assert Attachment.objects.get(pk=unsent.pk).filename == "lonely.png"


def test_deleting_in_the_admin_deletes_the_files(staff_client, photo_session, user, media):
    image, paper = photo_session["image"], photo_session["paper"]
    delete = reverse("admin:conversations_attachment_delete", args=[paper.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Attachment.objects.filter(pk=paper.pk).exists() and not is_stored(paper.storage_name)
    a, b = upload(png_bytes(1, 1), "a.png"), upload(png_bytes(2, 1), "b.png")
    changelist = reverse("admin:conversations_attachment_changelist")
    action = {"action": "delete_selected", "_selected_action": [str(a.pk), str(b.pk)], "post": "yes"}
    assert staff_client.post(changelist, action).status_code == 302
    assert not is_stored(a.storage_name) and not is_stored(b.storage_name) and is_stored(image.storage_name)
    # a session deleted in the admin takes its files with it, as through the API
    delete = reverse("admin:conversations_conversation_delete", args=[photo_session["conv"].pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 302
    assert not is_stored(image.storage_name) and stored_names(media) == set()


def test_deleting_messages_in_the_admin_deletes_their_files(staff_client, photo_session, media):
    changelist = reverse("admin:conversations_message_changelist")
    ids = [str(photo_session["question"].pk), str(photo_session["edit"].pk)]
    action = {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    assert staff_client.post(changelist, action).status_code == 302
    assert not Message.objects.filter(pk__in=ids).exists()
    assert not Attachment.objects.exists() and stored_names(media) == set()


def test_the_schema_describes_the_file_part_shown_and_the_one_imported(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["components"]["schemas"]
    shown = schema["Message"]["properties"]["parts"]["items"]["oneOf"][-1]
    imported = schema["ImportMessageRequest"]["properties"]["parts"]["items"]["oneOf"][-1]
    assert shown["properties"]["type"]["enum"] == imported["properties"]["type"]["enum"] == ["file"]
    assert "download_url" in shown["required"] and "data" not in shown["properties"]
    assert {"data", "sha256", "size"} <= set(imported["required"]) and "download_url" not in imported[
        "properties"
    ]
    assert "chat-session/3" in schema["SessionImportRequest"]["properties"]["format"]["description"]
