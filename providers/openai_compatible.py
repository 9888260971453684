"""Any server that speaks OpenAI Chat Completions: Ollama, vLLM, llama.cpp server, LM Studio, gateways.

A thin subclass of :class:`~providers.openai_chat.OpenAIChatProvider`: the base URL is required,
the API key is optional (local servers ignore it, but the SDK insists on one, so a placeholder is
sent), and the output cap is sent as ``max_tokens``, the name these servers understand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .base import Timeouts
from .openai_chat import OpenAIChatProvider

PLACEHOLDER_API_KEY = "not-needed"


class OpenAICompatibleProvider(OpenAIChatProvider):
    kind: ClassVar[str] = "openai-compatible"
    key_env_var: ClassVar[str | None] = "OPENAI_COMPATIBLE_API_KEY"
    max_tokens_param: ClassVar[str] = "max_tokens"

    def __init__(
        self,
        *,
        name: str | None = None,
        default_model: str,
        base_url: str,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        max_retries: int = 0,
        extra_headers: Mapping[str, str] | None = None,
        http_transport: str = "asyncio",
    ) -> None:
        super().__init__(
            name=name,
            default_model=default_model,
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=base_url,
            timeouts=timeouts,
            max_retries=max_retries,
            extra_headers=extra_headers,
            http_transport=http_transport,
        )
