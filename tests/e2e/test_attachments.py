"""Files on the chat page (static/chat/attachments.js): attached by paste, by drop and by the button,
each uploaded at once (a thumbnail or a chip, a progress bar, the server's message when it refuses
one), sent with the message (the demo provider names what it received: type, size, the first 16
hex digits of the bytes' sha256, the name), and shown in the conversation live and after a reload
(images loaded from their download URL)."""

from __future__ import annotations

import pytest

from conversations.models import Attachment, Message
from tests.attachment_files import pdf_bytes, png_bytes, sha256
from tests.e2e.conftest import open_chat
from tests.e2e.pages import ANSWER, answer_text, expect, send, wait_for_status
from tests.e2e.test_content_security_policy import Watch

pytestmark = pytest.mark.django_db(transaction=True)

TRAY = "#composer-files"
ITEM = f"{TRAY} .file-item"
USER = "#messages .msg-user"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'

# Builds Files from bytes in the page and hands them over as a user would: a paste (a ClipboardEvent
# carrying a DataTransfer) on the selector's element, or a drag (enter, over, drop) onto it.
HAND_OVER = """([how, selector, files]) => {
    const transfer = new DataTransfer();
    for (const f of files) transfer.items.add(new File([new Uint8Array(f.bytes)], f.name, {type: f.type}));
    const target = document.querySelector(selector);
    if (how === "paste") {
        target.focus();
        const event = new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true});
        target.dispatchEvent(event);
        return event.defaultPrevented;
    }
    const drag = (type) => {
        const event = new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true});
        target.dispatchEvent(event);
        return event.defaultPrevented;
    };
    const accepted = [drag("dragenter"), drag("dragover")];
    const highlighted = document.querySelector("main.chat").classList.contains("drop-target");
    accepted.push(drag("drop"));
    return {accepted, highlighted, after: document.querySelector("main.chat").classList.contains("drop-target")};
}"""

LOADED = """(img) => img.complete && img.naturalWidth > 0"""


def as_file(name: str, data: bytes, media_type: str) -> dict:
    return {"name": name, "type": media_type, "bytes": list(data)}


def demo_line(number: int, name: str, data: bytes, media_type: str) -> str:
    """What the demo provider says it received (providers/demo.py attachment_line)."""
    return f'Attachment {number}: {media_type}, {len(data)} bytes, sha256 {sha256(data)[:16]}, "{name}".'


def tray_item(page, name: str):
    return page.locator(f'{ITEM}[data-name="{name}"]')


def wait_uploaded(page, name: str):
    """The item's upload finished: state done, its progress bar full."""
    item = tray_item(page, name)
    expect(item).to_have_attribute("data-state", "done")
    progress = item.locator("progress.file-progress")
    expect(progress).to_be_visible()
    assert progress.evaluate("(p) => [p.value, p.max]") == [1, 1]
    return item


def check_thumbnail_before_sending(page, name: str) -> None:
    """An image waiting to be sent shows as a thumbnail from an object URL (the CSP's img-src blob:)."""
    thumb = tray_item(page, name).locator("img.file-thumb")
    expect(thumb).to_be_visible()
    assert thumb.get_attribute("src").startswith("blob:")
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate(LOADED), "the thumbnail did not load from its object URL"
    assert page.locator(USER).count() == 0  # nothing sent yet


def sent_image(page, name: str):
    """The user message's image: a thumbnail linking to its download URL, loaded from it."""
    img = page.locator(f'{USER} .msg-files img.file-thumb[alt="{name}"]')
    expect(img).to_be_visible()
    row = Attachment.objects.get(filename=name)
    url = f"/api/attachments/{row.id}/content"
    assert img.get_attribute("src") == url
    assert img.locator("xpath=..").get_attribute("href") == url
    expect(img).to_have_js_property("complete", True)
    assert img.evaluate(LOADED), "the image did not load from its download URL"
    return row


