"""A remote (URL) attachment in a turn whose provider needs bytes (the demo, like Gemini and
OpenAI-compatible servers): the server fetches it safely, checks it as an upload, stores it with its
URL, and the model gets exactly the fetched bytes; a URL that redirects to a private address is a
clear 4xx and nothing is stored (tests reach only loopback, through the test-only switch)."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import Attachment, Conversation, Message
from tests.attachment_fetch_servers import FetchServer
from tests.attachment_files import png_bytes, sha256

pytestmark = pytest.mark.django_db(transaction=True)

PNG = png_bytes(6, 6, (1, 2, 3))


class PngServer(FetchServer):
    """The fetch tests' server with one more path: ``/real``, a real image."""

    def route_real(self, h, path, query) -> None:
        self._headers(h, 200, {"Content-Type": "image/png", "Content-Length": str(len(PNG))})
        h.wfile.write(PNG)


@pytest.fixture
def served(settings):
    settings.LLM_PROVIDER = "demo"
    settings.ATTACHMENT_FETCH_ALLOW_LOOPBACK = True  # test-only: never read from the environment
    with PngServer() as server:
        yield server


def chat(asgi_server, url: str) -> httpx.Response:
    body = {
        "model": "demo",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    }
    return httpx.post(f"{asgi_server.url}/v1/chat/completions", json=body, timeout=30)


def test_a_remote_image_is_fetched_checked_stored_and_sent_as_its_bytes(asgi_server, served):
    url = f"{served.url}/real"
    reply = chat(asgi_server, url)
    assert reply.status_code == 200, reply.text
    assert sha256(PNG)[:16] in reply.json()["choices"][0]["message"]["content"]
    stored = Attachment.objects.get()
    assert (stored.sha256, stored.source_url, stored.media_type) == (sha256(PNG), url, "image/png")
    assert stored.message_id is not None
    assert served.requests == ["/real"]


def test_a_url_that_redirects_to_a_private_address_is_refused_and_nothing_is_stored(asgi_server, served):
    reply = chat(asgi_server, f"{served.url}/redirect?to=http://10.0.0.1/cat.png")
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "url_not_allowed"
    assert "10.0.0.1" in error["message"]
    assert served.requests == ["/redirect?to=http://10.0.0.1/cat.png"]  # the private address: never
    assert (Attachment.objects.count(), Message.objects.count(), Conversation.objects.count()) == (0, 0, 0)


def test_a_fetched_file_that_is_not_an_allowed_type_is_refused(asgi_server, served):
    reply = chat(asgi_server, f"{served.url}/file")  # PNG-looking bytes that are no image
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_attachment"
    assert Attachment.objects.count() == 0
