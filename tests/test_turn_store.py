"""The native PostgreSQL turn writes (pg_writes) store exactly what the ORM reference (orm_writes) stores,
both from the one definition of their rules (turn_rules), which recovery's closing write uses too."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from accounts.keys import api_key_create
from billing.budgets import BudgetSpec, Claim
from billing.models import Budget
from conversations.artifacts import CodeBlock
from conversations.db import run_db
from conversations.errors import TurnInProgress, TurnRejected
from conversations.models import Artifact, Conversation, Message
from conversations.turns import pg_pool, pg_writes, recovery, store
from conversations.turns.orm_writes import turn_finish, turn_open
from conversations.turns.replay_buffer import get_replay_buffer
from conversations.turns.rules import (
    BUSY_MESSAGE,
    CLOSING_FIELDS,
    ExistingAnswer,
    OpenedTurn,
    TurnOpening,
    TurnOutcome,
)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the native path is PostgreSQL's"
)


async def orm_open(opening: TurnOpening):
    return await run_db(turn_open, opening)


async def orm_finish(conversation_id: str, message_id: str, outcome: TurnOutcome, **guard) -> bool:
    return await run_db(turn_finish, conversation_id, message_id, outcome, **guard)


PATHS = {
    "orm": (orm_open, orm_finish),
    "native": (pg_writes.turn_open, pg_writes.turn_finish),
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


def failed(text: str, response_id: str = "") -> TurnOutcome:
    return TurnOutcome(
        status=Message.Status.FAILED,
        content=text,
        provider="openai-responses",
        model="gpt-test",
        response_id=response_id,
        error_code="upstream_error",
        error_message="boom",
        usage_estimated=True,
        input_tokens=1,
        output_tokens=1,
    )


async def scenario(path: str, owner_id: int | None) -> tuple[list, dict]:
    """The same sequence of turns through one path; returns what each call answered and what was stored."""
    open_, finish = PATHS[path]
    key = f"parity-{path}-{owner_id}"
    answers: list = []
    first = await open_(
        opening(
            key,
            "Hello there\nsecond line",
            owner_id,
            system="Be brief.",
            client_message_id="c1",
            metadata={"source": "parity"},
        )
    )
    assert isinstance(first, OpenedTurn)
    answers.append(("first", first.system, first.history, first.previous_response_id, first.user_content))
    with pytest.raises(TurnInProgress) as busy:  # one answer at a time
        await open_(opening(key, "too soon", owner_id))
    answers.append(
        ("busy", busy.value.message, busy.value.details == {"message_id": first.assistant_message_id})
    )
    repeat = await open_(opening(key, "Hello there", owner_id, client_message_id="c1"))
    assert isinstance(repeat, ExistingAnswer)
    answers.append(("repeat while streaming", repeat.message_id == first.assistant_message_id, repeat.status))
    block = CodeBlock(0, "python", "a.py", "print(1)\n")
    closing = complete("Hi!", "resp_1", (block,))  # complete with a response id: the session chains
    answers.append(("closed", await finish(first.conversation_id, first.assistant_message_id, closing)))
    answers.append(("saved again", await finish(first.conversation_id, first.assistant_message_id, closing)))
    late = failed("late")  # e.g. recovery after the turn closed it: the guard leaves the answer alone
    answers.append(
        (
            "guarded",
            await finish(first.conversation_id, first.assistant_message_id, late, only_if_streaming=True),
        )
    )
    repeat = await open_(opening(key, "Hello there", owner_id, client_message_id="c1"))
    answers.append(("repeat when done", repeat.message_id == first.assistant_message_id, repeat.status))
    second = await open_(opening(key, "And now?", owner_id))
    answers.append(("second", second.system, second.history, second.previous_response_id))
    # failed, even with a response id: the session does not chain from it
    await finish(second.conversation_id, second.assistant_message_id, failed("partial", "resp_failed"))
    third = await open_(opening(key, "Go on", owner_id))
    answers.append(("third", third.history, third.previous_response_id))
    answers.append(  # complete without a response id: the session keeps its chain id
        (
            "guarded while streaming",
            await finish(
                third.conversation_id, third.assistant_message_id, complete("Done."), only_if_streaming=True
            ),
        )
    )
    other_model = await open_(opening(key, "Switch", owner_id, model="gpt-other", system="Be long."))
    answers.append(("other model", other_model.system, other_model.history, other_model.previous_response_id))
    await finish(other_model.conversation_id, other_model.assistant_message_id, complete("Ok.", "resp_2"))
    named = await open_(opening(key, "Now you", owner_id, model="gpt-named"))
    answers.append(("named model", named.provider, named.model, named.previous_response_id))
    await finish(named.conversation_id, named.assistant_message_id, complete("Yes.", "resp_3"))
    # naming no model, the turn keeps the session's (gpt-named, not the default passed) and chains
    kept = await open_(opening(key, "Still?", owner_id, model="gpt-default", session_model=True))
    answers.append(("session model", kept.provider, kept.model, kept.previous_response_id))
    fresh = await open_(opening(f"{key}-new", "New", owner_id, model="gpt-default", session_model=True))
    answers.append(("new session", fresh.provider, fresh.model))
    stored = await sync_to_async(snapshot)(first.conversation_id)
    stored["new session"] = await sync_to_async(snapshot)(fresh.conversation_id)
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


@postgresql_only
@pytest.mark.django_db(transaction=True)
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
    assert stored["session"]["metadata"] == {"source": "parity"}
    assert stored["session"]["system_prompt"] == "Be long."
    # chained by the complete close with a response id; neither the failed one nor the id-less one chains
    assert stored["session"]["last_response_id"] == "resp_3"
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 6
    assert [m["parent"] for m in stored["messages"]] == [None, *range(11)]
    assert [m["status"] for m in stored["messages"][1::2]] == [
        "complete",
        "failed",
        "complete",
        "complete",
        "complete",
        "streaming",
    ]
    # closed answers record who answered (the outcome's model); the open one whom the opening chose
    assert [m["model"] for m in stored["messages"][1::2]] == ["gpt-test"] * 5 + ["gpt-named"]
    assert stored["session"]["model"] == "gpt-named"
    assert stored["new session"]["session"]["model"] == "gpt-default"
    assert stored["new session"]["messages"][1]["model"] == "gpt-default"
    assert answers[1] == ("busy", BUSY_MESSAGE, True)
    assert [a[1] for a in answers[3:6]] == [True, True, False]  # closed, saved again, guard refused
    assert len(stored["artifacts"]) == 1  # the repeated save kept the one artifact
    assert answers[7][3] == "resp_1"  # the second turn chains; so does the third
    assert answers[8][2] == "resp_1"
    assert answers[9] == ("guarded while streaming", True)
    assert answers[10][3] is None  # the turn on another model does not
    assert answers[11] == ("named model", "openai-responses", "gpt-named", None)
    assert answers[12] == ("session model", "openai-responses", "gpt-named", "resp_3")
    assert answers[13] == ("new session", "openai-responses", "gpt-default")
    await pg_pool.close_pool()


def stored_state(owner_id: int | None, key: str) -> dict:
    """Every column of the session under ``key`` (None when there is none) and its messages' ids."""
    conversation = Conversation.objects.filter(owner_id=owner_id, session_key=key).values().first()
    messages = list(Message.objects.filter(conversation__session_key=key).values_list("id", flat=True))
    return {"session": conversation, "messages": sorted(map(str, messages))}


