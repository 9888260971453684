"""Images and files through the Z.AI adapter (real zai-sdk, real HTTP): images to the vision models
only (``vision_models`` globs), as ``image_url`` parts whose data URL zai-sdk strips to bare base64;
text files to every model; no PDFs; and the parts the fake refuses."""

from __future__ import annotations

import re

import openai
import pytest

from providers.base import IMAGE_TYPES, PDF, TEXT, ChatMessage, InvalidRequest
from providers.zai import DEFAULT_VISION_MODELS, ZaiProvider
from tests.fake_upstream import ATTACHMENT_TOKENS, count_words
from tests.providers.attachment_samples import (
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
from tests.providers.conftest import ZAI_KEY

PATH = "/api/paas/v4/chat/completions"
VISION = "glm-4.6v"
TEXT_MODEL = "glm-4.6"


def user_content(fake_upstream):
    return fake_upstream.last_request(PATH).json["messages"][-1]["content"]


async def test_an_image_to_a_vision_model_arrives_as_the_bare_base64_zai_sdk_sends(
    make_provider, fake_upstream
):
    result = await make_provider("zai").complete(with_files("What is this?", PNG, model=VISION))

    assert user_content(fake_upstream) == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG.data_url.split("base64,", 1)[1]}},
    ]
    assert result.text.startswith(line(1, "image/png", PNG_BYTES) + "\n")


async def test_a_remote_image_goes_as_its_url_which_zai_fetches(make_provider, fake_upstream):
    result = await make_provider("zai").complete(with_files("and this", REMOTE_IMAGE, model=VISION))

    assert user_content(fake_upstream)[1] == {"type": "image_url", "image_url": {"url": REMOTE_IMAGE_URL}}
    assert result.text.startswith(f"[attachment 1: url {REMOTE_IMAGE_URL}]\n")


async def test_with_an_image_a_text_file_is_a_text_part(make_provider, fake_upstream):
    await make_provider("zai").complete(with_files("both", PNG, TEXT_FILE, model=VISION))

    assert user_content(fake_upstream)[2] == {"type": "text", "text": "notes.txt:\n" + TEXT_BYTES.decode()}


async def test_without_images_the_text_and_the_text_files_go_as_one_string(make_provider, fake_upstream):
    result = await make_provider("zai").complete(with_files("Read", TEXT_FILE, model=TEXT_MODEL))

    assert user_content(fake_upstream) == "Read\n\nnotes.txt:\n" + TEXT_BYTES.decode()
    assert "[attachment" not in result.text


async def test_an_earlier_image_is_sent_again_with_the_history(make_provider, fake_upstream):
    history = (ChatMessage("user", "What is this?", attachments=(PNG,)), ChatMessage("assistant", "A cat."))

    result = await make_provider("zai").complete(with_files("Its colour?", history=history, model=VISION))

    first = fake_upstream.last_request(PATH).json["messages"][0]["content"]
    assert first[1]["type"] == "image_url"
    assert line(1, "image/png", PNG_BYTES) in result.text


async def test_an_image_to_a_text_model_is_refused_naming_the_model_before_any_request(
    make_provider, fake_upstream
):
    with pytest.raises(
        InvalidRequest, match=re.escape("The model zai:glm-4.6 cannot take image/png attachments")
    ):
        await make_provider("zai").complete(with_files("look", PNG, model=TEXT_MODEL))
    assert fake_upstream.requests == []


async def test_vision_models_by_default_and_by_setting(make_provider):
    default = make_provider("zai")
    custom = make_provider("zai", vision_models="glm-5v*")
    none = make_provider("zai", vision_models="")

    assert DEFAULT_VISION_MODELS == "glm-4v*,glm-4.5v*,glm-4.6v*"
    assert [default.attachment_types(m) for m in ("glm-4.6v", "GLM-4.5V", "glm-4v-plus", "glm-4.6")] == [
        IMAGE_TYPES | {TEXT},
        IMAGE_TYPES | {TEXT},
        IMAGE_TYPES | {TEXT},
        frozenset({TEXT}),
    ]
    assert custom.attachment_types("glm-5v-turbo") == IMAGE_TYPES | {TEXT}
    assert custom.attachment_types("glm-4.6v") == frozenset({TEXT})
    assert none.attachment_types("glm-4.6v") == frozenset({TEXT})


async def test_no_model_takes_pdfs_and_zai_fetches_remote_images(make_provider):
    provider = make_provider("zai")

    refusal = provider.check_attachments(VISION, (PDF_FILE,))
    assert refusal.startswith("The model zai:glm-4.6v cannot take application/pdf attachments here")
    assert [provider.fetches_urls(VISION, t) for t in ("image/png", "image/*", PDF, TEXT)] == [
        True,
        True,
        False,
        False,
    ]


async def test_the_adapter_built_by_hand_uses_the_default_vision_models():
    provider = ZaiProvider(default_model="glm-4.6", api_key=ZAI_KEY)

    assert provider.attachment_types("glm-4.5v") == IMAGE_TYPES | {TEXT}
    await provider.aclose()


# ---- what the fake upstream takes and refuses ---------------------------------------------------------


@pytest.fixture
async def openai_client(fake_upstream):
    """The OpenAI SDK pointed at the Z.AI path: it sends a data URL as is (zai-sdk strips it)."""
    client = openai.AsyncOpenAI(api_key=ZAI_KEY, base_url=fake_upstream.zai_base_url, max_retries=0)
    yield client
    await client.close()


async def test_the_fake_takes_a_data_url_too(openai_client):
    part = {"type": "image_url", "image_url": {"url": PNG.data_url}}

    reply = await openai_client.chat.completions.create(
        model=VISION, messages=[{"role": "user", "content": [part]}]
    )

    assert reply.choices[0].message.content.startswith(line(1, "image/png", PNG_BYTES))


@pytest.mark.parametrize(
    ("part", "said"),
    [
        ({"type": "image_url", "image_url": PNG.data_url}, "expected an object, but got a string"),
        (
            {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF_FILE.data_url}},
            "Invalid value: 'file'",
        ),
        ({"type": "image_url", "image_url": {"url": "not an image!"}}, "expected an http(s) URL or a base64"),
    ],
)
async def test_the_fake_refuses_malformed_parts_in_zais_error_shape(openai_client, part, said):
    with pytest.raises(openai.BadRequestError) as caught:
        await openai_client.chat.completions.create(
            model=VISION, messages=[{"role": "user", "content": [part]}]
        )

    assert caught.value.body["code"] == "1210"
    assert said in caught.value.body["message"]


async def test_the_reported_usage_with_image_tokens_is_kept_as_reported(make_provider, fake_upstream):
    result = await make_provider("zai").complete(with_files("an image", PNG, model=VISION))

    assert result.usage.input_tokens == count_words("an image") + ATTACHMENT_TOKENS
