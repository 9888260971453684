"""Images and files through every protocol that starts a turn (docs/attachments.md): OpenAI Chat
Completions' ``image_url`` and ``file`` parts, the Responses API's ``input_image`` and
``input_file``, the AI SDK's ``file`` UI parts — each read into the turn's files, checked by the turn
service, stored with the user's message, sent to the provider byte for byte, and shown back by the
protocol's history. Driven by the real clients over real HTTP (the official ``openai`` SDK, the
``ai`` package's own Chat and transports) against the fake upstream, which answers one line per
attachment it received with the decoded bytes' size and sha256; the codecs' readers are checked
directly for the shapes no client would send."""

from __future__ import annotations

import asyncio
import base64
import uuid

import httpx
import pytest
from openai import APIStatusError

from accounts.callers import Caller
from accounts.keys import api_key_create
from conversations.codecs.ai_sdk import UIMessageStreamCodec
from conversations.codecs.attachments import PartError, read_data_url, read_remote_url
from conversations.codecs.base import Inbound
from conversations.codecs.messages import read_messages
from conversations.codecs.openai_chat import OpenAIChatCodec
from conversations.codecs.openai_response_input import read_input
from conversations.codecs.openai_responses import OpenAIResponsesCodec
from conversations.edge.http_errors import HttpError
from conversations.models import Attachment, Conversation, Message
from conversations.wire.openai_response_store import input_items_list
from conversations.wire.ui_history import ui_messages
from providers.base import InputFile
from tests.attachment_files import jpeg_bytes, pdf_bytes, png_bytes, sha256
from tests.js_clients import run_js

PNG = png_bytes()
PDF = pdf_bytes()


def data_url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def line(n: int, media_type: str, data: bytes) -> str:
    """What the fake upstream says it received (tests/fake_upstream/attachments.py)."""
    return f"[attachment {n}: {media_type} {len(data)} sha256={sha256(data)}]"


def inbound(body: dict, **params: str) -> Inbound:
    return Inbound(
        headers={}, body=body, caller=Caller(owner_id=None, ip="9.9.9.9"), params=params, received_at=0.0
    )


def decode(codec, body: dict, **params: str):
    return asyncio.run(codec.decode(inbound(body, **params)))


def refusal(codec, body: dict, **params: str) -> HttpError:
    with pytest.raises(HttpError) as refused:
        decode(codec, body, **params)
    return refused.value


# --- the shared readers ----------------------------------------------------------------------------
def test_a_data_url_is_read_strictly_and_its_bytes_are_exactly_the_ones_sent():
    assert read_data_url(data_url(PNG, "image/png"), "x") == ("image/png", PNG)
    assert (
        read_data_url("data:IMAGE/PNG;name=a.png;base64," + base64.b64encode(PNG).decode(), "x")[0]
        == "image/png"
    )
    assert read_data_url("data:;base64,aGk=", "x") == ("", b"hi")  # no type declared: the bytes say
    for bad, says in [
        ("data:image/png;base64,aGk", "is not valid base64"),  # unpadded
        ("data:image/png;base64,aG k=", "is not valid base64"),
        ("data:image/png;base64,a-_=", "is not valid base64"),  # the URL-safe alphabet
        ("data:text/plain,hello", "must be a base64 data URL"),  # percent-encoded
        ("data:image/png;base64", "must be a base64 data URL"),
        ("https://e.x/a.png", "must be a data URL"),
    ]:
        with pytest.raises(PartError) as error:
            read_data_url(bad, "messages[0].content[1].image_url.url")
        assert str(error.value).startswith(f"messages[0].content[1].image_url.url {says}"), bad


def test_a_remote_url_must_be_https_with_a_host_and_no_credentials(settings):
    assert read_remote_url("https://example.com/cat.png?x=1", "u") == "https://example.com/cat.png?x=1"
    for bad in [
        "http://example.com/cat.png",
        "ftp://example.com/cat.png",
        "https:///cat.png",
        "https://user:pw@example.com/cat.png",
        "https://example.com/a b.png",
        "https://example.com:port/",
        "file:///etc/passwd",
        "https://e.x/" + "a" * 5000,
    ]:
        with pytest.raises(PartError) as error:
            read_remote_url(bad, "url")
        assert str(error.value).startswith("url must"), bad
    settings.ATTACHMENT_FETCH_ALLOW_LOOPBACK = True  # the test-only switch: plain http for 127.0.0.1
    assert read_remote_url("http://127.0.0.1:9/a.png", "u") == "http://127.0.0.1:9/a.png"