def test_an_image_pasted_is_uploaded_sent_and_shown_after_a_reload(demo, new_page, user, asgi_server):
    page = new_page
    watch = Watch(page, asgi_server.url)  # the thumbnails (blob: and 'self') stay within the page's CSP
    open_chat(page, user, asgi_server.url)
    image = png_bytes(40, 30)
    screenshot = [as_file("screenshot.png", image, "image/png")]
    assert not page.evaluate(HAND_OVER, ["paste", "#session-search", screenshot])  # another field's paste
    expect(page.locator(TRAY)).to_be_hidden()
    prevented = page.evaluate(HAND_OVER, ["paste", "#composer-input", screenshot])
    assert prevented  # an image alone on the clipboard is attached, not pasted as text
    check_thumbnail_before_sending(page, "screenshot.png")
    wait_uploaded(page, "screenshot.png")
    assert page.input_value("#composer-input") == ""

    send(page, "What is in this picture?")
    expect(page.locator(TRAY)).to_be_hidden()  # taken by the message
    row = sent_image(page, "screenshot.png")  # live, in the message just sent
    assert page.locator(f"{USER} .msg-body").inner_text() == "What is in this picture?"
    wait_for_status(page, "complete")
    assert demo_line(1, "screenshot.png", image, "image/png") in answer_text(page)
    row.refresh_from_db()
    assert (row.sha256, row.size, row.media_type) == (sha256(image), len(image), "image/png")
    message = Message.objects.get(role="user")
    assert row.message_id == message.pk

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    wait_for_status(page, "complete")
    sent_image(page, "screenshot.png")  # from the history's file part
    assert page.locator(f"{USER} .msg-body").inner_text() == "What is in this picture?"
    watch.check()


def test_an_image_dropped_on_the_conversation_is_sent_without_text(demo, chat):
    image = png_bytes(16, 16, (20, 160, 60))
    dropped = [as_file("dropped.png", image, "image/png")]
    # the sidebar is not a drop target: the file is neither attached nor opened in place of the page
    drag = chat.evaluate(HAND_OVER, ["drop", "#session-list", dropped])
    assert drag == {"accepted": [False, True, True], "highlighted": False, "after": False}
    expect(chat.locator(TRAY)).to_be_hidden()
    drag = chat.evaluate(HAND_OVER, ["drop", "#messages", dropped])
    assert drag == {"accepted": [True, True, True], "highlighted": True, "after": False}
    check_thumbnail_before_sending(chat, "dropped.png")
    wait_uploaded(chat, "dropped.png")

    chat.click("#send")  # a message may be files only
    sent_image(chat, "dropped.png")
    assert chat.locator(f"{USER} .msg-body").count() == 0  # no empty text bubble
    wait_for_status(chat, "complete")
    assert demo_line(1, "dropped.png", image, "image/png") in answer_text(chat)
    assert Message.objects.get(role="user").content == ""
    expect(chat.locator("#chat-title")).to_have_text("dropped.png")  # the new chat is named for its file

    chat.reload()
    wait_for_status(chat, "complete")
    sent_image(chat, "dropped.png")


def test_files_chosen_with_the_button_an_image_and_a_pdf(demo, chat):
    image, pdf = png_bytes(12, 9), pdf_bytes("Quarterly report")
    chat.set_input_files(
        "#attach-input",
        files=[
            {"name": "chart.png", "mimeType": "image/png", "buffer": image},
            {"name": "report.pdf", "mimeType": "application/pdf", "buffer": pdf},
        ],
    )
    check_thumbnail_before_sending(chat, "chart.png")
    chip = tray_item(chat, "report.pdf")
    expect(chip.locator(".file-icon")).to_have_text("PDF")  # not an image: a chip with name and size
    assert chip.locator("img").count() == 0
    assert chip.locator(".file-name").inner_text() == "report.pdf"
    assert chip.locator(".file-size").inner_text() == f"{len(pdf)} B"
    wait_uploaded(chat, "chart.png")
    wait_uploaded(chat, "report.pdf")

    send(chat, "Two files")
    wait_for_status(chat, "complete")
    text = answer_text(chat)
    assert demo_line(1, "chart.png", image, "image/png") in text
    assert demo_line(2, "report.pdf", pdf, "application/pdf") in text

    chat.reload()
    wait_for_status(chat, "complete")
    sent_image(chat, "chart.png")
    link = chat.locator(f"{USER} .msg-files a.file-chip")
    expect(link).to_have_count(1)
    row = Attachment.objects.get(filename="report.pdf")
    assert link.get_attribute("href") == f"/api/attachments/{row.id}/content"
    assert link.get_attribute("download") == "report.pdf"
    assert link.locator(".file-name").inner_text() == "report.pdf"
    assert link.locator(".file-size").inner_text() == f"{len(pdf)} B"
    with chat.expect_download() as download:  # the link downloads the file's bytes
        link.click()
    path = download.value.path()
    with open(path, "rb") as handle:
        assert handle.read() == pdf


