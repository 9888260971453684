"""The Gemini adapter: request shape, API version, blocked content and Google-style errors.

Blocked content and a rejected key cannot be produced by the fake upstream, so a tiny canned HTTP
server replays the exact bodies the Gemini API sends for them (still the real SDK over real HTTP).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from providers.base import AuthenticationFailed, ChatMessage, ContentBlocked, RateLimited
from tests.providers.conftest import GEMINI_KEY, ask, collect

HISTORY = (ChatMessage("user", "first question"), ChatMessage("assistant", "first answer"))


def _sse(*events: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


class CannedGemini:
    """Answers every POST with ``status``, ``body`` and ``headers``; set them before the request."""

    def __init__(self) -> None:
        self.status, self.body, self.headers = 200, b"", {"content-type": "text/event-stream"}
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(canned.status)
                length = str(len(canned.body))
                for name, value in {
                    **canned.headers,
                    "content-length": length,
                    "connection": "close",
                }.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(canned.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(
        self, status: int, body: bytes, content_type: str = "text/event-stream", **headers: str
    ) -> None:
        self.status, self.body, self.headers = status, body, {"content-type": content_type, **headers}


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedGemini]:
    server = CannedGemini()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


async def test_gemini_sends_system_instruction_and_maps_assistant_to_model_role(make_provider, fake_upstream):
    await make_provider("gemini").complete(ask("second question", history=HISTORY, system="Be terse."))

    body = fake_upstream.last_request(":streamGenerateContent").json
    assert body["systemInstruction"]["parts"] == [{"text": "Be terse."}]
    assert [(c["role"], c["parts"]) for c in body["contents"]] == [
        ("user", [{"text": "first question"}]),
        ("model", [{"text": "first answer"}]),
        ("user", [{"text": "second question"}]),
    ]


async def test_gemini_forwards_temperature_and_max_output_tokens(make_provider, fake_upstream):
    await make_provider("gemini").complete(ask("hi", temperature=0.4, max_tokens=30))

    config = fake_upstream.last_request(":streamGenerateContent").json["generationConfig"]
    assert (config["temperature"], config["maxOutputTokens"]) == (0.4, 30)


async def test_gemini_json_mode_sets_response_mime_type_and_schema(make_provider, fake_upstream):
    provider = make_provider("gemini")
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}

    await provider.complete(ask("hi", json_output=True))
    plain = fake_upstream.last_request(":streamGenerateContent").json["generationConfig"]
    await provider.complete(ask("hi", json_schema=schema))
    with_schema = fake_upstream.last_request(":streamGenerateContent").json["generationConfig"]

    assert plain["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in plain
    assert with_schema["responseMimeType"] == "application/json"
    assert with_schema["responseJsonSchema"] == schema


async def test_gemini_calls_v1beta_by_default_with_the_key_header(make_provider, fake_upstream):
    await make_provider("gemini").complete(ask("hi", model="gemini-2.5-pro"))

    request = fake_upstream.last_request(":streamGenerateContent")
    assert request.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert request.query == {"alt": "sse"}
    assert request.headers["x-goog-api-key"] == GEMINI_KEY


async def test_gemini_api_version_is_configurable(make_provider, fake_upstream):
    await make_provider("gemini", api_version="v1").complete(ask("hi"))

    assert fake_upstream.last_request(":streamGenerateContent").path.startswith("/v1/models/")


async def test_gemini_safety_finish_raises_content_blocked_after_the_partial_text(make_provider, canned):
    canned.reply(
        200,
        _sse(
            {
                "candidates": [{"content": {"parts": [{"text": "Sure, "}], "role": "model"}}],
                "responseId": "r1",
            },
            {
                "candidates": [{"content": {"parts": [], "role": "model"}, "finishReason": "SAFETY"}],
                "responseId": "r1",
            },
        ),
    )
    received: list[str] = []

    with pytest.raises(ContentBlocked):
        async for chunk in make_provider("gemini", base=canned.url).stream(ask("something risky")):
            received.append(chunk.text)

    assert received == ["Sure, "]


async def test_gemini_blocked_prompt_raises_content_blocked(make_provider, canned):
    canned.reply(200, _sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "r2"}))

    with pytest.raises(ContentBlocked, match="PROHIBITED_CONTENT"):
        await collect(make_provider("gemini", base=canned.url), ask("something forbidden"))


async def test_gemini_recitation_finish_is_reported_as_content_filter(make_provider, canned):
    canned.reply(
        200,
        _sse(
            {
                "candidates": [
                    {"content": {"parts": [{"text": "To be"}], "role": "model"}, "finishReason": "RECITATION"}
                ]
            }
        ),
    )

    result = await make_provider("gemini", base=canned.url).complete(ask("quote it"))

    assert (result.text, result.finish_reason) == ("To be", "content_filter")


async def test_gemini_rejected_api_key_maps_to_authentication_failed(make_provider, canned):
    error = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    canned.reply(400, json.dumps(error).encode(), "application/json")

    with pytest.raises(AuthenticationFailed, match="GEMINI_API_KEY"):
        await make_provider("gemini", base=canned.url).complete(ask("hi"))


async def test_gemini_reads_retry_delay_from_retry_info_without_a_header(make_provider, canned):
    error = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
        }
    }
    canned.reply(429, json.dumps(error).encode(), "application/json")

    with pytest.raises(RateLimited) as caught:
        await make_provider("gemini", base=canned.url).complete(ask("hi"))

    assert caught.value.retry_after == 17.0
