"""Images and files through the Gemini adapter (real google-genai SDK, real HTTP): inline bytes within
the request's budget, the Files API's resumable upload beyond it (the fake keeps the bytes a later
``fileData`` references), uploads reused and re-made, and the parts the fake refuses as Gemini does."""

from __future__ import annotations

import base64

import httpx
import pytest

from providers.base import ATTACHMENT_TYPES, PDF, TEXT, ChatMessage, InputFile, InvalidRequest, Unavailable
from providers.gemini_files import DEFAULT_INLINE_MAX_BYTES
from tests.fake_upstream import ATTACHMENT_TOKENS, count_words
from tests.providers.attachment_samples import (
    PDF_BYTES,
    PDF_FILE,
    PNG,
    PNG_BYTES,
    REMOTE_IMAGE,
    TEXT_BYTES,
    TEXT_FILE,
    big_png,
    line,
    with_files,
)
from tests.providers.conftest import GEMINI_KEY

PATH = ":streamGenerateContent"
KIB = 1024


def sent_parts(fake_upstream, content: int = -1) -> list[dict]:
    return fake_upstream.last_request(PATH).json["contents"][content]["parts"]


def inline(part: dict) -> tuple[str, bytes]:
    """An ``inlineData`` part's type and bytes (the SDK writes its keys snake_case, the data URL-safe)."""
    blob = part["inlineData"]
    return blob["mime_type"], base64.urlsafe_b64decode(blob["data"])


def upload_requests(fake_upstream) -> list:
    return [r for r in fake_upstream.requests if r.path.startswith("/upload/")]


# ---- inline ----------------------------------------------------------------------------------------


async def test_images_and_pdfs_go_inline_after_the_text_and_text_files_as_text(make_provider, fake_upstream):
    result = await make_provider("gemini").complete(with_files("Describe", PNG, PDF_FILE, TEXT_FILE))

    parts = sent_parts(fake_upstream)
    assert parts[0] == {"text": "Describe"}
    assert [inline(parts[1]), inline(parts[2])] == [("image/png", PNG_BYTES), (PDF, PDF_BYTES)]
    assert parts[3] == {"text": "notes.txt:\n" + TEXT_BYTES.decode()}
    assert result.text.startswith(line(1, "image/png", PNG_BYTES) + "\n" + line(2, PDF, PDF_BYTES) + "\n")
    assert upload_requests(fake_upstream) == []


async def test_a_message_of_files_alone_has_no_empty_text_part(make_provider, fake_upstream):
    await make_provider("gemini").complete(with_files("", PNG))

    assert [list(part) for part in sent_parts(fake_upstream)] == [["inlineData"]]


async def test_an_earlier_image_is_sent_again_with_the_history(make_provider, fake_upstream):
    history = (ChatMessage("user", "What is this?", attachments=(PNG,)), ChatMessage("assistant", "A cat."))

    result = await make_provider("gemini").complete(with_files("Its colour?", history=history))

    assert inline(sent_parts(fake_upstream, 0)[1]) == ("image/png", PNG_BYTES)
    assert sent_parts(fake_upstream, 2) == [{"text": "Its colour?"}]
    assert line(1, "image/png", PNG_BYTES) in result.text


async def test_the_reported_usage_counts_the_image_tokens(make_provider, fake_upstream):
    result = await make_provider("gemini").complete(with_files("one image", PNG))

    assert result.usage.input_tokens == count_words("one image") + ATTACHMENT_TOKENS


# ---- beyond the inline budget: the Files API -----------------------------------------------------


async def test_a_file_beyond_the_inline_budget_is_uploaded_and_referenced(make_provider, fake_upstream):
    large = big_png(3 * KIB)
    image = InputFile("image/png", large, filename="large.png", size=len(large))

    result = await make_provider("gemini", inline_max_bytes=KIB).complete(with_files("Look", image))

    start, upload = upload_requests(fake_upstream)
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-length"] == str(len(large))
    assert start.json == {
        "file": {"display_name": "large.png", "mime_type": "image/png", "size_bytes": len(large)}
    }
    assert upload.headers["x-goog-upload-command"] == "upload, finalize"
    assert "x-goog-api-key" not in upload.headers
    (stored,) = fake_upstream.uploaded_files
    assert stored.data == large
    assert sent_parts(fake_upstream)[1] == {"fileData": {"file_uri": stored.uri, "mime_type": "image/png"}}
    assert result.text.startswith(line(1, "image/png", large) + "\n")


async def test_the_budget_counts_the_whole_request_in_order(make_provider, fake_upstream):
    """600 + 600 bytes against 1 KiB: the first goes inline, the second is uploaded, a small third
    still fits inline."""
    first, second = (InputFile("image/png", b"\x89PNG" + bytes([n]) * 596, size=600) for n in (1, 2))
    small = InputFile(TEXT, b"x" * 900, filename="t.txt")  # text is never counted: it is text
    history = (ChatMessage("user", "one", attachments=(first,)), ChatMessage("assistant", "ok"))

    await make_provider("gemini", inline_max_bytes=KIB).complete(
        with_files("two", second, small, PNG, history=history)
    )

    assert list(sent_parts(fake_upstream, 0)[1]) == ["inlineData"]
    last = sent_parts(fake_upstream)
    assert [next(iter(part)) for part in last] == ["text", "fileData", "text", "inlineData"]
    assert [f.data for f in fake_upstream.uploaded_files] == [second.data]


