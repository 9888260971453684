"""Scenario 9: concurrent turns on one session, and parallel retries of one message."""

import asyncio
import json

import httpx
import pytest

from conversations.models import Message
from tests.reliability.conftest import SOAK

pytestmark = pytest.mark.django_db(transaction=True)


async def post(client: httpx.AsyncClient, key: str, body: dict) -> tuple[int, list[dict]]:
    async with client.stream(
        "POST", f"/api/sessions/{key}/messages", json=body, headers={"Accept": "application/x-ndjson"}
    ) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, [response.json()]
        return 200, [json.loads(line) async for line in response.aiter_lines() if line]


async def burst(base_url: str, key: str, bodies: list[dict]) -> list[tuple[int, list[dict]]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await asyncio.gather(*(post(client, key, body) for body in bodies))


def test_parallel_retries_of_one_client_message_id_make_exactly_one_upstream_call(
    live, fake_upstream_server, ledger
):
    n = 12 * SOAK
    body = {"content": "exactly once [[chunks=4 delay=0.05]]", "client_message_id": "retry-me"}
    results = asyncio.run(burst(live.url, "idem", [body] * n))
    ledger.add("turns_attempted", n)
    statuses = sorted(status for status, _ in results)
    assert set(statuses) <= {200, 409}
    calls = [r for r in fake_upstream_server.requests if r.path.endswith("/chat/completions")]
    assert len(calls) == 1
    assert Message.objects.filter(role="user", client_message_id="retry-me").count() == 1
    assert Message.objects.filter(role="assistant").count() == 1
    answers = {events[-1]["message_id"] for status, events in results if status == 200}
    assert len(answers) == 1  # every 200 is the one turn (live or replayed)
    ledger.add("turns_persisted", 1)
    ledger.add("turns_refused", n - 1)  # the same message again: replayed or 409, never a second turn


def test_two_turns_at_once_on_one_session_are_never_interleaved(live, ledger):
    bodies = [{"content": f"racer {i} [[chunks=5 delay=0.05]]"} for i in range(6 * SOAK)]
    results = asyncio.run(burst(live.url, "race", bodies))
    ledger.add("turns_attempted", len(bodies))
    accepted = [events for status, events in results if status == 200]
    refused = [events for status, events in results if status == 409]
    assert len(accepted) + len(refused) == len(bodies)
    assert accepted, "one turn must win"
    assert all(e[0]["error"]["code"] == "turn_in_progress" for e in refused)
    messages = list(Message.objects.filter(conversation__session_key="race").order_by("created_at"))
    # user, assistant, user, assistant…: each answer directly follows its own question
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert (question.role, answer.role) == ("user", "assistant")
        assert answer.parent_id == question.pk
        assert answer.status == "complete"
    assert len(messages) == 2 * len(accepted)
    ledger.add("turns_persisted", len(accepted))
    ledger.add("turns_refused", len(refused))
