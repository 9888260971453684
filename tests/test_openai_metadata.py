"""``metadata`` on /v1/responses and /v1/chat/completions held to OpenAI's documented limits (16 pairs,
keys of at most 64 characters, values strings of at most 512), through the official SDK against the
real server: at the limits it is taken, past them the SDK raises its own error naming the limit and
nothing is stored."""

import pytest
from openai import UnprocessableEntityError

from conversations.codecs.openai_metadata import METADATA_KEY_CHARS, METADATA_PAIRS, METADATA_VALUE_CHARS
from conversations.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

USER = [{"role": "user", "content": "hi"}]
AT_THE_LIMITS = {
    "k" * METADATA_KEY_CHARS: "v" * METADATA_VALUE_CHARS,
    **{f"key-{n}": "value" for n in range(METADATA_PAIRS - 1)},
}
OVER = {
    "a long key": ({"k" * (METADATA_KEY_CHARS + 1): "v"}, f"is {METADATA_KEY_CHARS + 1} characters"),
    "a long value": ({"k": "v" * 400_000}, "is 400000 characters"),
    "too many pairs": ({f"k{n}": "v" for n in range(METADATA_PAIRS + 1)}, f"has {METADATA_PAIRS + 1} pairs"),
    "a value not a string": ({"k": 1}, "is not a string"),
}


def test_responses_metadata_at_the_limits_is_stored_and_echoed(sdk):
    response = sdk.responses.create(model="gpt-test", input="hi", metadata=AT_THE_LIMITS)
    assert response.metadata == AT_THE_LIMITS
    assert sdk.responses.retrieve(response.id).metadata == AT_THE_LIMITS


@pytest.mark.parametrize("case", OVER)
def test_responses_metadata_past_a_limit_is_refused_naming_it(sdk, case):
    metadata, problem = OVER[case]
    with pytest.raises(UnprocessableEntityError) as info:
        sdk.responses.create(model="gpt-test", input="hi", metadata=metadata)
    error = info.value.body
    assert (error["param"], error["code"], error["type"]) == (
        "metadata",
        "invalid_input",
        "invalid_request_error",
    )
    assert problem in error["message"]
    assert f"keys of at most {METADATA_KEY_CHARS} characters" in error["message"]
    assert f"values strings of at most {METADATA_VALUE_CHARS} characters" in error["message"]
    assert len(error["message"]) < 400  # a long key is quoted cut short, never echoed whole
    assert not Message.objects.exists()


def test_chat_completions_metadata_at_the_limits_is_taken(sdk):
    completion = sdk.chat.completions.create(model="gpt-test", messages=USER, metadata=AT_THE_LIMITS)
    assert completion.choices[0].message.content


@pytest.mark.parametrize("case", OVER)
def test_chat_completions_metadata_past_a_limit_is_refused_naming_it(sdk, case):
    metadata, problem = OVER[case]
    with pytest.raises(UnprocessableEntityError) as info:
        sdk.chat.completions.create(model="gpt-test", messages=USER, metadata=metadata)
    error = info.value.body
    assert (error["param"], error["code"]) == ("metadata", "invalid_input")
    assert problem in error["message"]
    assert not Message.objects.exists()
