"""A session's earlier files and a model that cannot take them: a note in the text, not a failure."""

from __future__ import annotations

from conversations.attachments.turn_files import history_for
from providers.base import TEXT, ChatMessage, InputFile, Provider


class TextOnly(Provider):
    """A provider whose models take only text files (as Z.AI's non-vision models do)."""

    kind = "text-only"

    def attachment_types(self, model: str) -> frozenset[str]:
        return frozenset({TEXT})


def test_an_earlier_image_the_model_cannot_take_becomes_a_note_naming_it():
    provider = TextOnly(name="plain", default_model="m1")
    image = InputFile("image/png", filename="cat.png", size=10, ref="a")
    notes = InputFile(TEXT, filename="notes.txt", size=5, ref="b")
    history = (
        ChatMessage("user", "look at these", attachments=(image, notes)),
        ChatMessage("assistant", "ok"),
    )
    sent = history_for(provider, "m1", history)
    assert sent[0].attachments == (notes,)
    assert sent[0].content == "look at these\n[attachment 'cat.png' (image/png) not shown: m1 cannot take it]"
    assert sent[1] == history[1]


def test_a_history_the_model_can_take_is_sent_as_it_is():
    provider = TextOnly(name="plain", default_model="m1")
    history = (ChatMessage("user", "", attachments=(InputFile(TEXT, filename="a.txt", ref="a"),)),)
    assert history_for(provider, "m1", history) == history


def test_a_stored_file_that_is_gone_becomes_a_note_and_the_session_goes_on():
    from conversations.attachments.turn_files import without_missing

    kept = InputFile("image/png", filename="kept.png", ref="k")
    gone = InputFile("image/png", filename="gone.png", ref="g")
    history = (ChatMessage("user", "two pictures", attachments=(kept, gone)),)
    sent = without_missing(history, {"k": b"png bytes"})
    assert sent[0].attachments == (kept,)
    assert sent[0].content == "two pictures\n[attachment 'gone.png' was deleted]"


def test_a_claim_of_any_image_accepts_each_image_type_and_nothing_else():
    import io

    import pytest

    from conversations.attachments.checks import AttachmentRefused, examine
    from tests.attachment_files import pdf_bytes, png_bytes

    png = png_bytes()
    assert examine(io.BytesIO(png), size=len(png), declared="image/*").media_type == "image/png"
    pdf = pdf_bytes()
    with pytest.raises(AttachmentRefused) as refused:
        examine(io.BytesIO(pdf), size=len(pdf), declared="image/*")
    assert refused.value.code == "attachment_type_mismatch"