def budget_state(used_up: str, made: tuple[str, ...]) -> tuple:
    """The used-up budget's row, and whether those made from a default hold nothing (or do not exist).

    The native path keeps a row it made from a default (spent and reserved at zero: the default
    written down, nothing of the turn); the ORM path's transaction drops it with the rest."""
    columns = ("amount", "spent", "reserved", "reserved_for", "period_start")
    row = Budget.objects.filter(subject=used_up).values_list(*columns).get()
    held = Budget.objects.filter(subject__in=made).values_list("spent", "reserved", "reserved_for")
    return row, all(values == (Decimal(0), Decimal(0), None) for values in held)


async def refusals(path: str, owner_id: int | None) -> list:
    """Openings each path refuses, and what they left behind: nothing, on a new session or an old one."""
    open_, finish = PATHS[path]
    key = f"over-{path}-{owner_id}"
    used_up, made = f"used-up-{path}", (f"zero-{path}", f"roomy-{path}")
    await Budget.objects.acreate(
        scope="key", subject=used_up, amount=Decimal(1), spent=Decimal(1), period="none"
    )
    refused_turns = {
        "used up": {"claims": (Claim("key", used_up, None),)},
        # the BUDGET_DEFAULT_USER=0/day: no row yet, made from the default
        "zero by default": {"claims": (Claim("key", made[0], BudgetSpec(Decimal(0), "day")),)},
        # a budget with room, a model without a price (rules.opening_refusal)
        "no price": {
            "claims": (Claim("key", made[1], BudgetSpec(Decimal(5), "day")),),
            "model": "gpt-unpriced",
        },
    }
    state = sync_to_async(stored_state)
    budgets = sync_to_async(budget_state)

    async def refuse(turn: dict, content: str = "my private question") -> tuple:
        with pytest.raises(TurnRejected) as refused:
            await open_(opening(key, content, owner_id, reserve_output_tokens=9, **turn))
        # what differs between the runs: seconds from now, the streaming answer's id
        details = {k: v for k, v in refused.value.details.items() if k not in ("retry_after", "message_id")}
        return refused.value.code, refused.value.status, refused.value.message, details

    answers: list = []
    for name, turn in refused_turns.items():
        answers.append((name, *await refuse(turn)))
        answers.append((f"{name}: nothing stored", await state(owner_id, key)))
    answers.append(("budgets unchanged", await budgets(used_up, made)))
    first = await open_(opening(key, "allowed", owner_id))
    before = await state(owner_id, key)
    # the opening's other refusal: an answer still streaming (on a new session it cannot happen)
    answers.append(("busy", *await refuse(refused_turns["no price"], "too soon")))
    answers.append(("busy: session unchanged", await state(owner_id, key) == before))
    await finish(first.conversation_id, first.assistant_message_id, complete("Hi!", "resp_1"))
    before = await state(owner_id, key)
    for name, turn in refused_turns.items():
        answers.append((f"{name}, again", *await refuse(turn)))
        answers.append((f"{name}: session unchanged", await state(owner_id, key) == before))
    answers.append(("budgets still unchanged", await budgets(used_up, made)))
    return answers


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("owned", [False, True], ids=["anonymous", "owned"])
async def test_a_refused_opening_stores_nothing_on_either_path(owned, settings):
    settings.PRICES = {"openai:gpt-test": {"input": 0, "output": 10}}  # and gpt-unpriced has none
    owner_id = None
    if owned:
        owner = await sync_to_async(get_user_model().objects.create_user)("parity", password="x")
        owner_id = owner.pk
    orm = await refusals("orm", owner_id)
    native = await refusals("native", owner_id)
    assert native == orm
    said = {answer[0]: answer[1:] for answer in orm}
    refused = {
        "used up": "budget_exceeded",
        "zero by default": "budget_exceeded",
        "no price": "price_unknown",
    }
    for name, code in refused.items():
        assert said[name][0] == said[f"{name}, again"][0] == code
        assert said[f"{name}: nothing stored"] == ({"session": None, "messages": []},)
        assert said[f"{name}: session unchanged"] == (True,)
    assert said["busy"][:2] == ("turn_in_progress", 409) and said["busy: session unchanged"] == (True,)
    untouched = ((Decimal(1), Decimal(1), Decimal(0), None, None), True)
    assert said["budgets unchanged"] == said["budgets still unchanged"] == (untouched,)
    await pg_pool.close_pool()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("native", [True, False] if connection.vendor == "postgresql" else [False])
