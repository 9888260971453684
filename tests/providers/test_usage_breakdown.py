"""Cached input and reasoning tokens, as each adapter records them from its provider's usage.

The fake upstream reports them only when asked (``[[cached=N reasoning=M]]``), in each provider's own
place: OpenAI chat ``prompt_tokens_details`` / ``completion_tokens_details``, Responses
``input_tokens_details`` / ``output_tokens_details``, Gemini ``cachedContentTokenCount`` /
``thoughtsTokenCount``, Z.AI ``prompt_tokens_details`` / ``completion_tokens_details``. Every adapter
streams (there is no non-streamed path to cover).
"""

from __future__ import annotations

import pytest

from providers.base import Usage
from tests.fake_upstream import count_words
from tests.providers.conftest import HTTP_ADAPTERS, ask

#: Adapters whose upstream sends a count of 0 (Gemini leaves zeros out).
SENDS_ZEROS = ("openai", "openai-responses", "openai-compatible", "zai")


@pytest.mark.parametrize("kind", HTTP_ADAPTERS)
async def test_records_the_cached_input_and_reasoning_tokens_the_upstream_reports(
    kind, make_provider, fake_upstream
):
    text = "think first [[chunks=3 cached=2 reasoning=4]]"

    usage = (await make_provider(kind).complete(ask(text))).usage

    words = count_words(text)
    # Same meaning for every provider: cached inside input, reasoning inside output (and total).
    assert usage == Usage(words, 3 + 4, words + 7, cached_input_tokens=2, reasoning_tokens=4)


@pytest.mark.parametrize("kind", HTTP_ADAPTERS)
async def test_records_none_when_the_upstream_reports_neither(kind, make_provider, fake_upstream):
    usage = (await make_provider(kind).complete(ask("no breakdown [[chunks=3]]"))).usage

    assert usage is not None and not usage.estimated
    assert (usage.cached_input_tokens, usage.reasoning_tokens) == (None, None)


@pytest.mark.parametrize("kind", SENDS_ZEROS)
async def test_a_reported_zero_is_recorded_as_zero_not_none(kind, make_provider, fake_upstream):
    usage = (await make_provider(kind).complete(ask("nothing cached [[cached=0 reasoning=0]]"))).usage

    assert (usage.cached_input_tokens, usage.reasoning_tokens) == (0, 0)


async def test_gemini_counts_thoughts_as_output_though_candidates_leave_them_out(
    make_provider, fake_upstream
):
    # The fake sends candidatesTokenCount=3 and thoughtsTokenCount=5: Google bills both as output.
    usage = (await make_provider("gemini").complete(ask("ponder [[chunks=3 reasoning=5]]"))).usage

    assert (usage.output_tokens, usage.reasoning_tokens, usage.cached_input_tokens) == (8, 5, None)
    assert usage.total_tokens == usage.input_tokens + 8


async def test_zai_records_cached_input_without_a_reasoning_breakdown(make_provider, fake_upstream):
    usage = (await make_provider("zai").complete(ask("glm cache [[chunks=2 cached=1]]"))).usage

    assert (usage.output_tokens, usage.cached_input_tokens, usage.reasoning_tokens) == (2, 1, None)
