"""OpenAI Chat Completions over ``AsyncOpenAI``, streamed.

Contract:

* One ``AsyncOpenAI`` client per provider instance (its connection pool is reused across turns);
  ``aclose()`` releases it.
* The SDK's own retries are off unless ``max_retries`` says otherwise: the turn service's retry policy
  is the only one. Connect and read timeouts come from :class:`~providers.base.Timeouts`.
* Yields text chunks as they arrive, then one last chunk with usage (``stream_options.include_usage``),
  the finish reason (OpenAI's own names) and the response id (the ``chatcmpl-…`` chunk id).
* JSON mode is ``response_format`` (``json_object``, or ``json_schema`` when a schema is given).
* Closing the generator (``aclose()``, task cancellation) closes the upstream HTTP response at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import openai

from ._openai_errors import translate_openai_error
from .base import ChatMessage, Provider, ProviderChunk, ProviderError, ProviderRequest, Timeouts, Usage


class OpenAIChatProvider(Provider):
    """Chat Completions (``POST {base}/chat/completions``) with streaming."""

    kind: ClassVar[str] = "openai"
    key_env_var: ClassVar[str | None] = "OPENAI_API_KEY"
    #: OpenAI's current name for the output cap; OpenAI-compatible servers use ``max_tokens``.
    max_tokens_param: ClassVar[str] = "max_completion_tokens"

    def __init__(
        self,
        *,
        name: str | None = None,
        default_model: str,
        api_key: str,
        base_url: str | None = None,
        timeouts: Timeouts | None = None,
        max_retries: int = 0,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name=name or self.kind, default_model=default_model, timeouts=timeouts)
        self._api_key = api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=openai.Timeout(self.timeouts.read, connect=self.timeouts.connect),
            max_retries=max_retries,
            default_headers=dict(extra_headers or {}),
        )

    def _error(self, exc: BaseException) -> ProviderError:
        return translate_openai_error(self.name, exc, key_setting=self.key_env_var, secrets=(self._api_key,))

    @staticmethod
    def _message(message: ChatMessage) -> dict[str, str]:
        return {"role": message.role, "content": message.content}

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [self._message(m) for m in request.messages]
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_tokens is not None:
            params[self.max_tokens_param] = request.max_tokens
        if request.json_schema is not None:
            schema = {"name": "response", "schema": dict(request.json_schema)}
            params["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif request.json_output:
            params["response_format"] = {"type": "json_object"}
        if request.extra_headers:
            params["extra_headers"] = dict(request.extra_headers)
        return params

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        try:
            upstream = await self._client.chat.completions.create(**self._params(request))
        except Exception as exc:
            raise self._error(exc) from None
        usage: Usage | None = None
        finish: str | None = None
        response_id: str | None = None
        try:
            async for chunk in upstream:
                response_id = chunk.id or response_id
                if chunk.usage is not None:
                    usage = Usage(
                        chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens
                    )
                if not chunk.choices:  # the usage-only chunk at the end
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                if choice.delta is not None and choice.delta.content:
                    yield ProviderChunk(text=choice.delta.content)
        except Exception as exc:
            raise self._error(exc) from None
        finally:
            await upstream.close()
        yield ProviderChunk(usage=usage, finish_reason=finish, response_id=response_id)

    async def aclose(self) -> None:
        await self._client.close()
