"""LangChain's ChatOpenAI (langchain-openai) pointed at this server: a streamed turn through
/v1/chat/completions (and through /v1/responses when told to use the Responses API), stored."""

from __future__ import annotations

import pytest
from langchain_openai import ChatOpenAI

from conversations.models import Message
from tests.fake_upstream import expected_reply

pytestmark = pytest.mark.django_db(transaction=True)


def chat_model(asgi_server, **options) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=asgi_server.url + "/v1",
        api_key="unused",
        model="gpt-test",
        max_retries=0,
        timeout=20,
        **options,
    )


def test_chat_openai_streams_a_turn_through_chat_completions(asgi_server, openai_upstream):
    text = "hello langchain [[chunks=5]]"
    llm = chat_model(asgi_server, stream_usage=True)
    chunks = list(llm.stream([("system", "Be brief."), ("human", text)]))
    assert "".join(chunk.content for chunk in chunks) == expected_reply(text)
    assert len([c for c in chunks if c.content]) == 5  # token by token, not one block
    usage = next(c.usage_metadata for c in chunks if c.usage_metadata)
    assert usage["output_tokens"] == 5
    assert openai_upstream.requests[-1].path.endswith("/chat/completions")
    answer = Message.objects.get(role="assistant")
    assert answer.status == "complete" and answer.content == expected_reply(text)
    assert answer.conversation.system_prompt == "Be brief."


def test_chat_openai_invoke_on_the_responses_api(asgi_server, openai_upstream):
    text = "through responses [[chunks=3]]"
    reply = chat_model(asgi_server, use_responses_api=True).invoke(text)
    assert reply.text == expected_reply(text)
    assert Message.objects.get(role="assistant").content == expected_reply(text)
