"""A live turn read directly (no job, no edge): stopping early, and fallback in the stored answer."""

from __future__ import annotations

import asyncio

import pytest

from conversations.models import Message
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start

pytestmark = pytest.mark.django_db(transaction=True)


async def all_events(turn) -> list:
    return [event async for event in turn.events()]


async def test_a_turn_stopped_before_its_stream_started_ends_interrupted_and_saved(openai_upstream):
    turn = await turn_start(TurnRequest(session_key="stop-early", content="hello [[chunks=3]]"))
    turn.stop()
    events = await asyncio.wait_for(all_events(turn), 5)
    assert [e.type for e in events] == ["started", "usage", "failed"]
    assert (events[-1].status, events[-1].code) == ("interrupted", "stopped")
    answer = await Message.objects.aget(pk=turn.message_id)
    assert (answer.status, answer.error_code, answer.content) == ("interrupted", "stopped", "")


async def test_a_turn_every_candidate_failed_records_the_last_one_tried(openai_upstream, settings):
    settings.OPENAI_MODELS = ["gpt-test", "backup-model"]  # the fallback model is one OpenAI serves
    settings.LLM_FALLBACKS = ["openai:backup-model"]
    openai_upstream.push_fault("503", times=1, model="gpt-test")
    openai_upstream.push_fault("503", times=1, model="backup-model")
    turn = await turn_start(TurnRequest(session_key="all-down", content="anyone? [[chunks=2]]"))
    events = await asyncio.wait_for(all_events(turn), 5)
    assert (events[0].provider, events[0].model) == ("openai", "gpt-test")
    assert (events[-1].type, events[-1].code) == ("failed", "provider_unavailable")
    answer = await Message.objects.aget(pk=turn.message_id)
    assert (answer.status, answer.provider, answer.model) == ("failed", "openai", "backup-model")
    assert answer.usage_estimated
