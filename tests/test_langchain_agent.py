"""A LangChain agent (``langchain.agents.create_agent``, a LangGraph graph) whose model is
``ChatOpenAI`` pointed at this server's ``/v1``: the model (the fake upstream behind the server)
calls the agent's Python tool, the agent runs it and sends the result back through
``/v1/chat/completions``, and the final answer carries the tool's output. Invoked and streamed."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from conversations.models import Message
from tests.fake_upstream import expected_tool_reply

pytestmark = pytest.mark.django_db(transaction=True)

RAN: list[str] = []


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    RAN.append(city)
    return f"sunny in {city}"


def agent(asgi_server, **options):
    model = ChatOpenAI(
        base_url=asgi_server.url + "/v1",
        api_key="unused",
        model="gpt-test",
        max_retries=0,
        timeout=20,
        **options,
    )
    return create_agent(model, tools=[weather], system_prompt="Use the tools.")


@pytest.mark.parametrize("streaming", [False, True])
def test_an_agent_calls_its_tool_through_the_server_and_answers_with_the_result(
    asgi_server, openai_upstream, streaming
):
    RAN.clear()
    state = agent(asgi_server, streaming=streaming).invoke({"messages": [HumanMessage("Paris")]})
    assert RAN == ["Paris"]  # the model's call, run by the agent
    _question, called, result, final = state["messages"]
    assert isinstance(called, AIMessage) and [c["name"] for c in called.tool_calls] == ["weather"]
    assert called.tool_calls[0]["args"] == {"city": "Paris"}
    assert isinstance(result, ToolMessage) and result.content == "sunny in Paris"
    assert isinstance(final, AIMessage) and final.content == expected_tool_reply(["sunny in Paris"])
    assert not final.tool_calls
    sent = openai_upstream.requests[-1].json
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent["tools"][0]["function"]["name"] == "weather"
    answers = Message.objects.filter(role="assistant").order_by("created_at")
    assert [(a.finish_reason, a.status) for a in answers] == [
        ("tool_calls", "complete"),
        ("stop", "complete"),
    ]
    assert Message.objects.get(role="tool").parts[0]["output"] == "sunny in Paris"


def test_an_agent_streams_its_steps(asgi_server, openai_upstream):
    RAN.clear()
    graph = agent(asgi_server, streaming=True)
    tokens = [
        chunk.content
        for chunk, _ in graph.stream({"messages": [HumanMessage("Oslo")]}, stream_mode="messages")
        if isinstance(chunk, AIMessage) and chunk.content
    ]
    assert RAN == ["Oslo"]
    assert len(tokens) > 1 and "".join(tokens) == expected_tool_reply(["sunny in Oslo"])