# --- Chat Completions: the codec -------------------------------------------------------------------
def image_part(url: str, **extra) -> dict:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def test_the_chat_codec_reads_the_last_user_messages_files_and_keeps_earlier_ones_in_the_transcript():
    upload = str(uuid.uuid4())
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "first"}, image_part("https://e.x/a.png")]},
            {"role": "assistant", "content": "a cat"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and "},
                    image_part(data_url(PNG, "image/png"), detail="low"),
                    {"type": "text", "text": "these?"},
                    {
                        "type": "file",
                        "file": {"filename": "a.pdf", "file_data": data_url(PDF, "application/pdf")},
                    },
                    {"type": "file", "file": {"file_id": upload.upper()}},
                ],
            },
        ]
    }
    request = decode(OpenAIChatCodec(), body)
    assert request.content == "and these?"  # the text parts, joined
    assert request.attachments == (
        InputFile("image/png", data=PNG, size=len(PNG), detail="low"),
        InputFile("application/pdf", data=PDF, filename="a.pdf", size=len(PDF)),
        InputFile("", ref=upload),
    )
    first, answer, new = request.context
    assert first.attachments == (InputFile("image/*", url="https://e.x/a.png"),)
    assert (answer.attachments, new.attachments, new.content) == ((), (), "and these?")  # given apart


def test_a_message_of_files_alone_is_a_message():
    request = decode(
        OpenAIChatCodec(),
        {"messages": [{"role": "user", "content": [image_part(data_url(PNG, "image/png"))]}]},
    )
    assert (request.content, len(request.attachments)) == ("", 1)


@pytest.mark.parametrize(
    ("part", "code", "says"),
    [
        (
            image_part("data:image/png;base64,@@@@"),
            "invalid_attachment",
            "[1].image_url.url is not valid base64",
        ),
        (image_part("http://e.x/a.png"), "url_not_allowed", "[1].image_url.url must be an https:// URL"),
        (
            image_part(data_url(PDF, "application/pdf")),
            "invalid_input",
            "[1].image_url.url is a data URL of application/pdf",
        ),
        (
            image_part("https://e.x/a.png", detail="huge"),
            "invalid_input",
            "[1].image_url.detail must be one of",
        ),
        (image_part("https://e.x/a.png", size=3), "invalid_input", "[1].image_url.size is not read"),
        (
            {"type": "image_url", "image_url": "https://e.x/a.png"},
            "invalid_input",
            "[1].image_url must be an object",
        ),
        (
            {"type": "file", "file": {"file_id": "file-abc123"}},
            "invalid_input",
            "[1].file.file_id must be an attachment id",
        ),
        (
            {"type": "file", "file": {"file_id": str(uuid.uuid4()), "filename": "x.pdf"}},
            "invalid_input",
            "[1].file.filename is not read with file_id",
        ),
        (
            {"type": "file", "file": {"filename": "a.pdf"}},
            "invalid_input",
            "[1].file must carry either file_data",
        ),
        (
            {"type": "file", "file": {"file_data": base64.b64encode(PDF).decode()}},
            "invalid_attachment",
            "[1].file.file_data must be a data URL",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            "attachments_not_supported",
            "[1] is input_audio: audio is not taken",
        ),
        (
            {"type": "input_image", "image_url": "https://e.x/a.png"},
            "invalid_input",
            "[1] is input_image, not a part of this API",
        ),
    ],
)
def test_a_file_part_the_chat_codec_cannot_read_is_refused_naming_it(part, code, says):
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "see"}, part]}]}
    error = refusal(OpenAIChatCodec(), body)
    assert (error.status, error.code) == (422, code)
    assert error.message.startswith(f"messages[0].content{says}"), error.message
    reply = OpenAIChatCodec().reject(error).body["error"]
    assert reply["type"] == "invalid_request_error" and reply["code"] == code


@pytest.mark.parametrize("role", ["assistant", "system", "developer"])
def test_only_a_user_message_carries_files_in_chat(role):
    messages = [
        {"role": role, "content": [{"type": "text", "text": "look"}, image_part("https://e.x/a.png")]},
        {"role": "user", "content": "and?"},
    ]
    error = refusal(OpenAIChatCodec(), {"messages": messages})
    assert (error.status, error.code) == (422, "invalid_input")
    assert "messages[0].content[1] is image_url in a" in error.message  # a system / an assistant
    assert "only a user message carries files" in error.message


def test_a_tool_result_carries_no_file_in_chat():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": [image_part("https://e.x/a.png")]},
    ]
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    error = refusal(OpenAIChatCodec(), {"messages": messages, "tools": [tool]})
    assert "messages[2].content[0] is image_url in a tool message" in error.message


def test_the_seeds_message_reader_still_refuses_files():
    parsed = read_messages([{"role": "user", "content": [image_part(data_url(PNG, "image/png"))]}])
    assert [(p.field, p.code) for p in parsed.problems] == [
        ("messages[0].content[0]", "attachments_not_supported")
    ]


