"""Uploads and downloads over real HTTP (the project's ASGI stack under uvicorn, the request guard
in front): what is stored is exactly what was sent; what is refused is refused before anything is
stored, the oversized without being read into memory; downloads are always downloads."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.utils import timezone

from accounts.keys import api_key_create
from conversations.models import Attachment
from tests.attachment_files import bomb_png, jpeg_bytes, pdf_bytes, png_bytes, sha256
from tests.attachment_sessions import media_fixture  # noqa: F401 - the media fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def http(asgi_server):
    with httpx.Client(base_url=asgi_server.url, timeout=30) as client:
        yield client


def upload(http: httpx.Client, data: bytes, name: str, content_type: str = "application/octet-stream", **kw):
    return http.post("/api/attachments", files={"file": (name, data, content_type)}, **kw)


@pytest.fixture(autouse=True)
def own_media(media):
    """Each test stores in a directory of its own (others may store at the same time)."""
    return media


def stored_files() -> set[str]:
    root = Path(storages["attachments"].location)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_an_upload_is_stored_byte_for_byte_and_downloads_as_an_attachment(http):
    data = png_bytes(5, 7)
    response = upload(http, data, "red dot.png", "image/png")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["media_type"] == "image/png"
    assert (body["size"], body["sha256"], body["width"], body["height"]) == (len(data), sha256(data), 5, 7)
    assert body["filename"] == "red dot.png" and body["sent"] is False
    assert body["download_url"] == f"/api/attachments/{body['id']}/content"
    assert response.headers["location"] == f"/api/attachments/{body['id']}"
    row = Attachment.objects.get(pk=body["id"])
    with storages["attachments"].open(row.storage_name, "rb") as handle:
        assert handle.read() == data
    content = http.get(body["download_url"])
    assert content.status_code == 200
    assert content.content == data
    assert content.headers["content-type"] == "image/png"
    assert content.headers["content-disposition"].startswith("attachment;")
    assert "red dot.png" in content.headers["content-disposition"]
    assert content.headers["x-content-type-options"] == "nosniff"
    assert http.get(f"/api/attachments/{body['id']}").json()["sha256"] == sha256(data)


@pytest.mark.parametrize(
    ("data", "name", "declared", "media_type"),
    [
        (jpeg_bytes(), "photo.jpg", "image/jpeg", "image/jpeg"),
        (pdf_bytes(), "paper.pdf", "application/pdf", "application/pdf"),
        ("Notes: déjà vu\n".encode(), "notes.txt", "text/plain", "text/plain"),
        (png_bytes(), "noname", "application/octet-stream", "image/png"),  # the bytes say what it is
    ],
)
def test_each_allowed_type_is_sniffed_from_its_bytes(http, data, name, declared, media_type):
    response = upload(http, data, name, declared)
    assert response.status_code == 201, response.text
    assert response.json()["media_type"] == media_type


@pytest.mark.parametrize(
    ("data", "name", "declared", "status", "code"),
    [
        (pdf_bytes(), "cat.png", "image/png", 422, "attachment_type_mismatch"),  # not what its name says
        (png_bytes(), "report.pdf", "application/octet-stream", 422, "attachment_type_mismatch"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "x.svg",
            "image/svg+xml",
            415,
            "unsupported_attachment_type",
        ),
        (
            b"<!DOCTYPE html><html><script>alert(1)</script></html>",
            "x.txt",
            "text/plain",
            415,
            "unsupported_attachment_type",
        ),
        (b"\x00\x01\x02binary\xff\xfe", "blob.txt", "text/plain", 415, "unsupported_attachment_type"),
        (b"PK\x03\x04" + b"\x00" * 40, "archive.zip", "application/zip", 415, "unsupported_attachment_type"),
        (bomb_png(), "bomb.png", "image/png", 413, "image_too_large"),
        (png_bytes()[:30], "cut.png", "image/png", 422, "invalid_attachment"),
        (b"", "empty.txt", "text/plain", 422, "invalid_attachment"),
    ],
)
def test_a_file_that_is_not_what_it_claims_or_not_allowed_is_refused_and_nothing_is_stored(
    http, data, name, declared, status, code
):
    before = stored_files()
    response = upload(http, data, name, declared)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert Attachment.objects.count() == 0
    assert stored_files() == before


def test_a_too_large_image_by_pixels_names_the_limit(http, settings):
    settings.ATTACHMENT_MAX_PIXELS = 100
    response = upload(http, png_bytes(20, 20), "big.png", "image/png")
    assert response.status_code == 413
    assert "20x20 pixels" in response.json()["error"]["message"]
    assert "ATTACHMENT_MAX_PIXELS" in response.json()["error"]["message"]


def test_the_upload_takes_one_file_in_the_file_field_and_nothing_else(http):
    assert http.post("/api/attachments", json={"file": "x"}).status_code == 415
    response = http.post(
        "/api/attachments", files={"file": ("a.png", png_bytes(), "image/png")}, data={"purpose": "vision"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "purpose"
    two = [("file", ("a.png", png_bytes(), "image/png")), ("file", ("b.png", png_bytes(), "image/png"))]
    assert http.post("/api/attachments", files=two).status_code == 422
    assert Attachment.objects.count() == 0


def _read_until_closed(sock) -> bytes:
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_1_gb_upload_is_refused_without_being_read(asgi_server, http, settings):
    """Declared: refused before a byte of the body is read. Streamed without a length (chunked):
    refused once the cap is passed; the server's memory stays flat either way."""
    import socket

    gigabyte = 1024**3
    with socket.create_connection(("127.0.0.1", asgi_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: %d\r\n\r\n" % gigabyte
        )  # no byte of the body is sent: the declared length is refused first
        reply = _read_until_closed(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b" 413 " in head.split(b"\r\n")[0]
    assert b"ATTACHMENT_MAX_BYTES" in body

    sent = 0
    chunk = b"\0" * (1024 * 1024)

    def body():
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="huge.png"\r\n\r\n'
        while sent < gigabyte:
            sent += len(chunk)
            yield chunk

    before = _rss_kib()
    try:
        response = http.post(
            "/api/attachments", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        status = response.status_code
    except httpx.HTTPError:  # the server may close the connection while the client still sends
        status = 413
    grown_mib = (_rss_kib() - before) / 1024
    assert status == 413
    assert sent < 200 * 1024 * 1024, f"the client sent {sent} bytes before the refusal"
    assert grown_mib < 64, f"the server grew {grown_mib:.0f} MiB"
    assert Attachment.objects.count() == 0


def test_an_upload_past_its_deadline_is_408(asgi_server, settings):
    import socket
    import time

    settings.ATTACHMENT_UPLOAD_TIMEOUT_SECONDS = 1.0
    with socket.create_connection(("127.0.0.1", asgi_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n--b\r\n"
        )
        started = time.monotonic()
        reply = sock.recv(4096)
    assert b" 408 " in reply.split(b"\r\n")[0]
    assert time.monotonic() - started < 8


def test_the_daily_byte_limit_counts_each_callers_uploads(http, settings):
    data = png_bytes()
    settings.ATTACHMENT_DAILY_BYTES = len(data) * 2
    assert upload(http, data, "a.png").status_code == 201
    assert upload(http, data, "b.png").status_code == 201
    third = upload(http, data, "c.png")
    assert third.status_code == 429
    assert third.json()["error"]["code"] == "attachment_quota_exceeded"
    assert "ATTACHMENT_DAILY_BYTES" in third.json()["error"]["message"]


def test_an_owners_attachment_is_not_readable_by_another_owner_or_anonymously(
    http, user, other_user, settings
):
    settings.ALLOW_ANONYMOUS = False
    _, alice = api_key_create(owner=user, name="alice")
    _, bob = api_key_create(owner=other_user, name="bob")
    created = upload(http, png_bytes(), "alice.png", headers={"X-API-Key": alice}).json()
    for url in (f"/api/attachments/{created['id']}", created["download_url"]):
        assert http.get(url, headers={"X-API-Key": alice}).status_code == 200
        assert http.get(url, headers={"X-API-Key": bob}).status_code == 404
        assert http.get(url).status_code == 401
    assert http.delete(f"/api/attachments/{created['id']}", headers={"X-API-Key": bob}).status_code == 404
    assert Attachment.objects.filter(pk=created["id"]).exists()
    assert http.get(f"/api/attachments/{uuid.uuid4()}", headers={"X-API-Key": alice}).status_code == 404


def test_an_unsent_upload_can_be_deleted_and_is_swept_after_its_time(http, settings):
    first = upload(http, png_bytes(), "a.png").json()
    assert http.delete(f"/api/attachments/{first['id']}").status_code == 204
    assert not Attachment.objects.filter(pk=first["id"]).exists()
    old = upload(http, png_bytes(), "old.png").json()
    row = Attachment.objects.get(pk=old["id"])
    Attachment.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert storages["attachments"].exists(row.storage_name)
    out = io.StringIO()
    call_command("prune_attachments", stdout=out)
    assert out.getvalue().startswith("1 unsent")
    assert not Attachment.objects.filter(pk=row.pk).exists()
    assert not storages["attachments"].exists(row.storage_name)


def test_deleting_a_user_deletes_their_files(http, user, settings):
    _, key = api_key_create(owner=user, name="mine")
    created = upload(http, png_bytes(), "mine.png", headers={"X-API-Key": key}).json()
    name = Attachment.objects.get(pk=created["id"]).storage_name
    assert storages["attachments"].exists(name)
    user.delete()
    assert not Attachment.objects.filter(pk=created["id"]).exists()
    assert not storages["attachments"].exists(name)


def test_a_session_whose_sent_file_was_deleted_goes_on(http, settings):
    settings.LLM_PROVIDER = "demo"
    created = upload(http, png_bytes(), "gone.png", "image/png").json()
    first = http.post(
        "/api/sessions/s-gone/messages", json={"content": "see", "attachments": [created["id"]]}
    )
    assert first.status_code == 200, first.text
    Attachment.objects.filter(pk=created["id"]).delete()  # as the admin's delete does
    second = http.post("/api/sessions/s-gone/messages", json={"content": "and now?"})
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "complete"
    assert http.get(created["download_url"]).status_code == 404
