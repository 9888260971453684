"""The official openai SDK as a client of /v1/chat/completions, against the real server."""

import pytest
from openai import APIStatusError

from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply

pytestmark = pytest.mark.django_db(transaction=True)


def test_streaming_completion_with_usage_through_the_sdk_is_persisted(sdk):
    stream = sdk.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "hello sdk [[chunks=4]]"},
        ],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Session-Id": "sdk-session"},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply("hello sdk [[chunks=4]]")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 4
    conversation = Conversation.objects.get(session_key="sdk-session")
    assert conversation.system_prompt == "Be terse."
    assert list(conversation.messages.values_list("role", "status")) == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]


def test_non_streaming_completion_through_the_sdk(sdk):
    completion = sdk.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "plain [[chunks=3]]"}],
        user="sdk-user-session",
    )
    assert completion.choices[0].message.content == expected_reply("plain [[chunks=3]]")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 3
    assert completion.object == "chat.completion"
    assert Message.objects.filter(conversation__session_key="sdk-user-session", role="assistant").count() == 1


def test_client_transcript_is_forwarded_as_the_context(sdk, openai_upstream):
    sdk.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ],
    )
    sent = openai_upstream.requests[-1].json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "one"),
        ("assistant", "two"),
        ("user", "three"),
    ]


def test_provider_prefix_in_model_selects_the_provider(sdk, settings):
    completion = sdk.chat.completions.create(
        model="demo:demo", messages=[{"role": "user", "content": "hi demo"}]
    )
    assert "offline demo" in completion.choices[0].message.content


def test_upstream_rate_limit_reaches_the_sdk_as_an_error(sdk, openai_upstream):
    openai_upstream.push_fault("429", times=1, retry_after=2)
    with pytest.raises(APIStatusError) as info:
        sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "2"


def test_invalid_messages_are_rejected_with_an_openai_style_error(sdk):
    with pytest.raises(APIStatusError) as info:
        sdk.chat.completions.create(model="gpt-test", messages=[{"role": "assistant", "content": "x"}])
    assert info.value.status_code == 422
    assert info.value.body["code"] == "invalid_input"
    assert not Message.objects.exists()