# --- Responses: the codec and its input items --------------------------------------------------------
def test_the_responses_codec_reads_input_image_and_input_file():
    upload = str(uuid.uuid4())
    content = [
        {"type": "input_text", "text": "what are these?"},
        {"type": "input_image", "image_url": data_url(PNG, "image/png"), "detail": "high"},
        {"type": "input_image", "image_url": "https://e.x/cat.png", "detail": "auto"},
        {"type": "input_image", "file_id": upload, "detail": "auto"},
        {"type": "input_file", "filename": "a.pdf", "file_data": data_url(PDF, "application/pdf")},
        {"type": "input_file", "file_url": "https://e.x/paper.pdf"},
        {"type": "input_file", "file_id": upload},
    ]
    turn = decode(OpenAIResponsesCodec(), {"input": [{"role": "user", "content": content}]})
    assert turn.request.content == "what are these?" and turn.request.context is None
    assert turn.request.attachments == (
        InputFile("image/png", data=PNG, size=len(PNG), detail="high"),
        InputFile("image/*", url="https://e.x/cat.png", detail="auto"),
        InputFile("", ref=upload, detail="auto"),
        InputFile("application/pdf", data=PDF, filename="a.pdf", size=len(PDF)),
        InputFile("application/pdf", url="https://e.x/paper.pdf"),  # its type from the URL's extension
        InputFile("", ref=upload),
    )


def test_a_responses_transcript_keeps_earlier_files_and_lists_them_without_their_bytes():
    earlier = [
        {"type": "input_text", "text": "this"},
        {"type": "input_image", "image_url": data_url(PNG, "image/png"), "detail": "auto"},
        {"type": "input_image", "image_url": "https://e.x/cat.png", "detail": "low"},
    ]
    new = [{"type": "input_file", "filename": "a.pdf", "file_data": data_url(PDF, "application/pdf")}]
    parsed = read_input(
        [
            {"role": "user", "content": earlier},
            {"role": "assistant", "content": [{"type": "output_text", "text": "a cat"}]},
            {"role": "user", "content": new},
        ]
    )
    assert [len(m.attachments) for m in parsed.messages] == [2, 0, 1]
    assert parsed.items[0]["files"] == [
        {"type": "input_image", "detail": "auto", "image_url": None, "file_id": None},  # bytes not kept
        {"type": "input_image", "detail": "low", "image_url": "https://e.x/cat.png", "file_id": None},
    ]
    assert "base64" not in repr(parsed.items)
    turn = decode(
        OpenAIResponsesCodec(),
        {"input": [{"role": "user", "content": earlier}, {"role": "user", "content": new}]},
    )
    assert len(turn.request.context[0].attachments) == 2 and turn.request.context[-1].attachments == ()
    assert turn.request.attachments[0].filename == "a.pdf"


@pytest.mark.parametrize(
    ("part", "code", "says"),
    [
        (
            {"type": "input_image", "image_url": "u"},
            "url_not_allowed",
            "input[0].content[0].image_url must be an https:// URL",
        ),
        (
            {"type": "input_image", "image_url": "https://e.x/a.png", "file_id": str(uuid.uuid4())},
            "invalid_input",
            "input[0].content[0] must carry exactly one of image_url, file_id",
        ),
        (
            {"type": "input_image", "file_id": "file-abc"},
            "invalid_input",
            "input[0].content[0].file_id must be an attachment id",
        ),
        (
            {
                "type": "input_file",
                "file_data": data_url(PDF, "application/pdf"),
                "file_url": "https://e.x/a.pdf",
            },
            "invalid_input",
            "input[0].content[0] must carry exactly one of file_data, file_url, file_id",
        ),
        (
            {"type": "input_file", "file_url": "http://e.x/a.pdf"},
            "url_not_allowed",
            "input[0].content[0].file_url must be an https:// URL",
        ),
        (
            {"type": "input_file", "file_data": "JVBERi0="},
            "invalid_attachment",
            "input[0].content[0].file_data must be a data URL",
        ),
        (
            {"type": "input_file", "file_id": str(uuid.uuid4()), "filename": "a.pdf"},
            "invalid_input",
            "input[0].content[0].filename is not read with file_id",
        ),
        (
            {"type": "input_image", "image_url": "https://e.x/a.png", "purpose": "x"},
            "invalid_input",
            "input[0].content[0].purpose is not read",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA"}},
            "attachments_not_supported",
            "input[0].content[0] is input_audio",
        ),
    ],
)
def test_a_file_part_the_responses_codec_cannot_read_is_refused_naming_it(part, code, says):
    error = refusal(OpenAIResponsesCodec(), {"input": [{"role": "user", "content": [part]}]})
    assert (error.status, error.code, error.details["field"]) == (422, code, "input")
    assert error.message.startswith(says), error.message


