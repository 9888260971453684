"""Attachments in an S3-compatible store (``ATTACHMENT_STORAGE=s3``), over real HTTP.

The storage is the one ``chatproject/settings.py`` configures from the ``AWS_*`` variables
(django-storages' ``S3Storage`` on boto3), pointed at moto's server in a child process on
loopback (``tests/s3_server.py``): bytes saved and read back exactly, names never overwritten,
signed URLs that expire while the plain object URL is refused, large objects read in chunks, and
an upload through ``POST /api/attachments`` stored in the bucket and downloaded back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

pytest.importorskip("moto.server", reason="moto[server] (requirements-dev.txt) is not installed")

from tests.s3_server import (  # noqa: F401 (the fixtures s3_server and s3_attachment_storage)
    SETTINGS_BUCKET,
    read_settings,
    s3_attachment_storage_fixture,
    s3_server_fixture,
    settings_environment,
)

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
LOCATION = "attachments"  # AWS_LOCATION's default


def binary(size: int, seed: bytes = b"attachment") -> bytes:
    """``size`` bytes starting with a PNG header and every byte value, then random (the same for a seed)."""
    head = PNG_HEADER + bytes(range(256))
    return (head + random.Random(seed).randbytes(max(size - len(head), 0)))[:size]


def direct() -> httpx.Client:
    """An HTTP client that goes straight to loopback (no proxy from the environment)."""
    return httpx.Client(trust_env=False, timeout=30)


def test_bytes_are_stored_and_read_back_exactly(s3_attachment_storage, s3_server):
    data = binary(3 * 1024 * 1024)
    name = storages["attachments"].save("2026/01/02/photo.png", ContentFile(data))
    assert s3_attachment_storage is storages["attachments"]
    assert name == "2026/01/02/photo.png"

    storage = storages["attachments"]
    assert storage.exists(name)
    assert storage.size(name) == len(data)
    with storage.open(name, "rb") as handle:
        assert handle.read() == data
    # The object is in the bucket under the storage's location, with the type its name says.
    head = s3_server.client().head_object(Bucket=storage.bucket_name, Key=f"{LOCATION}/{name}")
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "image/png"

    storage.delete(name)
    assert not storage.exists(name)
    with pytest.raises(FileNotFoundError):
        storage.open(name, "rb")


def test_a_name_already_taken_gets_another_name_and_both_files_stay(s3_attachment_storage):
    storage = storages["attachments"]
    first = storage.save("2026/01/02/same.png", ContentFile(binary(1000, b"first")))
    second = storage.save("2026/01/02/same.png", ContentFile(binary(1000, b"second")))
    assert first == "2026/01/02/same.png"
    assert second != first
    assert second.startswith("2026/01/02/same_") and second.endswith(".png")
    with storage.open(first, "rb") as handle:
        assert handle.read() == binary(1000, b"first")
    with storage.open(second, "rb") as handle:
        assert handle.read() == binary(1000, b"second")


def test_the_url_is_signed_and_expires_and_the_plain_object_url_is_refused(s3_attachment_storage, s3_server):
    storage = storages["attachments"]
    data = binary(200_000)
    name = storage.save("2026/01/02/signed.png", ContentFile(data))

    url = storage.url(name)
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == s3_server.url
    assert parts.path == f"/{storage.bucket_name}/{LOCATION}/{name}"
    if "X-Amz-Signature" in query:  # Signature Version 4
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert query["X-Amz-Expires"] == "300"
    else:  # Signature Version 2 (botocore's default for presigning in us-east-1)
        assert query["Signature"]
        assert abs(int(query["Expires"]) - (time.time() + 300)) < 60
    with direct() as client:
        signed = client.get(url)
        assert signed.status_code == 200
        assert signed.content == data
        plain = client.get(f"{s3_server.url}{parts.path}")
        assert plain.status_code == 403
        assert plain.content != data


def test_a_large_object_is_read_in_chunks(s3_attachment_storage):
    storage = storages["attachments"]
    # Larger than boto3's multipart threshold (8 MiB): uploaded in parts, downloaded in ranges.
    data = binary(12 * 1024 * 1024 + 12345, b"large")
    name = storage.save("2026/01/02/large.png", ContentFile(data))
    assert storage.size(name) == len(data)

    digest = hashlib.sha256()
    sizes = []
    with storage.open(name, "rb") as handle:
        for chunk in handle.chunks(chunk_size=256 * 1024):
            sizes.append(len(chunk))
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert sum(sizes) == len(data)
    assert len(sizes) == -(-len(data) // (256 * 1024))
    assert max(sizes) == 256 * 1024


def test_a_large_download_is_held_on_disk_not_in_memory(s3_attachment_storage):
    storage = storages["attachments"]
    data = binary(3 * 1024 * 1024, b"spooled")
    name = storage.save("2026/01/02/spooled.png", ContentFile(data))
    with storage.open(name, "rb") as handle:
        first = next(handle.chunks(chunk_size=64 * 1024))
        assert first == data[: 64 * 1024]
        # django-storages downloads the object into a SpooledTemporaryFile: past max_memory_size it is
        # a temporary file on disk, so a large attachment does not sit in memory while it is read.
        assert handle.file._rolled


def test_the_url_is_signed_with_signature_version_4(s3_attachment_storage):
    storage = storages["attachments"]
    name = storage.save("2026/01/02/v4.png", ContentFile(binary(1000)))
    query = {key: values[0] for key, values in parse_qs(urlsplit(storage.url(name)).query).items()}
    assert query.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "300"
    assert query["X-Amz-Signature"]


def test_a_file_saved_from_an_open_stream_is_stored_whole(s3_attachment_storage):
    """``save_attachment`` hands the storage a file object it has read (to sniff and hash it)."""
    storage = storages["attachments"]
    data = binary(5 * 1024 * 1024 + 7, b"stream")
    stream = io.BytesIO(data)
    stream.read(4096)  # left part-way through, as after a hash
    name = storage.save("2026/01/02/stream.png", stream)
    with storage.open(name, "rb") as handle:
        assert handle.read() == data


def test_settings_with_s3_storage_name_the_missing_bucket():
    env = settings_environment("http://127.0.0.1:9")
    env.pop("AWS_STORAGE_BUCKET_NAME")
    result = read_settings(env)
    assert result.returncode != 0
    assert "AWS_STORAGE_BUCKET_NAME" in result.stderr
    assert "ATTACHMENT_STORAGE=s3" in result.stderr


def test_settings_with_s3_storage_configure_django_storages():
    env = settings_environment("http://minio.internal:9000", AWS_LOCATION="chat/files")
    result = read_settings(env)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout.strip().splitlines()[-1])
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    options = config["OPTIONS"]
    assert options["bucket_name"] == SETTINGS_BUCKET
    assert options["endpoint_url"] == "http://minio.internal:9000"
    assert options["region_name"] == "us-east-1"
    assert options["location"] == "chat/files"
    assert options["file_overwrite"] is False
    assert options["querystring_auth"] is True
    assert options["default_acl"] is None


def test_the_filesystem_is_the_default_storage():
    env = settings_environment("http://127.0.0.1:9")
    for name in [name for name in env if name.startswith(("AWS_", "ATTACHMENT_"))]:
        env.pop(name)
    env["MEDIA_ROOT"] = os.path.join(os.sep, "srv", "media")
    result = read_settings(env)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout.strip().splitlines()[-1])
    assert config["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert config["OPTIONS"]["location"] == os.path.join(os.sep, "srv", "media", "attachments")


@pytest.mark.django_db(transaction=True)
def test_an_upload_through_the_api_is_kept_in_the_bucket_and_downloads_byte_for_byte(
    asgi_server, s3_attachment_storage, s3_server
):
    from PIL import Image

    from conversations.models import Attachment

    # A 1024x1024 PNG of random pixels: ~3 MB that do not compress, a real image to the checks.
    buffer = io.BytesIO()
    Image.frombytes("RGB", (1024, 1024), binary(3 * 1024 * 1024, b"pixels")).save(buffer, "PNG")
    data = buffer.getvalue()
    assert len(data) > 3 * 1024 * 1024

    with httpx.Client(base_url=asgi_server.url, trust_env=False, timeout=60) as http:
        created = http.post("/api/attachments", files={"file": ("noise.png", data, "image/png")})
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["media_type"], body["size"]) == ("image/png", len(data))
        assert body["sha256"] == hashlib.sha256(data).hexdigest()

        row = Attachment.objects.get(pk=body["id"])
        key = f"{LOCATION}/{row.storage_name}"
        head = s3_server.client().head_object(Bucket=s3_attachment_storage.bucket_name, Key=key)
        assert head["ContentLength"] == len(data)
        stored = s3_server.client().get_object(Bucket=s3_attachment_storage.bucket_name, Key=key)
        assert stored["Body"].read() == data

        content = http.get(body["download_url"])
        assert content.status_code == 200
        assert content.content == data
        assert content.headers["content-type"] == "image/png"
        assert content.headers["content-disposition"].startswith("attachment;")

        # Deleted through the API: gone from the bucket too.
        assert http.delete(f"/api/attachments/{body['id']}").status_code == 204
    assert not s3_attachment_storage.exists(row.storage_name)
