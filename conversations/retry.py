"""The provider call with our one retry policy: retry and fall back only before the first token.

After the first token has been relayed, an error ends the turn honestly (the
partial text is kept); retrying then would duplicate text (LiteLLM's bug).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from providers.base import Provider, ProviderChunk, ProviderError, ProviderRequest, ResponseIdNotFound

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 2  # retries per candidate, after the first try
    backoff: float = 0.5  # seconds, doubled each retry
    max_wait: float = 10.0  # a Retry-After longer than this moves on to the next candidate


@dataclass(slots=True)
class ServedBy:
    """Which candidate is answering; updated as the stream moves through retries and fallbacks."""

    provider: Provider
    model: str


RequestBuilder = Callable[[str, bool], ProviderRequest]  # (model, chained) -> request


async def stream_with_retries(
    candidates: Sequence[tuple[Provider, str]],
    build: RequestBuilder,
    policy: RetryPolicy,
    served: ServedBy,
    *,
    chained: bool = False,
) -> AsyncIterator[ProviderChunk]:
    last_error: ProviderError | None = None
    for provider, model in candidates:
        served.provider, served.model = provider, model
        chain = chained and provider is candidates[0][0] and provider.supports_response_chaining
        attempt = 0
        while True:
            relayed_text = False
            stream = provider.stream(build(model, chain))
            try:
                async for chunk in stream:
                    relayed_text = relayed_text or bool(chunk.text)
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