def test_only_a_user_message_carries_files_in_responses():
    image = {"type": "input_image", "image_url": "https://e.x/a.png", "detail": "auto"}
    for role in ("assistant", "system", "developer"):
        error = refusal(
            OpenAIResponsesCodec(),
            {"input": [{"role": role, "content": [image]}, {"role": "user", "content": "x"}]},
        )
        assert error.message.startswith(
            "input[0].content[0] is input_image: an image or file goes in a user message"
        )
    output = {"type": "function_call_output", "call_id": "c1", "output": [image]}
    error = refusal(OpenAIResponsesCodec(), {"input": [output], "previous_response_id": "resp_x"})
    assert (error.code, error.message.split(":")[0]) == (
        "attachments_not_supported",
        "input[0].output[0] is input_image",
    )


class Stored:
    """A stored response as the input items list reads it (conversations.turns.responses)."""

    def __init__(self, options: dict, user_parts: list, user_content: str = "look") -> None:
        self.options, self.user_parts, self.user_content = options, user_parts, user_content
        self.user_role, self.message_id, self.user_message_id = "user", str(uuid.uuid4()), str(uuid.uuid4())


def test_the_input_items_list_shows_the_new_messages_stored_files_by_id():
    image, pdf, remote = str(uuid.uuid4()), str(uuid.uuid4()), ""
    parts = [
        {"type": "text", "text": "look"},
        {
            "type": "file",
            "id": image,
            "media_type": "image/png",
            "filename": "a.png",
            "size": 3,
            "detail": "low",
        },
        {"type": "file", "id": pdf, "media_type": "application/pdf", "filename": "a.pdf", "size": 3},
        {
            "type": "file",
            "id": remote,
            "media_type": "image/*",
            "filename": "",
            "size": 0,
            "url": "https://e.x/c.png",
        },
    ]
    (item,) = input_items_list(Stored({}, parts), order="asc", limit=20, after=None)["data"]
    assert item["content"] == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "detail": "low", "image_url": None, "file_id": image},
        {"type": "input_file", "file_id": pdf, "filename": "a.pdf"},
        {"type": "input_image", "detail": "auto", "image_url": "https://e.x/c.png", "file_id": None},
    ]
    kept = {
        "input": [
            {
                "role": "user",
                "text": "old",
                "files": [{"type": "input_file", "file_url": "https://e.x/a.pdf"}],
            },
            {
                "role": "user",
                "text": "look",
                "files": [{"type": "input_image", "detail": "auto", "image_url": None, "file_id": None}],
            },
        ]
    }
    first, last = input_items_list(Stored(kept, parts), order="asc", limit=20, after=None)["data"]
    assert first["content"][1] == {"type": "input_file", "file_url": "https://e.x/a.pdf"}
    assert last["content"][1]["file_id"] == image  # the new message: as stored, by id


# --- AI SDK: the codec and its history -------------------------------------------------------------
def ui_body(*parts: dict) -> dict:
    return {"id": "c1", "messages": [{"id": "u1", "role": "user", "parts": list(parts)}]}


def test_the_ai_sdk_codec_reads_file_parts():
    stored = str(uuid.uuid4())
    turn = decode(
        UIMessageStreamCodec(),
        ui_body(
            {"type": "text", "text": "what is this?"},
            {
                "type": "file",
                "mediaType": "image/png",
                "filename": "a.png",
                "url": data_url(PNG, "image/png"),
            },
            {
                "type": "file",
                "mediaType": "image",
                "url": data_url(PNG, "image/png"),
            },  # ai 7: a top-level type
            {"type": "file", "mediaType": "image/*", "url": "https://e.x/c.png"},
            {"type": "file", "mediaType": "application/pdf", "url": "https://e.x/a.pdf"},
            {
                "type": "file",
                "mediaType": "image/png",
                "url": f"/api/attachments/{stored}/content",
            },  # the history's link
        ),
    )
    assert turn.request.content == "what is this?"
    assert turn.request.attachments == (
        InputFile("image/png", data=PNG, filename="a.png", size=len(PNG)),
        InputFile("image/png", data=PNG, size=len(PNG)),
        InputFile("image/*", url="https://e.x/c.png"),
        InputFile("application/pdf", url="https://e.x/a.pdf"),
        InputFile("", ref=stored),
    )
    only_a_file = decode(
        UIMessageStreamCodec(),
        ui_body({"type": "file", "mediaType": "application/pdf", "url": data_url(PDF, "application/pdf")}),
    )
    assert (only_a_file.request.content, len(only_a_file.request.attachments)) == ("", 1)


