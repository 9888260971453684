"""Images and files through the OpenAI-compatible adapter (Ollama, vLLM…): images only to the models
``attachment_models`` names (globs), always as data URLs; text files to every model; no PDFs."""

from __future__ import annotations

import re

import pytest

from providers.base import IMAGE_TYPES, PDF, TEXT, InvalidRequest
from providers.openai_compatible import OpenAICompatibleProvider
from tests.providers.attachment_samples import (
    PDF_FILE,
    PNG,
    PNG_BYTES,
    REMOTE_IMAGE,
    TEXT_BYTES,
    TEXT_FILE,
    line,
    with_files,
)

PATH = "/v1/chat/completions"
VISION = "llava*, qwen2.5vl:7b"


async def test_by_default_no_model_takes_images_but_every_model_takes_text_files(make_provider):
    provider = make_provider("openai-compatible")

    assert provider.attachment_types("llava:13b") == frozenset({TEXT})
    assert provider.check_attachments("llama3.2", (TEXT_FILE,)) is None


async def test_the_models_named_take_images_matched_as_globs_without_regard_to_case(make_provider):
    provider = make_provider("openai-compatible", attachment_models=VISION)

    takes = {
        m: provider.attachment_types(m) for m in ("llava:13b", "LLaVA-phi3", "qwen2.5vl:7b", "qwen2.5vl:3b")
    }
    assert takes == {
        "llava:13b": IMAGE_TYPES | {TEXT},
        "LLaVA-phi3": IMAGE_TYPES | {TEXT},
        "qwen2.5vl:7b": IMAGE_TYPES | {TEXT},
        "qwen2.5vl:3b": frozenset({TEXT}),
    }


async def test_a_refusal_names_the_model_the_type_and_what_it_takes(make_provider):
    provider = make_provider("openai-compatible", attachment_models=VISION)

    image = provider.check_attachments("llama3.2", (TEXT_FILE, PNG))
    pdf = provider.check_attachments("llava:13b", (PDF_FILE,))

    assert image.startswith("The model openai-compatible:llama3.2 cannot take image/png attachments here")
    assert "it takes text/plain" in image
    assert pdf.startswith("The model openai-compatible:llava:13b cannot take application/pdf attachments")


async def test_the_server_fetches_remote_files_for_these_servers(make_provider):
    provider = make_provider("openai-compatible", attachment_models="*")

    assert [provider.fetches_urls("llava", t) for t in ("image/png", "image/*", PDF, TEXT)] == [False] * 4


async def test_an_image_to_a_vision_model_goes_as_a_data_url(make_provider, fake_upstream):
    result = await make_provider("openai-compatible", attachment_models=VISION).complete(
        with_files("what is it", PNG, TEXT_FILE, model="llava:13b")
    )

    assert fake_upstream.last_request(PATH).json["messages"][0]["content"] == [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": PNG.data_url}},
        {"type": "text", "text": "notes.txt:\n" + TEXT_BYTES.decode()},
    ]
    assert result.text.startswith(line(1, "image/png", PNG_BYTES) + "\n")


async def test_a_text_file_to_a_text_model_goes_as_a_text_part(make_provider, fake_upstream):
    await make_provider("openai-compatible").complete(with_files("read", TEXT_FILE, model="llama3.2"))

    assert fake_upstream.last_request(PATH).json["messages"][0]["content"] == [
        {"type": "text", "text": "read"},
        {"type": "text", "text": "notes.txt:\n" + TEXT_BYTES.decode()},
    ]


async def test_an_image_to_a_model_not_named_is_refused_before_any_request(make_provider, fake_upstream):
    provider = make_provider("openai-compatible", attachment_models=VISION)

    with pytest.raises(InvalidRequest, match=re.escape("openai-compatible:llama3.2 cannot take image/png")):
        await provider.complete(with_files("look", PNG, model="llama3.2"))
    assert fake_upstream.requests == []


async def test_a_remote_image_without_its_bytes_is_never_sent_by_url(make_provider, fake_upstream):
    provider = make_provider("openai-compatible", attachment_models="*")

    with pytest.raises(InvalidRequest, match="came without its bytes"):
        await provider.complete(with_files("look", REMOTE_IMAGE, model="llava"))
    assert fake_upstream.requests == []


async def test_the_adapter_built_by_hand_takes_images_for_no_model():
    provider = OpenAICompatibleProvider(default_model="llava", base_url="http://localhost:11434/v1")

    assert provider.attachment_types("llava") == frozenset({TEXT})
    await provider.aclose()
