"""Answers stream token by token, can be stopped, survive a reload, and fall back to SSE."""

import re
import time

import pytest

from conversations.models import Message
from tests.e2e.conftest import open_chat
from tests.e2e.pages import answer_text, expect, send, wait_for_status, wait_for_streamed_text

pytestmark = pytest.mark.django_db(transaction=True)

DEMO_OPENING = "This is the offline demo provider"
DEMO_CLOSING = "then restart the server."


def stored_answer(timeout: float = 5.0) -> Message:
    """The assistant message once its final state is saved."""
    deadline = time.monotonic() + timeout
    while True:
        answer = Message.objects.filter(role="assistant").order_by("-created_at").first()
        if (answer is not None and answer.status != "streaming") or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_tokens_appear_before_the_answer_completes(demo, chat):
    send(chat, "Hello from the browser")
    partial = wait_for_streamed_text(chat, minimum=10)
    assert partial.startswith("This is")
    assert DEMO_CLOSING not in partial
    expect(chat.locator("#stop")).to_be_visible()
    answer = wait_for_status(chat, "complete")
    final = answer_text(chat)
    assert final.startswith(DEMO_OPENING) and final.rstrip().endswith(DEMO_CLOSING)
    assert len(final) > len(partial)
    expect(chat.locator("#stop")).to_be_hidden()
    assert "demo" in answer.locator(".msg-meta").inner_text()
    assert stored_answer().status == "complete"


def test_stop_keeps_the_partial_answer_as_interrupted(demo, chat):
    send(chat, "Tell me a long story")
    wait_for_streamed_text(chat, minimum=20)
    chat.click("#stop")
    answer = wait_for_status(chat, "interrupted")
    assert "Stopped" in answer.locator(".msg-error").inner_text()
    stored = stored_answer()
    assert (stored.status, stored.error_code) == ("interrupted", "stopped")
    assert stored.content.startswith("This is") and DEMO_CLOSING not in stored.content
    expect(chat.locator("#stop")).to_be_hidden()


def test_reloading_mid_answer_resumes_the_whole_answer(demo, chat):
    send(chat, "Survive a reload")
    wait_for_streamed_text(chat, minimum=20)
    chat.reload()
    chat.wait_for_selector("body[data-ready=true]")
    wait_for_status(chat, "streaming")  # followed live again, not read back at the end
    wait_for_status(chat, "complete")
    final = answer_text(chat)
    assert final.startswith(DEMO_OPENING) and final.rstrip().endswith(DEMO_CLOSING)
    assert final.count(DEMO_OPENING) == 1  # no event applied twice
    assert chat.locator("#messages .msg-user").inner_text() == "Survive a reload"
    stored = stored_answer()
    assert stored.status == "complete"
    assert "".join(stored.content.split()).startswith("".join(final.split())[:40])


def test_answers_stream_over_sse_when_the_socket_cannot_connect(demo, new_page, user, asgi_server):
    page = new_page
    demo.DEMO_DELAY = 0.01
    page.route_web_socket(re.compile(r"/ws/chat/"), lambda ws: ws.close(code=1011))
    open_chat(page, user, asgi_server.url)
    send(page, "No sockets here")
    wait_for_status(page, "complete")
    assert answer_text(page).startswith(DEMO_OPENING)
    assert page.locator("#conn-state").inner_text() == "HTTP streaming"
    assert stored_answer().status == "complete"


def test_stop_over_http_when_streaming_over_sse(demo, new_page, user, asgi_server):
    page = new_page
    page.route_web_socket(re.compile(r"/ws/chat/"), lambda ws: ws.close(code=1011))
    open_chat(page, user, asgi_server.url)
    send(page, "Stop me over HTTP")
    wait_for_streamed_text(page, minimum=20)
    page.click("#stop")
    wait_for_status(page, "interrupted")
    stored = stored_answer()
    assert (stored.status, stored.error_code) == ("interrupted", "stopped")


def test_another_tab_of_the_chat_sees_the_answer_stream(demo, chat, new_page, user, asgi_server):
    demo.DEMO_DELAY = 0
    send(chat, "First message")  # creates the chat, so the other tab can open it
    wait_for_status(chat, "complete")
    other = new_page
    open_chat(other, user, asgi_server.url, path=chat.url)
    other.wait_for_selector("#conn-state >> text=Live")
    demo.DEMO_DELAY = 0.03
    send(chat, "Hello, both tabs")
    wait_for_status(other, "streaming")
    wait_for_status(chat, "complete")
    expect(other.locator("#messages .msg-assistant").last).to_have_attribute("data-status", "complete")
    assert answer_text(other) == answer_text(chat)
    expect(other.locator("#messages .msg-user")).to_have_text(["First message", "Hello, both tabs"])