@pytest.mark.parametrize(
    ("part", "code", "says"),
    [
        (
            {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,%%"},
            "invalid_attachment",
            "messages[0].parts[1].url is not valid base64",
        ),
        (
            {"type": "file", "mediaType": "image/png", "url": data_url(PDF, "application/pdf")},
            "invalid_input",
            "messages[0].parts[1].url declares application/pdf but the part's media type is image/png",
        ),
        (
            {"type": "file", "url": data_url(PNG, "image/png")},
            "invalid_input",
            "messages[0].parts[1].mediaType must be",
        ),
        (
            {"type": "file", "mediaType": "image/png", "url": "blob:http://x/1"},
            "url_not_allowed",
            "messages[0].parts[1].url must be an https:// URL",
        ),
        (
            {
                "type": "file",
                "mediaType": "image/png",
                "url": "https://e.x/a.png",
                "providerReference": {"openai": "file-1"},
            },
            "unsupported_parameter",
            "messages[0].parts[1].providerReference is not read",
        ),
        (
            {
                "type": "file",
                "mediaType": "image/png",
                "url": "https://e.x/a.png",
                "providerMetadata": {"openai": {"imageDetail": "low"}},
            },
            "unsupported_parameter",
            "messages[0].parts[1].providerMetadata is not read",
        ),
        (
            {"type": "file", "mediaType": "image/png", "url": "https://e.x/a.png", "size": 3},
            "invalid_input",
            "messages[0].parts[1].size is not read",
        ),
    ],
)
def test_a_file_part_the_ai_sdk_codec_cannot_read_is_refused_naming_it(part, code, says):
    error = refusal(UIMessageStreamCodec(), ui_body({"type": "text", "text": "x"}, part))
    assert (error.status, error.code, error.details["field"]) == (422, code, "messages")
    assert error.message.startswith(says), error.message


def test_the_ui_history_shows_a_user_messages_files_with_their_download_links():
    stored = str(uuid.uuid4())
    row = {
        "id": "m1",
        "role": "user",
        "status": "complete",
        "client_message_id": "u1",
        "parts": [
            {"type": "text", "text": "look"},
            {
                "type": "file",
                "id": stored,
                "media_type": "image/png",
                "filename": "a.png",
                "size": 3,
                "download_url": f"/api/attachments/{stored}/content",
            },
            {
                "type": "file",
                "id": "",
                "media_type": "image/*",
                "filename": "",
                "size": 0,
                "url": "https://e.x/c.png",
                "download_url": "/api/attachments//content",
            },
        ],
    }
    assert ui_messages([row]) == [
        {
            "id": "u1",
            "role": "user",
            "parts": [
                {"type": "text", "text": "look"},
                {
                    "type": "file",
                    "mediaType": "image/png",
                    "filename": "a.png",
                    "url": f"/api/attachments/{stored}/content",
                },
                {"type": "file", "mediaType": "image/*", "url": "https://e.x/c.png"},
            ],
        }
    ]


# --- end to end: the official openai SDK -------------------------------------------------------------
pytestmark_db = pytest.mark.django_db(transaction=True)


def user_content(*parts: dict, text: str = "what is this?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]


def refused_by(call) -> tuple[int, dict]:
    with pytest.raises(APIStatusError) as info:
        call()
    return info.value.status_code, info.value.body


@pytestmark_db
def test_chat_completions_sends_an_image_data_url_byte_for_byte_and_stores_it(sdk, openai_upstream):
    completion = sdk.chat.completions.create(
        model="gpt-test",
        messages=user_content(image_part(data_url(PNG, "image/png"), detail="high")),
        user="chat-image",
    )
    reply = completion.choices[0].message.content
    assert reply.startswith(line(1, "image/png", PNG)), reply
    (sent,) = openai_upstream.requests
    (part,) = [p for p in sent.json["messages"][-1]["content"] if p["type"] == "image_url"]
    assert part["image_url"] == {"url": data_url(PNG, "image/png"), "detail": "high"}
    (stored,) = Attachment.objects.all()
    question = Message.objects.get(role="user")
    assert (stored.message_id, stored.sha256, stored.media_type) == (question.pk, sha256(PNG), "image/png")
    assert [p["type"] for p in question.parts] == ["text", "file"] and question.parts[1]["detail"] == "high"
    assert completion.usage.prompt_tokens > 100  # the image's tokens, as the upstream counted them


@pytestmark_db
def test_chat_completions_passes_an_https_image_to_openai_which_fetches_it(sdk, openai_upstream):
    url = "https://images.example.com/cat.png"
    completion = sdk.chat.completions.create(model="gpt-test", messages=user_content(image_part(url)))
    assert completion.choices[0].message.content.startswith(f"[attachment 1: url {url}]")
    assert not Attachment.objects.exists()  # nothing fetched, nothing stored: OpenAI fetches it
    question = Message.objects.get(role="user")
    assert question.parts[1]["url"] == url


@pytestmark_db
def test_chat_completions_sends_a_pdf_file_part(sdk, openai_upstream):
    pdf = {"type": "file", "file": {"filename": "paper.pdf", "file_data": data_url(PDF, "application/pdf")}}
    completion = sdk.chat.completions.create(model="gpt-test", messages=user_content(pdf))
    assert completion.choices[0].message.content.startswith(line(1, "application/pdf", PDF))
    assert Attachment.objects.get().filename == "paper.pdf"


@pytestmark_db
def test_an_earlier_messages_image_goes_to_the_model_with_the_transcript(sdk, openai_upstream):
    jpeg = jpeg_bytes()
    messages = [
        *user_content(image_part(data_url(jpeg, "image/jpeg")), text="first"),
        {"role": "assistant", "content": "a blue square"},
        *user_content(image_part(data_url(PNG, "image/png")), text="and this?"),
    ]
    reply = sdk.chat.completions.create(model="gpt-test", messages=messages).choices[0].message.content
    assert reply.startswith(line(1, "image/jpeg", jpeg) + "\n" + line(2, "image/png", PNG)), reply
    assert Attachment.objects.get().sha256 == sha256(
        PNG
    )  # the new message's file is stored, not the history's


@pytestmark_db
def test_an_earlier_messages_files_reach_the_model_when_the_new_message_is_text(sdk, openai_upstream):
    jpeg = jpeg_bytes()
    pdf = {"type": "file", "file": {"filename": "paper.pdf", "file_data": data_url(PDF, "application/pdf")}}
    messages = [
        *user_content(image_part(data_url(jpeg, "image/jpeg")), pdf, text="first"),
        {"role": "assistant", "content": "a blue square and a paper"},
        {"role": "user", "content": "which is bigger?"},
    ]
    reply = sdk.chat.completions.create(model="gpt-test", messages=messages).choices[0].message.content
    assert reply.startswith(line(1, "image/jpeg", jpeg) + "\n" + line(2, "application/pdf", PDF)), reply
    assert not Attachment.objects.exists()  # the transcript's files are the client's: sent, not stored
    (sent,) = openai_upstream.requests
    assert [p["type"] for p in sent.json["messages"][0]["content"]] == ["text", "image_url", "file"]


@pytestmark_db
def test_a_file_uploaded_first_is_sent_by_its_id(sdk, openai_upstream, asgi_server):
    created = httpx.post(
        f"{asgi_server.url}/api/attachments", files={"file": ("p.pdf", PDF, "application/pdf")}, timeout=20
    ).json()
    part = {"type": "file", "file": {"file_id": created["id"]}}
    completion = sdk.chat.completions.create(model="gpt-test", messages=user_content(part))
    assert completion.choices[0].message.content.startswith(line(1, "application/pdf", PDF))
    assert str(Attachment.objects.get().message_id) == str(Message.objects.get(role="user").pk)
    status, body = refused_by(
        lambda: sdk.chat.completions.create(
            model="gpt-test", messages=user_content({"type": "file", "file": {"file_id": str(uuid.uuid4())}})
        )
    )
    assert (status, body["code"], body["param"]) == (404, "attachment_not_found", "attachments[0]")


@pytestmark_db
def test_a_file_that_is_not_what_it_says_is_refused_in_the_openai_shape_storing_nothing(sdk, openai_upstream):
    status, body = refused_by(
        lambda: sdk.chat.completions.create(
            model="gpt-test", messages=user_content(image_part(data_url(PDF, "image/png")))
        )
    )
    assert (status, body["code"], body["param"], body["type"]) == (
        422,
        "attachment_type_mismatch",
        "attachments[0]",
        "invalid_request_error",
    )
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    status, body = refused_by(
        lambda: sdk.chat.completions.create(
            model="gpt-test", messages=user_content(image_part(data_url(svg, "image/svg+xml")))
        )
    )
    assert (status, body["code"]) == (415, "unsupported_attachment_type")
    assert not Attachment.objects.exists() and not Message.objects.exists() and openai_upstream.requests == []


@pytestmark_db
def test_an_image_in_an_assistant_message_is_refused(sdk, openai_upstream):
    messages = [
        {"role": "user", "content": "draw"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "here"}, image_part(data_url(PNG, "image/png"))],
        },
        {"role": "user", "content": "thanks"},
    ]
    status, body = refused_by(lambda: sdk.chat.completions.create(model="gpt-test", messages=messages))
    assert (status, body["code"]) == (422, "invalid_input")
    assert "messages[1].content[1] is image_url in an assistant message" in body["message"]
    assert not Conversation.objects.exists()


