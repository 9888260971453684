"""Images and files through the Chat Completions adapter: the parts it sends (real openai SDK, real
HTTP), the bytes the fake upstream decoded (its listing's SHA-256), and the shapes the fake refuses
as OpenAI does."""

from __future__ import annotations

import re

import openai
import pytest

from providers.base import ATTACHMENT_TYPES, PDF, TEXT, ChatMessage, InputFile, InvalidRequest
from tests.fake_upstream import ATTACHMENT_TOKENS, count_words
from tests.providers.attachment_samples import (
    PDF_BYTES,
    PDF_FILE,
    PNG,
    PNG_BYTES,
    REMOTE_IMAGE,
    REMOTE_IMAGE_URL,
    TEXT_BYTES,
    TEXT_FILE,
    line,
    with_files,
)
from tests.providers.conftest import OPENAI_KEY

PATH = "/v1/chat/completions"


def user_content(fake_upstream, index: int = -1):
    messages = fake_upstream.last_request(PATH).json["messages"]
    return [m for m in messages if m["role"] == "user"][index]["content"]


# ---- what goes on the wire, and arrives exactly ---------------------------------------------------


async def test_an_image_goes_as_an_image_url_part_with_a_data_url_after_the_text(
    make_provider, fake_upstream
):
    result = await make_provider("openai").complete(with_files("What is this?", PNG))

    assert user_content(fake_upstream) == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG.data_url}},
    ]
    assert PNG.data_url.startswith("data:image/png;base64,iVBOR")
    assert result.text.startswith(line(1, "image/png", PNG_BYTES) + "\n")


async def test_the_clients_image_detail_is_sent_when_given(make_provider, fake_upstream):
    low = InputFile("image/png", PNG_BYTES, filename="cat.png", size=len(PNG_BYTES), detail="low")

    await make_provider("openai").complete(with_files("look", low))

    assert user_content(fake_upstream)[1]["image_url"] == {"url": PNG.data_url, "detail": "low"}


async def test_a_pdf_goes_as_a_file_part_with_its_name_and_a_data_url(make_provider, fake_upstream):
    unnamed = InputFile(PDF, PDF_BYTES, size=len(PDF_BYTES))

    result = await make_provider("openai").complete(with_files("Summarise", PDF_FILE, unnamed))

    data_url = "data:application/pdf;base64," + PDF_FILE.data_url.split(",", 1)[1]
    assert user_content(fake_upstream)[1:] == [
        {"type": "file", "file": {"filename": "report.pdf", "file_data": data_url}},
        {"type": "file", "file": {"filename": "document.pdf", "file_data": data_url}},
    ]
    assert line(1, PDF, PDF_BYTES) in result.text and line(2, PDF, PDF_BYTES) in result.text


async def test_a_text_file_goes_as_a_text_part_labelled_with_its_name(make_provider, fake_upstream):
    unnamed = InputFile(TEXT, b"plain", size=5)

    result = await make_provider("openai").complete(with_files("Read these", TEXT_FILE, unnamed))

    assert user_content(fake_upstream)[1:] == [
        {"type": "text", "text": "notes.txt:\n" + TEXT_BYTES.decode()},
        {"type": "text", "text": "attachment.txt:\nplain"},
    ]
    assert "[attachment" not in result.text  # text files are text, not listed


async def test_a_remote_image_goes_as_its_https_url_which_openai_fetches(make_provider, fake_upstream):
    result = await make_provider("openai").complete(with_files("and this?", REMOTE_IMAGE))

    assert user_content(fake_upstream)[1] == {"type": "image_url", "image_url": {"url": REMOTE_IMAGE_URL}}
    assert result.text.startswith(f"[attachment 1: url {REMOTE_IMAGE_URL}]\n")


async def test_attachments_keep_their_order_and_a_message_of_files_alone_has_no_text_part(
    make_provider, fake_upstream
):
    result = await make_provider("openai").complete(with_files("", PDF_FILE, TEXT_FILE, PNG))

    assert [part["type"] for part in user_content(fake_upstream)] == ["file", "text", "image_url"]
    assert result.text.startswith(line(1, PDF, PDF_BYTES) + "\n" + line(2, "image/png", PNG_BYTES) + "\n")


