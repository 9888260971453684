"""The provider call with our one retry policy: retry and fall back only before the first token.

After the first token has been relayed, an error ends the turn honestly (the
partial text is kept); retrying then would duplicate text (LiteLLM's bug).

Fallback wraps the candidates the way pydantic-ai's ``FallbackModel`` wraps
models: one stream that tries each in turn. Who is answering travels in the
stream itself (a :class:`Candidate` before that candidate's chunks), so no
shared object is updated behind the reader's back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from conversations.telemetry import stages
from conversations.telemetry.base import NO_TURN, TurnTrace
from providers.base import Provider, ProviderChunk, ProviderError, ProviderRequest, ResponseIdNotFound

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 2  # retries per candidate, after the first try
    backoff: float = 0.5  # seconds, doubled each retry
    max_wait: float = 10.0  # a Retry-After longer than this moves on to the next candidate


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider and model that may answer: the resolved one first, then ``LLM_FALLBACKS`` in order."""

    provider: Provider
    model: str


RequestBuilder = Callable[[str, bool], ProviderRequest]  # (model, chained) -> request


async def stream_with_retries(
    candidates: Sequence[tuple[Provider, str]],
    build: RequestBuilder,
    policy: RetryPolicy,
    *,
    chained: bool = False,
    trace: TurnTrace = NO_TURN,
) -> AsyncIterator[Candidate | ProviderChunk]:
    """The reply of the first candidate that answers, each candidate announced before it is tried.

    Every chunk comes from the :class:`Candidate` yielded last; an error raised
    after a candidate was announced is that candidate's. A retryable error before
    the first token is retried per ``policy`` (a Retry-After is honoured up to
    ``max_wait``), then the next candidate is tried; any other error, or any
    error after the first token, is raised at once. When every candidate fails,
    the last retryable error is raised. Each provider call is one attempt of ``trace``.
    """
    last_error: ProviderError | None = None
    for provider, model in candidates:
        yield Candidate(provider, model)
        chain = chained and provider is candidates[0][0] and provider.supports_response_chaining
        attempt = 0
        while True:
            relayed_text = False
            request = build(model, chain)
            stream = provider.stream(request)
            if stages.on:
                stages.mark("provider_call")
            try:
                with trace.attempt(provider, request) as call:
                    async for chunk in stream:
                        call.chunk(chunk)
                        if not relayed_text and chunk.text:
                            relayed_text = True
                            if stages.on:
                                stages.mark("first_chunk")
                        yield chunk
                return
            except ResponseIdNotFound:
                if relayed_text or not chain:
                    raise
                logger.info("provider %s forgot the chained response id; resending history", provider.name)
                chain = False
                continue
            except ProviderError as exc:
                if relayed_text or not exc.retryable:
                    raise
                last_error = exc
                wait = exc.retry_after if exc.retry_after is not None else policy.backoff * (2**attempt)
                if attempt >= policy.attempts or wait > policy.max_wait:
                    logger.warning(
                        "provider %s failed before the first token (%s); next candidate",
                        provider.name,
                        exc.code,
                    )
                    break
                attempt += 1
                logger.info(
                    "provider %s: %s before the first token; retry %d in %.2fs",
                    provider.name,
                    exc.code,
                    attempt,
                    wait,
                )
                await asyncio.sleep(wait)
            finally:
                await stream.aclose()
    assert last_error is not None
    raise last_error