@pytestmark_db
def test_a_data_url_over_the_per_file_limit_is_413_naming_it(sdk, openai_upstream, settings):
    settings.ATTACHMENT_MAX_BYTES = len(PNG) - 1
    status, body = refused_by(
        lambda: sdk.chat.completions.create(
            model="gpt-test", messages=user_content(image_part(data_url(PNG, "image/png")))
        )
    )
    assert (status, body["code"], body["param"]) == (413, "payload_too_large", "attachments[0]")
    assert "ATTACHMENT_MAX_BYTES" in body["message"]
    assert not Attachment.objects.exists()


@pytestmark_db
def test_a_model_that_takes_no_images_is_refused_naming_the_model_and_type(sdk, upstream, settings):
    settings.OPENAI_COMPATIBLE_BASE_URL = upstream.openai_base_url
    settings.OPENAI_COMPATIBLE_MODEL = "llama3.2"
    settings.OPENAI_COMPATIBLE_MODELS = ["llama3.2"]
    settings.OPENAI_COMPATIBLE_ATTACHMENT_MODELS = ""  # text files only: no vision model listed
    status, body = refused_by(
        lambda: sdk.chat.completions.create(
            model="openai-compatible:llama3.2", messages=user_content(image_part(data_url(PNG, "image/png")))
        )
    )
    assert (status, body["code"]) == (422, "attachments_not_supported")
    assert "openai-compatible:llama3.2" in body["message"] and "image/png" in body["message"]
    assert upstream.requests == [] and not Attachment.objects.exists()


