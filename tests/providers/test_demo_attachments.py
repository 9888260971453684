"""The offline demo provider with attachments: it says what it received, one deterministic line per
attachment (so the offline page shows it and tests can check the bytes), then its usual answer."""

from __future__ import annotations

import hashlib
import json

from providers.base import ATTACHMENT_TYPES, IMAGE_TOKENS, PDF, TEXT, ChatMessage, InputFile, ProviderRequest
from providers.demo import DemoProvider, attachment_line
from tests.providers.attachment_samples import PDF_BYTES, PDF_FILE, PNG, PNG_BYTES, TEXT_FILE, with_files


def demo() -> DemoProvider:
    return DemoProvider(delay=0)


def short_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


async def test_the_answer_starts_with_one_line_per_attachment_then_the_usual_answer():
    result = await demo().complete(with_files("What are these?", PNG, PDF_FILE, model="demo"))

    lines = result.text.split("\n")
    assert lines[:3] == [
        f'Attachment 1: image/png, {len(PNG_BYTES)} bytes, sha256 {short_sha(PNG_BYTES)}, "cat.png".',
        f'Attachment 2: application/pdf, {len(PDF_BYTES)} bytes, sha256 {short_sha(PDF_BYTES)}, "report.pdf".',
        "",
    ]
    assert "> What are these?" in result.text and "offline demo provider" in result.text


async def test_a_file_without_a_name_has_no_name_and_an_odd_name_stays_on_its_line():
    odd = InputFile(TEXT, b"hi", filename='a "quoted"\nname.txt')

    assert (
        attachment_line(3, InputFile(TEXT, b"hi"))
        == f"Attachment 3: text/plain, 2 bytes, sha256 {short_sha(b'hi')}."
    )
    assert attachment_line(1, odd) == (
        f'Attachment 1: text/plain, 2 bytes, sha256 {short_sha(b"hi")}, "a \\"quoted\\"\\nname.txt".'
    )


async def test_a_remote_attachment_it_was_not_given_the_bytes_of_is_named_by_its_url():
    remote = InputFile("image/*", None, url="https://example.com/cat.png")

    assert attachment_line(1, remote) == "Attachment 1: image/*, from https://example.com/cat.png."


async def test_the_historys_attachments_are_listed_too_in_order():
    history = (ChatMessage("user", "first", attachments=(PNG,)), ChatMessage("assistant", "ok"))

    result = await demo().complete(with_files("second", TEXT_FILE, history=history, model="demo"))

    assert result.text.startswith("Attachment 1: image/png, ")
    assert result.text.split("\n")[1].startswith("Attachment 2: text/plain, ")


async def test_in_json_mode_the_lines_are_the_answers_attachments_list():
    result = await demo().complete(with_files("json please", PNG, model="demo", json_output=True))

    answer = json.loads(result.text)
    assert answer["attachments"] == [attachment_line(1, PNG)]
    assert answer["echo"] == "json please"


async def test_without_attachments_the_answer_is_unchanged():
    request = ProviderRequest(model="demo", messages=(ChatMessage("user", "hello"),))

    assert demo().reply_for(request) == DemoProvider._answer(request)
    assert not demo().reply_for(request).startswith("Attachment")


async def test_the_estimated_usage_counts_the_attachments_as_the_server_estimates_them():
    plain = await demo().complete(with_files("count me", model="demo"))
    with_image = await demo().complete(with_files("count me", PNG, model="demo"))

    assert with_image.usage.input_tokens == plain.usage.input_tokens + IMAGE_TOKENS
    assert with_image.usage.estimated


async def test_it_takes_every_type_and_is_handed_the_bytes_of_remote_files():
    provider = demo()

    assert provider.attachment_types("demo") == ATTACHMENT_TYPES
    assert [provider.fetches_urls("demo", t) for t in ("image/png", "image/*", PDF, TEXT)] == [False] * 4
