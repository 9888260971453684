"""The native PostgreSQL turn writes (pg_turns) store exactly what the ORM reference (services) stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection

from conversations import pg_turns, turn_store
from conversations.artifacts import CodeBlock
from conversations.db import run_db
from conversations.errors import TurnInProgress
from conversations.models import Artifact, Conversation, Message
from conversations.services import (
    ExistingAnswer,
    OpenedTurn,
    TurnOpening,
    TurnOutcome,
    turn_finish,
    turn_open,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the native path is PostgreSQL's"),
]


async def orm_open(opening: TurnOpening):
    return await run_db(turn_open, opening)


async def orm_finish(conversation_id: str, message_id: str, outcome: TurnOutcome) -> None:
    await run_db(turn_finish, conversation_id, message_id, outcome)


PATHS = {
    "orm": (orm_open, orm_finish),
    "native": (pg_turns.turn_open, pg_turns.turn_finish),
}


def opening(key: str, content: str, owner_id: int | None = None, **fields) -> TurnOpening:
    base = {
        "owner_id": owner_id,
        "session_key": key,
        "user_content": content,
        "client_message_id": None,
        "provider": "openai-responses",
        "model": "gpt-test",
        "system": None,
        "history_limit": 50,
        "chaining": True,
        "stale_after": timedelta(minutes=15),
    }
    base.update(fields)
    return TurnOpening(**base)


def complete(text: str, response_id: str = "", artifacts: tuple[CodeBlock, ...] = ()) -> TurnOutcome:
    return TurnOutcome(
        status=Message.Status.COMPLETE,
        content=text,
        provider="openai-responses",
        model="gpt-test",
        finish_reason="stop",
        response_id=response_id,
        input_tokens=3,
        output_tokens=5,
        artifacts=artifacts,
    )


async def scenario(path: str, owner_id: int | None) -> tuple[list, dict]:
    """The same sequence of turns through one path; returns what each call answered and what was stored."""
    open_, finish = PATHS[path]
    key = f"parity-{path}-{owner_id}"
    answers: list = []
    first = await open_(
        opening(key, "Hello there\nsecond line", owner_id, system="Be brief.", client_message_id="c1")
    )
    assert isinstance(first, OpenedTurn)
    answers.append(("first", first.system, first.history, first.previous_response_id, first.user_content))
    with pytest.raises(TurnInProgress):  # one answer at a time
        await open_(opening(key, "too soon", owner_id))
    repeat = await open_(opening(key, "Hello there", owner_id, client_message_id="c1"))
    assert isinstance(repeat, ExistingAnswer)
    answers.append(("repeat while streaming", repeat.message_id == first.assistant_message_id, repeat.status))
    block = CodeBlock(0, "python", "a.py", "print(1)\n")
    await finish(first.conversation_id, first.assistant_message_id, complete("Hi!", "resp_1", (block,)))
    repeat = await open_(opening(key, "Hello there", owner_id, client_message_id="c1"))
    answers.append(("repeat when done", repeat.message_id == first.assistant_message_id, repeat.status))
    second = await open_(opening(key, "And now?", owner_id))
    answers.append(("second", second.system, second.history, second.previous_response_id))
    await finish(
        second.conversation_id,
        second.assistant_message_id,
        TurnOutcome(
            status=Message.Status.FAILED,
            content="partial",
            provider="openai-responses",
            model="gpt-test",
            error_code="upstream_error",
            error_message="boom",
            usage_estimated=True,
            input_tokens=1,
            output_tokens=1,
        ),
    )
    other_model = await open_(opening(key, "Switch", owner_id, model="gpt-other", system="Be long."))
    answers.append(("other model", other_model.system, other_model.history, other_model.previous_response_id))
    stored = await sync_to_async(snapshot)(first.conversation_id)
    return answers, stored


def snapshot(conversation_id: str) -> dict:
    conversation = Conversation.objects.get(pk=conversation_id)
    messages = list(conversation.messages.order_by("created_at"))
    index = {m.pk: i for i, m in enumerate(messages)}
    ignored = {"id", "conversation", "created_at", "completed_at", "parent"}
    return {
        "session": {
            f: getattr(conversation, f)
            for f in (
                "owner_id",
                "title",
                "provider",
                "model",
                "system_prompt",
                "metadata",
                "last_response_id",
            )
        },
        "messages": [
            {
                **{
                    f.name: getattr(m, f.attname)
                    for f in Message._meta.concrete_fields
                    if f.name not in ignored
                },
                "parent": index.get(m.parent_id),
                "completed": m.completed_at is not None,
            }
            for m in messages
        ],
        "artifacts": list(
            Artifact.objects.filter(conversation_id=conversation_id).values_list(
                "message__role", "language", "filename", "content", "position"
            )
        ),
    }


@pytest.mark.parametrize("owned", [False, True], ids=["anonymous", "owned"])
async def test_native_writes_store_the_same_rows_as_the_orm(owned):
    owner_id = None
    if owned:
        owner = await sync_to_async(get_user_model().objects.create_user)("parity", password="x")
        owner_id = owner.pk
    orm = await scenario("orm", owner_id)
    native = await scenario("native", owner_id)
    assert native == orm
    answers, stored = native
    assert stored["session"]["title"] == "Hello there"
    assert stored["session"]["system_prompt"] == "Be long."
    assert stored["session"]["last_response_id"] == "resp_1"
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 3
    assert [m["parent"] for m in stored["messages"]] == [None, 0, 1, 2, 3, 4]
    assert answers[3][3] == "resp_1"  # the second turn chains; the one on another model does not
    assert answers[4][3] is None
    await pg_turns.close_pool()


async def test_the_store_uses_the_native_path_on_postgresql_and_the_orm_when_switched_off(settings):
    assert turn_store.native_enabled()
    settings.TURN_DB_ASYNC = False
    assert not turn_store.native_enabled()


async def test_a_turn_whose_caller_goes_away_while_it_is_stored_is_closed_interrupted(monkeypatch, settings):
    """The opening write may commit after the client left (it is on the wire already): no answer stays streaming."""
    import asyncio

    from conversations.turns import TurnRequest, start_turn

    real_open = turn_store.open_turn
    stored = asyncio.Event()

    async def open_then_lag(opening):
        opened = await real_open(opening)
        stored.set()
        await asyncio.sleep(0.3)  # committed; the answer to the caller is still on its way
        return opened

    monkeypatch.setattr(turn_store, "open_turn", open_then_lag)
    caller = asyncio.ensure_future(start_turn(TurnRequest(session_key="abandoned", content="hello")))
    await asyncio.wait_for(stored.wait(), 5)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(100):
        answer = await Message.objects.filter(
            conversation__session_key="abandoned", role=Message.Role.ASSISTANT
        ).afirst()
        if answer.status != Message.Status.STREAMING:
            break
        await asyncio.sleep(0.05)
    assert answer.status == Message.Status.INTERRUPTED
    assert answer.error_code == "disconnected"
    user = await Message.objects.filter(
        conversation__session_key="abandoned", role=Message.Role.USER
    ).afirst()
    assert user.content == "hello"  # what was stored stays
    await pg_turns.close_pool()