@pytestmark_db
def test_the_demo_provider_says_what_it_received(sdk, settings):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    settings.LLM_FALLBACKS = []
    pdf = {"type": "file", "file": {"filename": "paper.pdf", "file_data": data_url(PDF, "application/pdf")}}
    reply = (
        sdk.chat.completions.create(
            model="demo:demo", messages=user_content(image_part(data_url(PNG, "image/png")), pdf)
        )
        .choices[0]
        .message.content
    )
    assert f"Attachment 1: image/png, {len(PNG)} bytes, sha256 {sha256(PNG)[:16]}" in reply
    assert (
        f'Attachment 2: application/pdf, {len(PDF)} bytes, sha256 {sha256(PDF)[:16]}, "paper.pdf".' in reply
    )


# --- end to end: Responses -----------------------------------------------------------------------------
@pytestmark_db
def test_responses_sends_input_image_and_input_file_and_lists_them_back(sdk, openai_upstream, asgi_server):
    model = "openai-responses:gpt-test"  # OpenAI's Responses API upstream: its input_image and input_file
    content = [
        {"type": "input_text", "text": "what are these?"},
        {"type": "input_image", "image_url": data_url(PNG, "image/png"), "detail": "auto"},
        {"type": "input_image", "image_url": "https://images.example.com/cat.png", "detail": "low"},
        {"type": "input_file", "filename": "paper.pdf", "file_data": data_url(PDF, "application/pdf")},
    ]
    response = sdk.responses.create(model=model, input=[{"role": "user", "content": content}])
    lines = response.output_text.splitlines()
    assert lines[:3] == [
        line(1, "image/png", PNG),
        "[attachment 2: url https://images.example.com/cat.png]",
        line(3, "application/pdf", PDF),
    ], response.output_text
    image, pdf = Attachment.objects.order_by("created_at")
    (item,) = sdk.responses.input_items.list(response.id).data
    shown = [part.model_dump(exclude_none=True) for part in item.content]
    assert shown == [
        {"type": "input_text", "text": "what are these?"},
        {"type": "input_image", "detail": "auto", "file_id": str(image.pk)},
        {"type": "input_image", "detail": "low", "image_url": "https://images.example.com/cat.png"},
        {"type": "input_file", "file_id": str(pdf.pk), "filename": "paper.pdf"},
    ]
    download = httpx.get(f"{asgi_server.url}/api/attachments/{image.pk}/content", timeout=20)
    assert download.content == PNG
    # the id it lists is sent again as file_id, in the same conversation
    again = sdk.responses.create(
        model=model,
        previous_response_id=response.id,
        input=[
            {"role": "user", "content": [{"type": "input_image", "file_id": str(image.pk), "detail": "auto"}]}
        ],
    )
    assert line(1, "image/png", PNG) in again.output_text


@pytestmark_db
def test_responses_refuses_a_mismatched_file_in_its_error_shape(sdk, openai_upstream):
    content = [{"type": "input_file", "filename": "a.pdf", "file_data": data_url(PNG, "application/pdf")}]
    status, body = refused_by(
        lambda: sdk.responses.create(model="gpt-test", input=[{"role": "user", "content": content}])
    )
    assert (status, body["code"], body["param"]) == (422, "attachment_type_mismatch", "attachments[0]")
    assert not Message.objects.exists() and not Attachment.objects.exists()


