"""The official openai SDK as a client of /v1/responses (the Responses API), against the real server."""

import os
import time
import uuid

import httpx
import pytest
from openai import BadRequestError, InternalServerError, NotFoundError, OpenAI, RateLimitError
from openai.types.responses import Response, ResponseCompletedEvent, ResponseTextDeltaEvent

from accounts.keys import api_key_create
from conversations.models import Conversation, Message
from tests.fake_upstream import expected_reply

pytestmark = pytest.mark.django_db(transaction=True)

STREAM_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
END_TYPES = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


def answer_id(response_id: str) -> uuid.UUID:
    return uuid.UUID(hex=response_id.removeprefix("resp_"))


def text_of(events) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


@pytest.fixture
def keyed_sdk(asgi_server, openai_upstream, user, other_user):
    """Two SDK clients with the personal API keys of two users."""
    clients = []
    for owner in (user, other_user):
        _, secret = api_key_create(owner=owner, name=f"k-{uuid.uuid4().hex}")
        clients.append(OpenAI(api_key=secret, base_url=asgi_server.url + "/v1", max_retries=0, timeout=20))
    yield clients
    for client in clients:
        client.close()


def test_non_streamed_response_is_typed_and_stored_as_a_turn(sdk):
    response = sdk.responses.create(model="gpt-test", input="hello responses [[chunks=3]]")
    assert isinstance(response, Response)
    assert response.status == "completed" and response.object == "response"
    assert response.output_text == expected_reply("hello responses [[chunks=3]]")
    assert response.output[0].type == "message" and response.output[0].content[0].type == "output_text"
    assert response.usage.output_tokens == 3
    assert response.usage.total_tokens == response.usage.input_tokens + 3
    assert response.previous_response_id is None and response.error is None
    answer = Message.objects.select_related("conversation").get(pk=answer_id(response.id))
    assert answer.status == "complete" and answer.content == response.output_text
    assert answer.conversation.session_key.startswith("resp-")
    assert list(answer.conversation.messages.values_list("role", "status")) == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]


