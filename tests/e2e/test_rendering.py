"""How answers are shown: Markdown without script injection, JSON pretty-printed, artifacts, errors."""

import json
import re
from pathlib import Path

import pytest

from conversations.models import Artifact
from tests.e2e.pages import answer_text, expect, last_answer, send, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src="x" onerror="window.__pwned=2">'


def test_model_output_with_a_script_tag_is_shown_as_text(openai_upstream, chat):
    send(chat, f"{SCRIPT} and {IMG} [[chunks=8]]")  # the fake upstream echoes it back
    wait_for_status(chat, "complete")
    assert chat.evaluate("window.__pwned") is None
    text = answer_text(chat)
    assert SCRIPT in text and IMG in text
    assert chat.locator("#messages script, #messages img").count() == 0
    assert chat.locator(".msg-user").inner_text().startswith(SCRIPT)


def test_markdown_is_rendered(openai_upstream, chat):
    send(chat, "**bold** and `code` and [a link](https://example.com) and [bad](javascript:alert(1))")
    answer = wait_for_status(chat, "complete")
    assert answer.locator(".msg-body strong").inner_text() == "bold"
    assert answer.locator(".msg-body :not(pre) > code").inner_text() == "code"
    link = answer.locator(".msg-body a", has_text="a link")
    assert link.get_attribute("href") == "https://example.com"
    assert "noopener" in link.get_attribute("rel")
    assert not (answer.locator(".msg-body a", has_text="bad").get_attribute("href") or "").startswith(
        "javascript"
    )


def test_a_json_mode_reply_is_pretty_printed(demo, chat):
    demo.DEMO_DELAY = 0
    send(chat, "Reply in JSON", json_mode=True)
    answer = wait_for_status(chat, "complete")
    pretty = answer.locator("pre.json").inner_text()
    assert '\n  "provider": "demo"' in pretty
    assert json.loads(pretty)["echo"] == "Reply in JSON"


def test_a_code_artifact_opens_in_the_side_panel_with_copy_and_download(demo, chat, tmp_path):
    demo.DEMO_DELAY = 0
    chat.context.grant_permissions(["clipboard-read", "clipboard-write"])
    send(chat, "Show me some code")
    answer = wait_for_status(chat, "complete")
    answer.locator(".artifact-chip").click()
    panel = chat.locator("#artifact-panel")
    expect(panel).to_be_visible()
    assert panel.locator("#artifact-language").inner_text() == "python"
    assert panel.locator("#artifact-name").inner_text().endswith(".py")
    stored = Artifact.objects.get()
    assert panel.locator("#artifact-code").inner_text().strip() == stored.content.strip()
    panel.locator("#artifact-copy").click()
    expect(panel.locator("#artifact-status")).to_contain_text("Copied")
    assert chat.evaluate("navigator.clipboard.readText()") == stored.content
    with chat.expect_download() as download:
        panel.locator("#artifact-download").click()
    saved = tmp_path / "artifact"
    download.value.save_as(saved)
    assert Path(saved).read_text() == stored.content
    panel.locator("#artifact-close").click()
    expect(panel).to_be_hidden()
    last_answer(chat).locator(".codeblock .open-code").click()  # the code block opens it too
    expect(panel).to_be_visible()


def test_a_stored_artifact_downloads_from_the_raw_endpoint(demo, chat):
    demo.DEMO_DELAY = 0
    send(chat, "Code, then reload")
    wait_for_status(chat, "complete")
    chat.reload()
    chat.wait_for_selector("body[data-ready=true]")
    wait_for_status(chat, "complete").locator(".artifact-chip").click()
    raw = re.compile(rf"/api/sessions/[^/]+/artifacts/{Artifact.objects.get().pk}/raw$")
    expect(chat.locator("#artifact-download")).to_have_attribute("href", raw)
    expect(chat.locator("#artifact-code")).to_contain_text("def greet")
    with chat.expect_download() as download:
        chat.click("#artifact-download")
    assert "def greet" in Path(download.value.path()).read_text()


def test_a_rate_limit_is_explained_with_what_to_do(openai_upstream, chat):
    send(chat, "hello [[fault=429 retry_after=3]]")
    answer = wait_for_status(chat, "failed")
    message = answer.locator(".msg-error").inner_text()
    assert "rate-limiting" in message and "Wait 3 seconds" in message


def test_an_unreachable_provider_is_explained(openai_upstream, chat, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    send(chat, "hello")
    answer = wait_for_status(chat, "failed")
    assert "unreachable" in answer.locator(".msg-error").inner_text()