def test_a_turn_refused_for_budget_lists_no_session(asgi_server, openai_upstream, settings, user, native):
    settings.TURN_DB_ASYNC = native
    settings.PRICES = {"openai:gpt-test": {"input": 0, "output": 10}}  # a budget refuses it, not its price
    settings.BUDGET_DEFAULT_USER = "0/day"
    headers = {"X-API-Key": api_key_create(owner=user, name="over")[1]}
    with httpx.Client(base_url=asgi_server.url, headers=headers, timeout=20) as http:
        refused = http.post("/api/sessions/over-1/messages", json={"content": "my private question"})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert http.get("/api/sessions").json()["results"] == []
        assert http.get("/api/sessions/over-1").status_code == 404
    assert not Conversation.objects.exists() and not Message.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
async def test_the_store_uses_the_native_path_on_postgresql_and_the_orm_when_switched_off(settings):
    assert store.native_enabled()
    settings.TURN_DB_ASYNC = False
    assert not store.native_enabled()


@postgresql_only
@pytest.mark.django_db(transaction=True)
async def test_a_turn_whose_caller_goes_away_while_it_is_stored_is_closed_interrupted(monkeypatch, settings):
    """The opening write may commit after the client left (it is on the wire already): no answer stays streaming."""
    import asyncio

    from conversations.turns.request import TurnRequest
    from conversations.turns.service import turn_start

    real_open = store.turn_open
    stored = asyncio.Event()

    async def open_then_lag(opening):
        opened = await real_open(opening)
        stored.set()
        await asyncio.sleep(0.3)  # committed; the answer to the caller is still on its way
        return opened

    monkeypatch.setattr(store, "turn_open", open_then_lag)
    caller = asyncio.ensure_future(turn_start(TurnRequest(session_key="abandoned", content="hello")))
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
    await pg_pool.close_pool()


