"""Codecs in isolation: the one message-list parser, decoding without a server, and the rule that
a codec touches no database, provider, Redis or request framework."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from accounts.callers import Caller
from conversations.codecs.base import Inbound
from conversations.codecs.messages import read_messages
from conversations.codecs.native import NativeCodec
from conversations.codecs.openai_chat import OpenAIChatCodec
from conversations.codecs.zai import ZaiCodec
from conversations.edge.errors import HttpError
from providers.base import ChatMessage

CODECS = Path(__file__).resolve().parent.parent / "conversations" / "codecs"
FORBIDDEN = (
    "conversations.models",
    "conversations.db",
    "conversations.db_errors",
    "conversations.selectors",
    "conversations.services",
    "conversations.ratelimit",
    "providers.registry",
    "django.db",
    "django.http",
    "redis",
    "channels",
    "psycopg",
    "httpx",
)
ALLOWED_TURN_MODULES = ("conversations.turns.request",)


def imports_of(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CODECS.glob("*.py")), ids=lambda p: p.name)
def test_a_codec_imports_no_database_provider_redis_or_framework(path):
    wrong = [
        name
        for name in imports_of(path)
        if name.startswith(FORBIDDEN)
        or (name.startswith("conversations.turns") and name not in ALLOWED_TURN_MODULES)
        or (name.startswith("providers") and name not in ("providers.base", "providers.defaults"))
    ]
    assert wrong == []


def test_the_message_list_is_read_with_every_problem_at_once():
    parsed = read_messages(
        [
            {"role": "robot", "content": "x"},
            "hi",
            {"role": "user", "content": 3},
            {"role": "user", "content": "ok"},
        ]
    )
    assert [(p.field, p.message) for p in parsed.problems] == [
        ("messages[0].role", "must be system, user or assistant"),
        ("messages[1]", "must be an object with role and content"),
        ("messages[2].content", "must be a string or text parts"),
    ]
    assert parsed.messages == (ChatMessage("user", "ok"),)


def test_system_messages_become_the_prompt_and_text_parts_are_joined():
    parsed = read_messages(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use French."},
            {"role": "user", "content": [{"type": "text", "text": "Bon"}, {"type": "text", "text": "jour"}]},
        ]
    )
    assert parsed.problems == ()
    assert parsed.system == "Be brief.\n\nUse French."
    assert parsed.last == ChatMessage("user", "Bonjour")


def test_a_protocol_may_refuse_text_parts_and_roles():
    parsed = read_messages(
        [{"role": "developer", "content": [{"type": "text", "text": "x"}]}],
        text_parts=False,
        roles={"user": "user"},
    )
    assert [p.field for p in parsed.problems] == ["messages[0].role", "messages[0].content"]
    assert read_messages([]).problems[0].field == "messages"


def inbound(body: dict, **headers: str) -> Inbound:
    return Inbound(
        headers=headers, body=body, caller=Caller(owner_id=7, ip="1.2.3.4"), params={}, received_at=0.0
    )


def test_the_openai_codec_decodes_the_clients_transcript():
    body = {
        "model": "gemini:gm-1",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 5,
        "response_format": {"type": "json_object"},
    }
    request = asyncio.run(OpenAIChatCodec().decode(inbound(body, **{"X-Session-Id": "s1"})))
    assert (request.session_key, request.provider, request.model) == ("s1", "gemini", "gm-1")
    assert (request.content, request.system, request.max_tokens, request.json_output) == ("Hi", "S", 5, True)
    assert request.context == (ChatMessage("user", "Hi"),)
    assert request.rate_limit_key == "user:7"


def test_the_openai_codec_names_the_first_problem_and_checks_the_reply_fields_first():
    with pytest.raises(HttpError) as bad:
        asyncio.run(OpenAIChatCodec().decode(inbound({"messages": [{"role": "assistant", "content": "x"}]})))
    assert (bad.value.status, bad.value.message) == (422, "the last message must have role user.")
    with pytest.raises(HttpError) as bad_stream:
        asyncio.run(
            OpenAIChatCodec().decode(inbound({"messages": [{"role": "user", "content": "x"}], "stream": 1}))
        )
    assert bad_stream.value.details["field"] == "stream"


def test_the_zai_codec_lists_every_problem_in_a_400():
    codec = ZaiCodec(lambda: "zai", lambda: None)
    with pytest.raises(HttpError) as bad:
        asyncio.run(codec.decode(inbound({"messages": [{"role": "robot", "content": 1}]})))
    assert bad.value.status == 400
    assert [d["field"] for d in bad.value.details["details"]] == ["messages[0].role", "messages[0].content"]
    reply = codec.reject(bad.value)
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_messages"


def test_the_native_codec_takes_the_path_and_the_branch():
    codec = NativeCodec("regenerate_of")
    request = asyncio.run(
        codec.decode(
            Inbound(
                headers={},
                body={},
                caller=Caller(owner_id=None, ip="9.9.9.9"),
                params={"session_key": "s", "message_id": "m"},
                received_at=0.0,
            )
        )
    )
    assert (request.session_key, request.regenerate_of, request.content) == ("s", "m", "")
    assert request.rate_limit_key == "ip:9.9.9.9"


def test_the_import_rule_would_catch_a_mount_module():
    mount = CODECS.parent / "dialects" / "zai.py"  # wiring, not a codec: it reads the registry
    assert "providers.registry" in imports_of(mount)
    assert "providers.registry".startswith(FORBIDDEN)