def test_streamed_response_emits_the_sdk_event_sequence_numbered_from_zero(sdk):
    events = list(sdk.responses.create(model="gpt-test", input="stream me [[chunks=4]]", stream=True))
    types = [e.type for e in events]
    assert types == [*STREAM_TYPES, *["response.output_text.delta"] * 4, *END_TYPES, "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert all(isinstance(e, ResponseTextDeltaEvent) for e in events if e.type.endswith(".delta"))
    assert text_of(events) == expected_reply("stream me [[chunks=4]]")
    final = events[-1]
    assert isinstance(final, ResponseCompletedEvent)
    assert final.response.output_text == text_of(events) and final.response.usage.output_tokens == 4
    assert events[0].response.id == final.response.id and events[0].response.status == "in_progress"


def test_instructions_are_the_sessions_system_prompt(sdk, openai_upstream):
    response = sdk.responses.create(model="gpt-test", input="hi", instructions="Be terse.")
    assert response.instructions == "Be terse."
    conversation = Message.objects.get(pk=answer_id(response.id)).conversation
    assert conversation.system_prompt == "Be terse."
    sent = openai_upstream.requests[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": "Be terse."}


def test_retrieve_returns_the_stored_response_with_its_options(sdk):
    created = sdk.responses.create(
        model="gpt-test",
        input="keep [[chunks=2]]",
        metadata={"k": "v"},
        temperature=0.5,
        max_output_tokens=50,
    )
    again = sdk.responses.retrieve(created.id)
    assert again.id == created.id and again.status == "completed"
    assert again.output_text == created.output_text
    assert (again.metadata, again.temperature, again.max_output_tokens) == ({"k": "v"}, 0.5, 50)
    assert again.usage.output_tokens == 2 and again.created_at == created.created_at


def test_retrieve_stream_starting_after_gives_exactly_the_later_events(sdk):
    events = list(sdk.responses.create(model="gpt-test", input="resume me [[chunks=5]]", stream=True))
    response_id = events[-1].response.id
    for n in (0, 5, len(events) - 2):
        rest = list(sdk.responses.retrieve(response_id, stream=True, starting_after=n))
        assert [e.model_dump() for e in rest] == [e.model_dump() for e in events[n + 1 :]]
    everything = list(sdk.responses.retrieve(response_id, stream=True))
    assert [e.model_dump() for e in everything] == [e.model_dump() for e in events]


def test_background_response_completes_with_nobody_listening(sdk):
    created = sdk.responses.create(model="gpt-test", input="later [[chunks=5 delay=0.05]]", background=True)
    assert created.status in ("queued", "in_progress") and created.background is True
    deadline = time.monotonic() + 10
    response = created
    while response.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.1)
        response = sdk.responses.retrieve(created.id)
    assert response.status == "completed"
    assert response.output_text == expected_reply("later [[chunks=5 delay=0.05]]")


def test_background_stream_resumes_live_and_cancel_keeps_the_partial_text(sdk):
    prompt = "long one [[chunks=40 delay=0.05]]"
    created = sdk.responses.create(model="gpt-test", input=prompt, background=True)
    time.sleep(0.4)
    running = sdk.responses.retrieve(created.id)
    assert running.status == "in_progress"
    stream = sdk.responses.retrieve(created.id, stream=True, starting_after=3)
    live = []
    for event in stream:
        live.append(event)
        if len(live) == 8:
            break
    stream.close()
    assert [e.sequence_number for e in live] == list(range(4, 12))
    assert all(e.type == "response.output_text.delta" for e in live)
    cancelled = sdk.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    full = expected_reply(prompt)
    assert cancelled.output_text and full.startswith(cancelled.output_text) and cancelled.output_text != full
    answer = Message.objects.get(pk=answer_id(created.id))
    assert (answer.status, answer.error_code, answer.content) == (
        "interrupted",
        "stopped",
        cancelled.output_text,
    )
    assert sdk.responses.retrieve(created.id).status == "cancelled"
    assert sdk.responses.cancel(created.id).status == "cancelled"  # a finished one is returned as it is
    events = list(sdk.responses.retrieve(created.id, stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.status == "cancelled"


def test_only_background_responses_can_be_cancelled(sdk):
    response = sdk.responses.create(model="gpt-test", input="plain")
    with pytest.raises(BadRequestError):
        sdk.responses.cancel(response.id)


def test_previous_response_id_branches_from_an_older_answer(sdk, openai_upstream, asgi_server):
    a = sdk.responses.create(model="gpt-test", input="first")
    b = sdk.responses.create(model="gpt-test", input="second", previous_response_id=a.id)
    c = sdk.responses.create(model="gpt-test", input="third", previous_response_id=a.id)
    sent = openai_upstream.requests[-1].json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "first"),
        ("assistant", expected_reply("first")),
        ("user", "third"),
    ]
    assert c.previous_response_id == a.id
    answers = {
        r.id: Message.objects.select_related("conversation").get(pk=answer_id(r.id)) for r in (a, b, c)
    }
    assert len({m.conversation_id for m in answers.values()}) == 1
    session_key = answers[a.id].conversation.session_key
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        branch = http.get(f"/api/sessions/{session_key}/messages", params={"branch": str(answer_id(c.id))})
    assert [(m["role"], m["content"]) for m in branch.json()["results"]] == [
        ("user", "first"),
        ("assistant", a.output_text),
        ("user", "third"),
        ("assistant", c.output_text),
    ]
    assert Message.objects.filter(conversation=answers[a.id].conversation).count() == 6  # b's branch is kept


def test_another_callers_response_is_not_found(keyed_sdk):
    alice, bob = keyed_sdk
    mine = alice.responses.create(model="gpt-test", input="private")
    with pytest.raises(NotFoundError):
        bob.responses.retrieve(mine.id)
    with pytest.raises(NotFoundError):
        bob.responses.create(model="gpt-test", input="steal", previous_response_id=mine.id)
    with pytest.raises(NotFoundError):
        bob.responses.delete(mine.id)
    assert alice.responses.retrieve(mine.id).output_text == mine.output_text
    assert Message.objects.count() == 2


def test_an_unknown_response_is_not_found_in_openais_shape(sdk):
    with pytest.raises(NotFoundError) as info:
        sdk.responses.retrieve("resp_" + "0" * 32)
    assert info.value.body == {
        "message": f"No response with id {'resp_' + '0' * 32!r}.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "not_found",
    }
    with pytest.raises(NotFoundError):
        sdk.responses.retrieve("not-an-id")
    with pytest.raises(NotFoundError) as info:
        sdk.responses.create(model="gpt-test", input="x", previous_response_id="resp_" + "f" * 32)
    assert info.value.body["param"] == "previous_response_id"
    assert not Message.objects.exists()


def test_streamed_upstream_failure_ends_with_response_failed(sdk):
    events = list(sdk.responses.create(model="gpt-test", input="boom [[fault=500]]", stream=True))
    assert [e.type for e in events] == [*STREAM_TYPES, *END_TYPES, "response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error" and failed.error.message
    assert Message.objects.get(pk=answer_id(failed.id)).status == "failed"
    assert sdk.responses.retrieve(failed.id).status == "failed"


def test_non_streamed_upstream_failure_raises_the_sdks_error(sdk):
    with pytest.raises(InternalServerError) as info:
        sdk.responses.create(model="gpt-test", input="boom [[fault=500]]")
    assert info.value.status_code == 502 and info.value.body["type"] == "server_error"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="rate limiting is stored in Redis (REDIS_URL)")
def test_over_the_rate_limit_the_sdk_raises_rate_limit_error(keyed_sdk, settings, user):
    import redis

    settings.RATE_LIMIT_TURNS = "1/minute"
    alice, _ = keyed_sdk
    key_id = user.api_keys.get().pk  # ids repeat in a fresh test database: forget an earlier run's bucket
    with redis.Redis.from_url(os.environ["REDIS_URL"]) as store:
        for stale in store.scan_iter(f"*/turns/key:{key_id}/*"):
            store.delete(stale)
    alice.responses.create(model="gpt-test", input="one")
    with pytest.raises(RateLimitError) as info:
        alice.responses.create(model="gpt-test", input="two")
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    assert info.value.body["code"] == "rate_limited"


def test_store_false_is_refused_because_every_response_is_stored(sdk):
    with pytest.raises(BadRequestError) as info:
        sdk.responses.create(model="gpt-test", input="secret", store=False)
    assert info.value.body["param"] == "store" and info.value.body["code"] == "store_unsupported"
    assert not Message.objects.exists()


def test_invalid_input_is_unprocessable(sdk):
    from openai import UnprocessableEntityError

    with pytest.raises(UnprocessableEntityError) as info:
        sdk.responses.create(model="gpt-test", input=[{"role": "user", "content": [{"type": "input_image"}]}])
    assert info.value.body["param"] == "input"


def test_delete_removes_the_exchange_and_later_replies_keep_the_rest(sdk, openai_upstream, asgi_server):
    a = sdk.responses.create(model="gpt-test", input="first")
    b = sdk.responses.create(model="gpt-test", input="second", previous_response_id=a.id)
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        deleted = http.delete(f"/v1/responses/{a.id}")
    assert deleted.json() == {"id": a.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(NotFoundError):
        sdk.responses.retrieve(a.id)
    assert not Message.objects.filter(content="first").exists()
    assert sdk.responses.retrieve(b.id).output_text == b.output_text
    sdk.responses.create(model="gpt-test", input="third", previous_response_id=b.id)
    sent = openai_upstream.requests[-1].json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "second"),
        ("assistant", b.output_text),
        ("user", "third"),
    ]
    sdk.responses.delete(b.id)  # the SDK's own call
    with pytest.raises(NotFoundError):
        sdk.responses.retrieve(b.id)