def test_refused_files_show_the_servers_message_and_are_not_sent(demo, chat):
    image = png_bytes(8, 8)
    # pasted with the focus on no field (the conversation): still the composer's
    chat.evaluate(HAND_OVER, ["paste", "#messages", [as_file("drawing.svg", SVG, "image/svg+xml")]])
    chat.set_input_files(
        "#attach-input",
        files=[
            {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": image},  # a PNG named .pdf
            {"name": "fine.png", "mimeType": "image/png", "buffer": image},
        ],
    )
    svg = tray_item(chat, "drawing.svg")
    expect(svg).to_have_attribute("data-state", "error")
    expect(svg.locator(".file-error")).to_have_text(
        "Not attached: file: its bytes are markup (HTML or SVG); attachments must be PNG, JPEG, WebP or GIF "
        "images, PDF, or plain text (UTF-8)."
    )
    assert svg.locator("img").count() == 0  # an SVG is never shown as a picture, even locally
    mismatch = tray_item(chat, "invoice.pdf")
    expect(mismatch).to_have_attribute("data-state", "error")
    expect(mismatch.locator(".file-error")).to_contain_text(
        "its bytes are image/png, but its name or type says application/pdf"
    )
    expect(mismatch.locator(".file-error")).to_have_attribute("role", "alert")
    wait_uploaded(chat, "fine.png")

    send(chat, "Only the good one")
    wait_for_status(chat, "complete")
    text = answer_text(chat)
    assert demo_line(1, "fine.png", image, "image/png") in text
    assert "Attachment 2" not in text
    assert list(Attachment.objects.values_list("filename", flat=True)) == ["fine.png"]  # nothing else stored
    # the refused files stay in the tray, with their messages, until removed
    expect(chat.locator(ITEM)).to_have_count(2)
    expect(chat.locator(f"{ITEM}[data-state=error]")).to_have_count(2)
    svg.locator(".file-remove").click()
    mismatch.locator(".file-remove").click()
    expect(chat.locator(TRAY)).to_be_hidden()


def test_send_waits_for_uploads_and_a_removed_upload_is_deleted(demo, chat):
    """While a file uploads, Send is disabled and says so (Enter sends nothing); an uploaded file
    removed before sending is deleted on the server."""
    held = []
    chat.route("**/api/attachments", lambda route: held.append(route))
    try:
        chat.fill("#composer-input", "Not yet")
        chat.evaluate(
            HAND_OVER, ["paste", "#composer-input", [as_file("slow.png", png_bytes(), "image/png")]]
        )
        item = tray_item(chat, "slow.png")
        expect(item).to_have_attribute("data-state", "uploading")
        expect(chat.locator("#send")).to_be_disabled()
        expect(chat.locator("#send")).to_have_text("Uploading…")
        chat.press("#composer-input", "Enter")
        assert chat.locator(USER).count() == 0
        assert item.locator("progress").evaluate("(p) => p.value") < 1
        chat.wait_for_function("() => true")  # lets the route handler run
        assert len(held) == 1
        held[0].continue_()
    finally:
        chat.unroute("**/api/attachments")
    wait_uploaded(chat, "slow.png")
    expect(chat.locator("#send")).to_be_enabled()
    expect(chat.locator("#send")).to_have_text("Send")
    assert Attachment.objects.count() == 1

    item.locator(".file-remove").click()
    expect(chat.locator(TRAY)).to_be_hidden()
    chat.wait_for_function(
        "() => fetch('/api/attachments/"
        + str(Attachment.objects.get().id)
        + "').then((r) => r.status === 404)"
    )
    assert Attachment.objects.count() == 0


def test_a_refused_message_gives_its_files_back(demo, chat):
    """The server refuses the message (more files than ATTACHMENT_MAX_FILES): the banner says why,
    and the files go back to the tray, still uploaded, to be sent again."""
    demo.ATTACHMENT_MAX_FILES = 1
    first, second = png_bytes(5, 5), png_bytes(6, 6)
    chat.evaluate(
        HAND_OVER,
        [
            "drop",
            "#composer",
            [as_file("one.png", first, "image/png"), as_file("two.png", second, "image/png")],
        ],
    )
    wait_uploaded(chat, "one.png")
    wait_uploaded(chat, "two.png")
    send(chat, "Both please")
    expect(chat.locator("#banner-text")).to_contain_text(
        "at most 1 go with one message (ATTACHMENT_MAX_FILES)"
    )
    expect(chat.locator(f"{USER}.msg-not-sent")).to_have_count(1)
    expect(chat.locator(f"{ITEM}[data-state=done]")).to_have_count(2)
    assert chat.input_value("#composer-input") == "Both please"

    tray_item(chat, "two.png").locator(".file-remove").click()
    chat.press("#composer-input", "Enter")
    wait_for_status(chat, "complete")
    assert demo_line(1, "one.png", first, "image/png") in answer_text(chat)
    assert chat.locator(ANSWER).count() == 1