async def test_an_upload_is_reused_for_the_same_bytes_on_the_next_turn(make_provider, fake_upstream):
    provider = make_provider("gemini", inline_max_bytes=0)

    await provider.complete(with_files("first", PDF_FILE))
    history = (ChatMessage("user", "first", attachments=(PDF_FILE,)), ChatMessage("assistant", "ok"))
    second = await provider.complete(with_files("again", history=history))

    assert len(upload_requests(fake_upstream)) == 2  # one start, one upload: once
    assert line(1, PDF, PDF_BYTES) in second.text


async def test_a_file_google_no_longer_has_is_a_retryable_error_and_the_retry_uploads_it_again(
    make_provider, fake_upstream
):
    provider = make_provider("gemini", inline_max_bytes=0)
    await provider.complete(with_files("first", PDF_FILE))
    fake_upstream.forget_files()

    with pytest.raises(Unavailable, match="no longer has a file uploaded") as caught:
        await provider.complete(with_files("again", PDF_FILE))
    retried = await provider.complete(with_files("again", PDF_FILE))

    assert caught.value.retryable and caught.value.status == 403
    assert len(upload_requests(fake_upstream)) == 4
    assert line(1, PDF, PDF_BYTES) in retried.text


async def test_a_file_still_processing_is_polled_until_active(make_provider, fake_upstream):
    fake_upstream.hold_files_processing(1)

    result = await make_provider("gemini", inline_max_bytes=0).complete(with_files("wait", PDF_FILE))

    (stored,) = fake_upstream.uploaded_files
    polls = [r for r in fake_upstream.requests if r.method == "GET" and r.path.endswith(stored.name)]
    assert len(polls) == 1
    assert line(1, PDF, PDF_BYTES) in result.text


async def test_the_default_budget_is_20_mib_and_settable(make_provider):
    assert DEFAULT_INLINE_MAX_BYTES == 20 * 1024 * 1024
    assert make_provider("gemini").inline_max_bytes == DEFAULT_INLINE_MAX_BYTES
    assert make_provider("gemini", inline_max_bytes=KIB).inline_max_bytes == KIB


# ---- what the adapter says it takes -----------------------------------------------------------------


async def test_every_model_takes_every_type_and_the_server_fetches_remote_files(make_provider, fake_upstream):
    provider = make_provider("gemini")

    assert provider.attachment_types("gemini-2.5-flash") == ATTACHMENT_TYPES
    assert [provider.fetches_urls("gemini-2.5-flash", t) for t in ("image/png", "image/*", PDF, TEXT)] == [
        False
    ] * 4
    with pytest.raises(InvalidRequest, match="came without its bytes"):
        await provider.complete(with_files("look", REMOTE_IMAGE))
    assert fake_upstream.requests == []


# ---- the parts the fake upstream refuses, as Gemini does ---------------------------------------------


async def post_parts(fake_upstream, parts: list[dict]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=fake_upstream.gemini_base_url) as client:
        return await client.post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            headers={"x-goog-api-key": GEMINI_KEY},
            json={"contents": [{"role": "user", "parts": parts}]},
        )


@pytest.mark.parametrize(
    ("part", "status", "said"),
    [
        ({"inlineData": {"mimeType": "image/png", "data": "not base64!"}}, 400, "Base64 decoding failed"),
        ({"inlineData": {"data": base64.b64encode(PNG_BYTES).decode()}}, 400, "MIME type is required"),
        ({"imageData": {"mimeType": "image/png", "data": "AAAA"}}, 400, 'Unknown name "imageData"'),
        ({"text": "x", "inlineData": {"mimeType": "image/png", "data": "AAAA"}}, 400, "oneof field 'data'"),
        (
            {"fileData": {"fileUri": "http://127.0.0.1/v1beta/files/nope123", "mimeType": PDF}},
            403,
            "You do not have permission to access the File nope123 or it may not exist.",
        ),
    ],
)
async def test_the_fake_refuses_malformed_parts_as_gemini_does(fake_upstream, part, status, said):
    response = await post_parts(fake_upstream, [part])

    assert response.status_code == status
    assert said in response.json()["error"]["message"]


async def test_the_fake_reads_camel_case_and_standard_base64_too(fake_upstream):
    part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG_BYTES).decode()}}

    response = await post_parts(fake_upstream, [{"text": "hi"}, part])

    text = response.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert text.startswith(line(1, "image/png", PNG_BYTES))


async def test_the_fake_refuses_an_upload_that_is_not_the_size_announced(fake_upstream):
    async with httpx.AsyncClient(base_url=fake_upstream.url) as client:
        start = await client.post(
            "/upload/v1beta/files",
            headers={
                "x-goog-api-key": GEMINI_KEY,
                "x-goog-upload-protocol": "resumable",
                "x-goog-upload-command": "start",
                "x-goog-upload-header-content-length": "10",
                "x-goog-upload-header-content-type": PDF,
            },
            json={"file": {"mimeType": PDF}},
        )
        short = await client.post(
            start.headers["x-goog-upload-url"],
            headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"},
            content=b"12345",
        )

    assert start.status_code == 200 and start.headers["x-goog-upload-status"] == "active"
    assert short.status_code == 400
    assert "not the 10 announced" in short.json()["error"]["message"]
    assert fake_upstream.uploaded_files == []