async def test_an_image_of_an_earlier_user_message_is_sent_again_with_the_history(
    make_provider, fake_upstream
):
    history = (ChatMessage("user", "What is this?", attachments=(PNG,)), ChatMessage("assistant", "A cat."))

    result = await make_provider("openai").complete(with_files("What colour is it?", history=history))

    messages = fake_upstream.last_request(PATH).json["messages"]
    assert messages[0]["content"][1] == {"type": "image_url", "image_url": {"url": PNG.data_url}}
    assert messages[1] == {"role": "assistant", "content": "A cat."}
    assert messages[2] == {"role": "user", "content": "What colour is it?"}  # no attachments: a string
    assert line(1, "image/png", PNG_BYTES) in result.text


async def test_the_reported_usage_with_image_tokens_is_kept_as_reported(make_provider, fake_upstream):
    result = await make_provider("openai").complete(with_files("two images", PNG, PNG))

    assert result.usage.input_tokens == count_words("two images") + 2 * ATTACHMENT_TOKENS
    assert not result.usage.estimated


async def test_a_pdf_without_its_bytes_is_refused_before_any_request(make_provider, fake_upstream):
    remote_pdf = InputFile(PDF, None, url="https://example.com/a.pdf", filename="a.pdf")

    with pytest.raises(InvalidRequest, match=re.escape("'a.pdf' came without its bytes")):
        await make_provider("openai").complete(with_files("read", remote_pdf))
    assert fake_upstream.requests == []


# ---- what the adapter says it takes -----------------------------------------------------------------


async def test_every_model_takes_every_type_and_openai_fetches_remote_images_only(make_provider):
    provider = make_provider("openai")

    assert provider.attachment_types("gpt-4o-mini") == ATTACHMENT_TYPES
    assert provider.check_attachments("gpt-4o-mini", (PNG, PDF_FILE, TEXT_FILE)) is None
    assert [provider.fetches_urls("gpt-4o", t) for t in ("image/png", "image/*", PDF, TEXT)] == [
        True,
        True,
        False,
        False,
    ]


# ---- the shapes the fake upstream refuses, as OpenAI does ---------------------------------------------


@pytest.fixture
async def raw_client(fake_upstream):
    client = openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=fake_upstream.openai_base_url, max_retries=0)
    yield client
    await client.close()


async def refused(client, content, role: str = "user") -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": role, "content": content}])
    return caught.value


async def test_the_fake_refuses_an_image_url_given_as_a_string(raw_client):
    error = await refused(raw_client, [{"type": "image_url", "image_url": PNG.data_url}])

    assert error.body["param"] == "messages[0].content[0].image_url"
    assert error.body["code"] == "invalid_type"
    assert "expected an object, but got a string" in error.body["message"]


async def test_the_fake_refuses_file_data_that_is_not_a_data_url(raw_client):
    bare = PDF_FILE.data_url.split(",", 1)[1]
    error = await refused(raw_client, [{"type": "file", "file": {"filename": "a.pdf", "file_data": bare}}])

    assert error.body["param"] == "messages[0].content[0].file.file_data"
    assert "data URL" in error.body["message"]


@pytest.mark.parametrize(
    ("content", "param", "said"),
    [
        (
            [{"type": "input_image", "image_url": "x"}],
            "messages[0].content[0].type",
            "Invalid value: 'input_image'",
        ),
        (
            [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}],
            "messages[0].content[0].image_url.url",
            "base64-encoded data URL",
        ),
        (
            [{"type": "image_url", "image_url": {"url": "data:text/html;base64,PGI+"}}],
            "messages[0].content[0].image_url.url",
            "Invalid MIME type 'text/html'",
        ),
        (
            [{"type": "image_url", "image_url": {"url": PNG.data_url, "detail": "max"}}],
            "messages[0].content[0].image_url.detail",
            "Invalid value: 'max'",
        ),
        (
            [{"type": "file", "file": {"file_data": PDF_FILE.data_url}}],
            "messages[0].content[0].file.filename",
            "Missing required parameter",
        ),
        (
            [{"type": "file", "file": {"file_url": "https://example.com/a.pdf"}}],
            "messages[0].content[0].file.file_url",
            "Unknown parameter",
        ),
    ],
)
async def test_the_fake_refuses_other_malformed_parts_naming_them(raw_client, content, param, said):
    error = await refused(raw_client, content)

    assert error.body["param"] == param
    assert said in error.body["message"]


async def test_the_fake_refuses_an_image_outside_a_user_message(raw_client):
    error = await refused(
        raw_client, [{"type": "image_url", "image_url": {"url": PNG.data_url}}], role="system"
    )

    assert "only allowed for messages with role 'user'" in error.body["message"]