def test_the_closing_write_sets_every_field_of_an_outcome_but_its_artifacts_and_the_completion_time():
    outcome_fields = {f.name for f in fields(TurnOutcome)} - {"artifacts"}
    assert set(CLOSING_FIELDS) == outcome_fields | {"completed_at"}
    assert set(CLOSING_FIELDS) <= {f.name for f in Message._meta.concrete_fields}


@pytest.mark.django_db(transaction=True)
async def test_recovery_closes_an_orphan_with_the_closing_write_keeping_its_provider_and_model(settings):
    settings.REDIS_URL = ""  # one process: at start-up every streaming answer is an orphan
    opened = await orm_open(opening("orphan", "Tell me", provider="anthropic", model="claude-test"))
    deltas = [{"type": "delta", "text": "Par"}, {"type": "delta", "text": "tial"}]
    await get_replay_buffer().append(opened.assistant_message_id, deltas)
    assert await recovery.sweep_orphans(local_running=set(), startup=True) == [opened.assistant_message_id]
    answer = await Message.objects.aget(pk=opened.assistant_message_id)
    assert (answer.status, answer.content) == (Message.Status.INTERRUPTED, "Partial")
    assert (answer.provider, answer.model) == ("anthropic", "claude-test")
    assert (answer.error_code, answer.error_message) == ("server_stopped", recovery.ABANDONED_MESSAGE)
    assert (answer.input_tokens, answer.output_tokens, answer.usage_estimated) == (None, 2, True)
    assert answer.completed_at is not None
    assert await recovery.sweep_orphans(local_running=set(), startup=True) == []


def budget_rows(subjects: tuple[str, ...], answer_ids: dict[str, str]) -> list[tuple]:
    """The budgets' columns, each answer that reserved named by its role in the scenario."""
    rows = Budget.objects.filter(subject__in=subjects).order_by("subject")
    named = {value: name for name, value in answer_ids.items()}
    return [
        (b.amount, b.spent, b.reserved, named.get(str(b.reserved_for), b.reserved_for), b.period_start)
        for b in rows
    ]