def test_input_items_list_the_turns_input(sdk):
    single = sdk.responses.create(model="gpt-test", input="just this")
    items = sdk.responses.input_items.list(single.id)
    assert [(i.type, i.role, i.content[0].text) for i in items.data] == [("message", "user", "just this")]
    transcript = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    several = sdk.responses.create(model="gpt-test", input=transcript)
    listed = sdk.responses.input_items.list(several.id, order="asc")
    assert [(i.role, i.content[0].text) for i in listed.data] == [
        ("developer", "Be brief."),
        ("user", "one"),
        ("assistant", "two"),
        ("user", "three"),
    ]
    newest_first = sdk.responses.input_items.list(several.id)
    assert [i.id for i in newest_first.data] == [i.id for i in reversed(listed.data)]
    assert Conversation.objects.get(messages__pk=answer_id(several.id)).system_prompt == "Be brief."


def test_the_openapi_schema_describes_the_responses_paths(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "post" in paths["/v1/responses"]
    assert {"get", "delete"} <= set(paths["/v1/responses/{response_id}"])
    assert "post" in paths["/v1/responses/{response_id}/cancel"]
    assert "get" in paths["/v1/responses/{response_id}/input_items"]


def test_a_background_stream_whose_client_leaves_runs_to_its_end(sdk):
    prompt = "leave early [[chunks=10 delay=0.05]]"
    stream = sdk.responses.create(model="gpt-test", input=prompt, stream=True, background=True)
    first = next(iter(stream))
    stream.close()
    assert first.type == "response.created" and first.response.status == "queued"
    deadline = time.monotonic() + 10
    response = sdk.responses.retrieve(first.response.id)
    while response.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.1)
        response = sdk.responses.retrieve(first.response.id)
    assert (response.status, response.output_text) == ("completed", expected_reply(prompt))


def test_a_plain_stream_whose_client_leaves_is_interrupted(sdk):
    stream = sdk.responses.create(model="gpt-test", input="go away [[chunks=40 delay=0.05]]", stream=True)
    first = next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 10
    answer = Message.objects.get(pk=answer_id(first.response.id))
    while answer.status == "streaming" and time.monotonic() < deadline:
        time.sleep(0.1)
        answer.refresh_from_db()
    assert answer.status == "interrupted"
    assert sdk.responses.retrieve(first.response.id).status == "incomplete"