# --- end to end: the AI SDK ------------------------------------------------------------------------
@pytestmark_db
@pytest.mark.parametrize("transport", ["http", "ws"])
def test_the_ai_packages_file_parts_reach_the_model_and_come_back_in_the_history(
    asgi_server, openai_upstream, user, transport
):
    key = api_key_create(owner=user, name="ai-files")[1]
    files = [
        {"type": "file", "mediaType": "image/png", "filename": "red.png", "url": data_url(PNG, "image/png")},
        {
            "type": "file",
            "mediaType": "application/pdf",
            "filename": "paper.pdf",
            "url": data_url(PDF, "application/pdf"),
        },
    ]
    chat = f"files-{transport}"
    out = run_js(
        "ai_sdk_files.mjs",
        {
            "pkg": "ai",
            "transport": transport,
            "base": asgi_server.url,
            "headers": {"X-API-Key": key},
            "chatId": chat,
            "text": "what are these?",
            "files": files,
            "followUp": "and now?",
            "history": True,
        },
        timeout=90,
    )
    assert out.get("thrown") is None and out["error"] is None, out
    sent = out["requests"][0]["messages"][-1]["parts"]
    assert sent[0] == files[0] and sent[1] == files[1]  # the SDK put the files before the text
    answer = out["messages"][1]
    text = "".join(p["text"] for p in answer["parts"] if p["type"] == "text")
    assert text.startswith(line(1, "image/png", PNG) + "\n" + line(2, "application/pdf", PDF)), text
    follow = "".join(p["text"] for p in out["messages"][3]["parts"] if p["type"] == "text")
    assert follow.startswith(line(1, "image/png", PNG))  # the history's files go with the next turn
    image, pdf = Attachment.objects.filter(conversation__session_key=chat).order_by("created_at")
    assert out["historyValid"] is None, out["historyValid"]
    assert out["history"][0]["parts"] == [  # as stored: the text, then the files in order
        {"type": "text", "text": "what are these?"},
        {
            "type": "file",
            "mediaType": "image/png",
            "filename": "red.png",
            "url": f"/api/attachments/{image.pk}/content",
        },
        {
            "type": "file",
            "mediaType": "application/pdf",
            "filename": "paper.pdf",
            "url": f"/api/attachments/{pdf.pk}/content",
        },
    ]
    download = httpx.get(
        f"{asgi_server.url}/api/attachments/{pdf.pk}/content", headers={"X-API-Key": key}, timeout=20
    )
    assert download.content == PDF


@pytestmark_db
def test_the_client_side_rebuild_agrees_with_the_served_history_of_a_chat_with_files(
    asgi_server, openai_upstream, user
):
    key = api_key_create(owner=user, name="ai-files-rebuild")[1]
    body = {
        "id": "files-rebuild",
        "messages": [
            {
                "id": "u1",
                "role": "user",
                "parts": [
                    {"type": "text", "text": "see"},
                    {
                        "type": "file",
                        "mediaType": "image/png",
                        "filename": "red.png",
                        "url": data_url(PNG, "image/png"),
                    },
                ],
            }
        ],
    }
    response = httpx.post(
        f"{asgi_server.url}/api/ai-sdk/chat", json=body, headers={"X-API-Key": key}, timeout=20
    )
    assert response.status_code == 200, response.text
    out = run_js(
        "ai_sdk_history.mjs",
        {"base": asgi_server.url, "headers": {"X-API-Key": key}, "chatId": "files-rebuild"},
    )
    assert out["valid"] is None and out["served"][0]["parts"][1]["type"] == "file", out
    assert out["equal"], out


@pytestmark_db
def test_the_native_history_shows_a_file_part_with_its_download_link(asgi_server, openai_upstream):
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        created = http.post("/api/attachments", files={"file": ("red.png", PNG, "image/png")}).json()
        sent = http.post(
            "/api/sessions/native-files/messages", json={"content": "look", "attachments": [created["id"]]}
        )
        assert sent.status_code == 200, sent.text
        page = http.get("/api/sessions/native-files/messages").json()
    question = next(m for m in page["results"] if m["role"] == "user")
    assert question["parts"][1] == {
        "type": "file",
        "id": created["id"],
        "media_type": "image/png",
        "filename": "red.png",
        "size": len(PNG),
        "sha256": sha256(PNG),
        "download_url": f"/api/attachments/{created['id']}/content",
    }


@pytestmark_db
def test_an_earlier_messages_upload_by_file_id_reaches_the_model_and_anothers_is_404(
    sdk, openai_upstream, asgi_server, user
):
    uploaded = httpx.post(
        f"{asgi_server.url}/api/attachments", files={"file": ("p.png", PNG, "image/png")}, timeout=20
    ).json()
    by_id = {"type": "file", "file": {"file_id": uploaded["id"]}}
    messages = [
        *user_content(by_id, text="first"),
        {"role": "assistant", "content": "a red dot"},
        {"role": "user", "content": "and now?"},
    ]
    reply = sdk.chat.completions.create(model="gpt-test", messages=messages).choices[0].message.content
    assert reply.startswith(line(1, "image/png", PNG)), reply
    key = api_key_create(owner=user, name="other-owner")[1]
    theirs = httpx.post(
        f"{asgi_server.url}/api/attachments",
        files={"file": ("q.png", PNG, "image/png")},
        headers={"X-API-Key": key},
        timeout=20,
    ).json()
    messages[0] = user_content({"type": "file", "file": {"file_id": theirs["id"]}}, text="first")[0]
    with pytest.raises(APIStatusError) as refused:
        sdk.chat.completions.create(model="gpt-test", messages=messages)
    assert refused.value.status_code == 404
    assert refused.value.body["code"] == "attachment_not_found"