async def budgeted(path: str, yesterday) -> list:
    """Turns charged to budgets through one path: what each reserved, refused and settled."""
    open_, finish = PATHS[path]
    daily, lasting = f"daily-{path}", f"lasting-{path}"
    await Budget.objects.acreate(
        scope="key",
        subject=daily,
        amount=Decimal(1),
        spent=Decimal("0.5"),
        period="day",
        period_start=yesterday,
    )
    await Budget.objects.acreate(
        scope="key", subject=lasting, amount=Decimal(10), spent=Decimal(2), period="none"
    )
    claims = (Claim("key", daily, None), Claim("key", lasting, None))
    subjects, ids = (daily, lasting), {}
    rows = sync_to_async(budget_rows)
    answers: list = []

    async def answer_of(opened: OpenedTurn) -> tuple:
        stored = await Message.objects.aget(pk=opened.assistant_message_id)
        budgets = {pk: subject for pk, subject in [(b.pk, b.subject) async for b in Budget.objects.all()]}
        return (
            stored.reserved_cost,
            [budgets[pk].split("-")[0] for pk in stored.budget_ids],
            opened.max_tokens,
        )

    key = f"budgeted-{path}"
    # the daily budget's period rolled over: yesterday's spending is dropped as it reserves
    first = await open_(
        opening(key, "x" * 40, claims=claims, reserve_input_tokens=10, reserve_output_tokens=20)
    )
    ids["first"] = first.assistant_message_id
    answers.append(("reserved", await answer_of(first), await rows(subjects, ids)))
    with pytest.raises(TurnInProgress):  # busy: nothing more reserved
        await open_(opening(key, "too soon", claims=claims, reserve_output_tokens=20))
    answers.append(("busy: budgets unchanged", await rows(subjects, ids)))
    spent = complete("Hi!")
    spent = TurnOutcome(
        **{**{f.name: getattr(spent, f.name) for f in fields(spent)}, "cost": Decimal("0.0001")}
    )
    answers.append(("settled", await finish(first.conversation_id, first.assistant_message_id, spent)))
    answers.append(("settled again", await finish(first.conversation_id, first.assistant_message_id, spent)))
    answers.append(("settled once", await rows(subjects, ids)))
    # the history is part of the second turn's reservation; its close has no price: nothing spent
    second = await open_(opening(key, "y", claims=claims, reserve_input_tokens=1, reserve_output_tokens=3000))
    ids["second"] = second.assistant_message_id
    answers.append(("reserved with history", await answer_of(second), await rows(subjects, ids)))
    unpriced = TurnOutcome(**{**{f.name: getattr(spent, f.name) for f in fields(spent)}, "cost": None})
    await finish(second.conversation_id, second.assistant_message_id, unpriced)
    answers.append(("released, nothing spent", await rows(subjects, ids)))
    # the daily budget is used up now: refused, nothing reserved
    await Budget.objects.filter(subject=daily).aupdate(spent=Decimal(1))
    with pytest.raises(TurnRejected) as refused:
        await open_(opening(key, "full", claims=claims, reserve_output_tokens=20))
    answers.append(
        ("full", refused.value.code, refused.value.details.get("budget"), await rows(subjects, ids))
    )
    return answers


@postgresql_only
@pytest.mark.django_db(transaction=True)
async def test_budgets_reserve_reset_refuse_and_settle_alike_on_either_path(settings):
    settings.PRICES = {"openai:gpt-test": {"input": 1, "output": 2}}  # per million tokens
    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    orm = await budgeted("orm", yesterday)
    native = await budgeted("native", yesterday)
    assert native == orm
    said = {answer[0]: answer[1:] for answer in orm}
    (cost, charged, max_tokens), (daily, lasting) = said["reserved"]
    # 10 input tokens at 1/M, 20 output at 2/M (a new session: no history)
    assert cost == Decimal("0.00005") and charged == ["daily", "lasting"] and max_tokens == 20
    assert daily == (Decimal(1), Decimal(0), cost, "first", today)  # yesterday's 0.5 dropped: a new day
    assert lasting == (Decimal(10), Decimal(2), cost, "first", None)
    assert said["busy: budgets unchanged"] == ([daily, lasting],)
    assert said["settled"] == said["settled again"] == (True,)
    settled = said["settled once"][0]
    assert [row[1:3] for row in settled] == [(Decimal("0.0001"), 0), (Decimal("2.0001"), 0)]
    (second_cost, _, _), _rows = said["reserved with history"]
    # 1 input token and the history's 11 (43 characters: "x" * 40, "Hi!") at 1/M, 3000 at 2/M
    assert second_cost == Decimal("0.006012")
    assert [row[1:3] for row in said["released, nothing spent"][0]] == [
        (Decimal("0.0001"), 0),
        (Decimal("2.0001"), 0),
    ]
    assert said["full"][:2] == ("budget_exceeded", "key")
    await pg_pool.close_pool()


