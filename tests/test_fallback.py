"""Retries and fallback: one stream over the candidates, each announced before its chunks.

The providers here are scripted in memory (a provider is any ``stream(request)``,
as Django's locmem mail backend is a backend); the wire is covered by the fake
upstream in tests/test_turns_http.py.
"""

from __future__ import annotations

import logging

import pytest

from conversations.turns.retry import Candidate, RetryPolicy, stream_with_retries
from providers.base import (
    AuthenticationFailed,
    ChatMessage,
    Provider,
    ProviderChunk,
    ProviderRequest,
    RateLimited,
    ResponseIdNotFound,
    Timeout,
    Unavailable,
)

QUICK = RetryPolicy(attempts=2, backoff=0.001, max_wait=1.0)


class ScriptedProvider(Provider):
    """Each call plays the next script: chunks are yielded, an exception is raised."""

    kind = "scripted"
    supports_response_chaining = True

    def __init__(self, name: str, *scripts: list) -> None:
        super().__init__(name=name, default_model=f"{name}-model")
        self.scripts = list(scripts)
        self.requests: list[ProviderRequest] = []

    async def stream(self, request: ProviderRequest):
        self.requests.append(request)
        for step in self.scripts.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield step


def build(model: str, chained: bool) -> ProviderRequest:
    return ProviderRequest(
        model=model,
        messages=(ChatMessage("user", "hi"),),
        previous_response_id="resp-0" if chained else None,
    )


async def collect(candidates, policy=QUICK, *, chained=False, into=None):
    items = [] if into is None else into
    async for item in stream_with_retries(candidates, build, policy, chained=chained):
        items.append(item)
    return items


def down(provider: str = "primary") -> Unavailable:
    return Unavailable(provider, "upstream down", status=503)


async def test_the_candidate_is_announced_before_its_chunks():
    primary = ScriptedProvider("primary", [ProviderChunk(text="a"), ProviderChunk(text="b")])
    items = await collect([(primary, "m1")])
    assert items == [Candidate(primary, "m1"), ProviderChunk(text="a"), ProviderChunk(text="b")]
    assert [r.model for r in primary.requests] == ["m1"]


async def test_retryable_error_before_the_first_token_is_retried_on_the_same_candidate():
    primary = ScriptedProvider("primary", [down()], [ProviderChunk(text="ok")])
    items = await collect([(primary, "m1")])
    assert items == [Candidate(primary, "m1"), ProviderChunk(text="ok")]
    assert len(primary.requests) == 2


async def test_chunks_without_text_before_an_error_do_not_stop_the_retry():
    primary = ScriptedProvider(
        "primary", [ProviderChunk(response_id="r"), down()], [ProviderChunk(text="ok")]
    )
    items = await collect([(primary, "m1")])
    assert items[-1] == ProviderChunk(text="ok")
    assert len(primary.requests) == 2


async def test_after_its_retries_the_next_candidate_is_announced_and_answers():
    primary = ScriptedProvider("primary", [down()], [down()], [down()])
    backup = ScriptedProvider("backup", [ProviderChunk(text="from backup")])
    items = await collect([(primary, "m1"), (backup, "m2")])
    assert items == [Candidate(primary, "m1"), Candidate(backup, "m2"), ProviderChunk(text="from backup")]
    assert len(primary.requests) == 3  # the first try and QUICK's 2 retries


async def test_error_after_the_first_token_is_raised_without_retry_or_fallback():
    primary = ScriptedProvider("primary", [ProviderChunk(text="half"), down()])
    backup = ScriptedProvider("backup", [ProviderChunk(text="never")])
    items: list = []
    with pytest.raises(Unavailable):
        await collect([(primary, "m1"), (backup, "m2")], into=items)
    assert items == [Candidate(primary, "m1"), ProviderChunk(text="half")]
    assert (len(primary.requests), backup.requests) == (1, [])


async def test_error_that_is_not_retryable_is_raised_at_once_without_fallback():
    primary = ScriptedProvider("primary", [AuthenticationFailed("primary", "bad key", status=401)])
    backup = ScriptedProvider("backup", [ProviderChunk(text="never")])
    with pytest.raises(AuthenticationFailed):
        await collect([(primary, "m1"), (backup, "m2")])
    assert (len(primary.requests), backup.requests) == (1, [])


async def test_when_every_candidate_fails_the_last_error_is_raised_after_its_candidate():
    primary = ScriptedProvider("primary", [down()], [down()], [down()])
    backup = ScriptedProvider("backup", *[[Timeout("backup", "too slow")]] * 3)
    items: list = []
    with pytest.raises(Timeout):
        await collect([(primary, "m1"), (backup, "m2")], into=items)
    assert items == [Candidate(primary, "m1"), Candidate(backup, "m2")]


async def test_retry_after_longer_than_max_wait_moves_on_to_the_next_candidate_at_once():
    primary = ScriptedProvider("primary", [RateLimited("primary", "slow down", retry_after=30)])
    backup = ScriptedProvider("backup", [ProviderChunk(text="ok")])
    items = await collect([(primary, "m1"), (backup, "m2")])
    assert items[-1] == ProviderChunk(text="ok")
    assert len(primary.requests) == 1


async def test_last_rate_limit_is_raised_with_its_retry_after():
    primary = ScriptedProvider("primary", [RateLimited("primary", "slow down", retry_after=30)])
    with pytest.raises(RateLimited) as raised:
        await collect([(primary, "m1")])
    assert raised.value.retry_after == 30


async def test_waits_are_the_retry_after_when_given_else_the_doubling_backoff(caplog):
    rate_limited = RateLimited("primary", "slow down", retry_after=0.01)
    primary = ScriptedProvider("primary", [down()], [down()], [rate_limited], [ProviderChunk(text="ok")])
    policy = RetryPolicy(attempts=3, backoff=0.002, max_wait=1.0)
    with caplog.at_level(logging.INFO, logger="conversations.turns.retry"):
        await collect([(primary, "m1")], policy)
    # only the retry loop's records: a background task of an earlier test may log "…; retrying" meanwhile
    waits = [r.args[-1] for r in caplog.records if r.name == "conversations.turns.retry" and "retry" in r.msg]
    assert waits == [0.002, 0.004, 0.01]


async def test_a_forgotten_chain_id_is_resent_as_history_on_the_same_candidate_without_a_new_announcement():
    primary = ScriptedProvider(
        "primary", [ResponseIdNotFound("primary", "no such response")], [ProviderChunk(text="ok")]
    )
    items = await collect([(primary, "m1")], chained=True)
    assert items == [Candidate(primary, "m1"), ProviderChunk(text="ok")]
    assert [r.previous_response_id for r in primary.requests] == ["resp-0", None]


async def test_only_the_first_candidate_continues_the_chain():
    primary = ScriptedProvider("primary", [down()], [down()], [down()])
    backup = ScriptedProvider("backup", [ProviderChunk(text="ok")])
    await collect([(primary, "m1"), (backup, "m2")], chained=True)
    assert primary.requests[0].previous_response_id == "resp-0"
    assert backup.requests[0].previous_response_id is None
