"""Images and files through the Responses adapter: ``input_image``/``input_file``/``input_text``
parts (real openai SDK, real HTTP), the bytes the fake decoded, remote images and PDFs by URL, a
chain sending only its new input, and the shapes the fake refuses as OpenAI does."""

from __future__ import annotations

import openai
import pytest

from providers.base import ATTACHMENT_TYPES, PDF, TEXT, ChatMessage, InputFile
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

PATH = "/v1/responses"


def sent_input(fake_upstream):
    return fake_upstream.last_request(PATH).json["input"]


async def test_an_image_goes_as_input_image_with_a_data_url_string_and_detail_auto(
    make_provider, fake_upstream
):
    result = await make_provider("openai-responses").complete(with_files("What is this?", PNG))

    assert sent_input(fake_upstream) == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": PNG.data_url, "detail": "auto"},
            ],
        }
    ]
    assert result.text.startswith(line(1, "image/png", PNG_BYTES) + "\n")


async def test_the_clients_detail_is_sent_as_given(make_provider, fake_upstream):
    high = InputFile("image/png", PNG_BYTES, size=len(PNG_BYTES), detail="high")

    await make_provider("openai-responses").complete(with_files("look", high))

    assert sent_input(fake_upstream)[0]["content"][1]["detail"] == "high"


async def test_a_pdf_goes_as_input_file_with_its_name_and_a_data_url(make_provider, fake_upstream):
    unnamed = InputFile(PDF, PDF_BYTES, size=len(PDF_BYTES))

    result = await make_provider("openai-responses").complete(with_files("Summarise", PDF_FILE, unnamed))

    assert sent_input(fake_upstream)[0]["content"][1:] == [
        {"type": "input_file", "filename": "report.pdf", "file_data": PDF_FILE.data_url},
        {"type": "input_file", "filename": "document.pdf", "file_data": PDF_FILE.data_url},
    ]
    assert line(1, PDF, PDF_BYTES) in result.text and line(2, PDF, PDF_BYTES) in result.text


async def test_a_text_file_goes_as_input_text_labelled_with_its_name(make_provider, fake_upstream):
    result = await make_provider("openai-responses").complete(with_files("Read", TEXT_FILE))

    assert sent_input(fake_upstream)[0]["content"][1] == {
        "type": "input_text",
        "text": "notes.txt:\n" + TEXT_BYTES.decode(),
    }
    assert "[attachment" not in result.text


async def test_remote_images_and_pdfs_go_by_url_which_openai_fetches(make_provider, fake_upstream):
    remote_pdf = InputFile(PDF, None, url="https://example.com/report.pdf", filename="report.pdf")

    result = await make_provider("openai-responses").complete(with_files("both", REMOTE_IMAGE, remote_pdf))

    assert sent_input(fake_upstream)[0]["content"][1:] == [
        {"type": "input_image", "image_url": REMOTE_IMAGE_URL, "detail": "auto"},
        {"type": "input_file", "file_url": "https://example.com/report.pdf"},
    ]
    assert result.text.startswith(
        f"[attachment 1: url {REMOTE_IMAGE_URL}]\n[attachment 2: url https://example.com/report.pdf]\n"
    )


async def test_the_history_sends_an_earlier_image_again(make_provider, fake_upstream):
    history = (ChatMessage("user", "What is this?", attachments=(PNG,)), ChatMessage("assistant", "A cat."))

    result = await make_provider("openai-responses").complete(with_files("Its colour?", history=history))

    items = sent_input(fake_upstream)
    assert items[0]["content"][1] == {"type": "input_image", "image_url": PNG.data_url, "detail": "auto"}
    assert items[2] == {"role": "user", "content": "Its colour?"}
    assert line(1, "image/png", PNG_BYTES) in result.text


async def test_a_chained_request_sends_only_the_new_message_with_its_attachments(
    make_provider, fake_upstream
):
    provider = make_provider("openai-responses")
    first = await provider.complete(with_files("What is this?", PNG))
    history = (ChatMessage("user", "What is this?", attachments=(PNG,)), ChatMessage("assistant", first.text))

    second = await provider.complete(
        with_files("And this?", PDF_FILE, history=history, previous_response_id=first.response_id)
    )

    items = sent_input(fake_upstream)
    assert [part["type"] for item in items for part in item["content"]] == ["input_text", "input_file"]
    assert second.text.startswith(line(1, PDF, PDF_BYTES) + "\n")


async def test_images_and_pdfs_are_fetched_by_openai_text_files_by_the_server(make_provider):
    provider = make_provider("openai-responses")

    assert provider.attachment_types("gpt-4o") == ATTACHMENT_TYPES
    assert [provider.fetches_urls("gpt-4o", t) for t in ("image/jpeg", "image/*", PDF, TEXT)] == [
        True,
        True,
        True,
        False,
    ]


# ---- the shapes the fake upstream refuses, as OpenAI does ---------------------------------------------


@pytest.fixture
async def raw_client(fake_upstream):
    client = openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=fake_upstream.openai_base_url, max_retries=0)
    yield client
    await client.close()


async def refused(client, content) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-4o", input=[{"role": "user", "content": content}])
    return caught.value


async def test_the_fake_refuses_an_input_image_url_given_as_an_object(raw_client):
    part = {"type": "input_image", "image_url": {"url": PNG.data_url}, "detail": "auto"}

    error = await refused(raw_client, [part])

    assert error.body["param"] == "input[0].content[0].image_url"
    assert "expected a string, but got an object" in error.body["message"]


@pytest.mark.parametrize(
    ("part", "param", "said"),
    [
        (
            {"type": "input_image", "image_url": PNG.data_url},
            "input[0].content[0].detail",
            "Missing required",
        ),
        (
            {"type": "image_url", "image_url": {"url": PNG.data_url}},
            "input[0].content[0].type",
            "'image_url'",
        ),
        (
            {"type": "input_file", "file_data": PDF_FILE.data_url},
            "input[0].content[0].filename",
            "needs its name",
        ),
        (
            {"type": "input_file", "filename": "a.pdf", "file_data": PDF_FILE.data_url.split(",")[1]},
            "input[0].content[0].file_data",
            "data URL",
        ),
        (
            {"type": "input_file", "file_url": "https://example.com/a.pdf", "file_id": "file-1"},
            "input[0].content[0]",
            "Exactly one of",
        ),
    ],
)
async def test_the_fake_refuses_other_malformed_parts_naming_them(raw_client, part, param, said):
    error = await refused(raw_client, [part])

    assert error.body["param"] == param
    assert said in error.body["message"]


async def test_the_reported_usage_with_image_tokens_is_kept_as_reported(make_provider, fake_upstream):
    result = await make_provider("openai-responses").complete(with_files("an image", PNG))

    assert result.usage.input_tokens == count_words("an image") + ATTACHMENT_TOKENS