# --- a tool round (issue 30): both paths store the same parts and refuse the same results ---------
def calls_outcome(*calls: tuple[str, str, str], text: str = "Let me look.") -> TurnOutcome:
    from conversations.turns.parts import answer_parts
    from providers.base import ToolCall

    made = [ToolCall(call_id, name, arguments) for call_id, name, arguments in calls]
    return TurnOutcome(
        status=Message.Status.COMPLETE,
        content=text,
        provider="openai-responses",
        model="gpt-test",
        finish_reason="tool_calls",
        input_tokens=4,
        output_tokens=6,
        parts=tuple(answer_parts(text, made, complete=True)),
    )


def results_opening(
    key: str, owner_id: int | None, *results: tuple[str, str], answers_calls: bool = True, **fields
) -> TurnOpening:
    from conversations.turns.parts import tool_result_part
    from providers.base import ToolResult

    parts = tuple(tool_result_part(ToolResult(call_id, output)) for call_id, output in results)
    text = "\n".join(output for _, output in results)
    return opening(
        key, text, owner_id, user_role="tool", user_parts=parts, answers_calls=answers_calls, **fields
    )


async def tool_round(path: str, owner_id: int | None) -> tuple[list, dict, dict]:
    open_, finish = PATHS[path]
    key = f"tools-{path}-{owner_id}"
    answers: list = []

    async def refuse(turn: TurnOpening) -> tuple:
        with pytest.raises(TurnRejected) as refused:
            await open_(turn)
        return refused.value.code, refused.value.status, refused.value.message

    hello = await open_(opening(key, "Hello", owner_id))
    await finish(hello.conversation_id, hello.assistant_message_id, complete("Hi!"))
    answers.append(("results before any call", *await refuse(results_opening(key, owner_id, ("c1", "x")))))
    first = await open_(opening(key, "Weather in Rome and Oslo?", owner_id))
    two_calls = calls_outcome(("c1", "weather", '{"city":"Rome"}'), ("c2", "weather", '{"city":"Oslo"}'))
    await finish(first.conversation_id, first.assistant_message_id, two_calls)
    answers.append(("unknown id", *await refuse(results_opening(key, owner_id, ("c1", "21"), ("c9", "?")))))
    answers.append(("missing result", *await refuse(results_opening(key, owner_id, ("c1", "21")))))
    before = await sync_to_async(stored_state)(owner_id, key)
    results = results_opening(key, owner_id, ("c2", "3 C"), ("c1", "21 C"), client_message_id="r1")
    second = await open_(results)
    assert isinstance(second, OpenedTurn)
    answers.append(("refusals stored nothing", len(before["messages"])))  # hello, hi, question, calls
    answers.append(("continued", second.history, second.new_message, second.user_role))
    repeat = await open_(results)
    answers.append(("repeat", type(repeat).__name__, repeat.message_id == second.assistant_message_id))
    await finish(second.conversation_id, second.assistant_message_id, complete("Rome 21 C, Oslo 3 C."))
    answers.append(
        ("answered already", *await refuse(results_opening(key, owner_id, ("c1", "21"), ("c2", "3"))))
    )
    third = await open_(opening(key, "And Paris?", owner_id))
    await finish(third.conversation_id, third.assistant_message_id, calls_outcome(("c3", "weather", "{}")))
    fourth = await open_(opening(key, "Never mind.", owner_id))  # the call left unanswered
    answers.append(("unanswered calls are not sent", fourth.history[-1], fourth.history[3]))
    answers.append(("stored results named", [r.name for r in fourth.history[4].tool_results]))
    await finish(fourth.conversation_id, fourth.assistant_message_id, complete("Ok."))
    fresh = f"{key}-fresh"
    answers.append(("new session", *await refuse(results_opening(fresh, owner_id, ("c1", "21")))))
    nothing = await sync_to_async(stored_state)(owner_id, fresh)
    # a client that sends its own transcript (/v1/chat/completions): the results are stored as sent
    carried = await open_(results_opening(f"{key}-carried", owner_id, ("c7", "ok"), answers_calls=False))
    answers.append(("carried", carried.user_role, carried.new_message.tool_results))
    carried_rows = await sync_to_async(snapshot)(carried.conversation_id)
    answers.append(("carried rows", [(m["role"], m["parts"]) for m in carried_rows["messages"]]))
    return answers, await sync_to_async(snapshot)(hello.conversation_id), nothing


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("owned", [False, True], ids=["anonymous", "owned"])
async def test_a_tool_round_is_stored_and_refused_alike_on_either_path(owned):
    owner_id = None
    if owned:
        owner = await sync_to_async(get_user_model().objects.create_user)("parity", password="x")
        owner_id = owner.pk
    orm_answers, orm_rows, orm_fresh = await tool_round("orm", owner_id)
    native_answers, native_rows, native_fresh = await tool_round("native", owner_id)
    assert native_answers == orm_answers
    assert native_rows == orm_rows
    said = {answer[0]: answer[1:] for answer in orm_answers}
    assert said["results before any call"][:2] == ("invalid_tool_results", 422)
    assert said["unknown id"][:2] == ("invalid_tool_results", 422) and "c9" in said["unknown id"][2]
    assert said["missing result"][:2] == ("invalid_tool_results", 422) and "c2" in said["missing result"][2]
    assert said["answered already"][:2] == ("tool_calls_answered", 409)
    assert said["new session"][:2] == ("invalid_tool_results", 422)
    assert orm_fresh == native_fresh == {"session": None, "messages": []}
    assert said["refusals stored nothing"] == (4,)
    history, new_message, role = said["continued"]
    assert role == "tool" and [r.call_id for r in new_message.tool_results] == ["c2", "c1"]
    assert [r.name for r in new_message.tool_results] == ["weather", "weather"]  # named after the calls
    assert [c.id for c in history[-1].tool_calls] == ["c1", "c2"]  # the calls are sent with their results
    assert said["repeat"] == ("ExistingAnswer", True)
    assert said["carried rows"][0][0] == (
        "tool",
        [{"type": "tool_result", "call_id": "c7", "name": "", "output": "ok", "is_error": False}],
    )
    assert said["stored results named"] == (["weather", "weather"],)
    last_before, called = said["unanswered calls are not sent"]
    assert last_before.role == "assistant" and last_before.tool_calls == ()  # c3 never answered
    assert called.tool_calls != ()  # c1/c2 were answered: sent
    roles = [(m["role"], m["finish_reason"], m["parent"]) for m in orm_rows["messages"]]
    assert roles[2:6] == [
        ("user", "", 1),
        ("assistant", "tool_calls", 2),
        ("tool", "", 3),
        ("assistant", "stop", 4),
    ]
    tool_message = orm_rows["messages"][4]
    assert [p["call_id"] for p in tool_message["parts"]] == ["c2", "c1"]
    assert orm_rows["messages"][3]["parts"][1] == {
        "type": "tool_call",
        "id": "c1",
        "name": "weather",
        "arguments": '{"city":"Rome"}',
        "input": {"city": "Rome"},
    }
    await pg_pool.close_pool()
