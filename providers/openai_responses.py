"""OpenAI Responses API (``POST {base}/responses``), streamed, with ``previous_response_id`` chaining.

Contract (on top of :mod:`providers.openai_chat`, whose client, timeouts and retries it shares):

* The system prompt travels as ``instructions`` (the API does not carry it over a chain, so it is
  sent on every turn).
* With ``request.previous_response_id`` only the new input is sent: the messages after the last
  assistant message. An id the upstream does not know raises
  :class:`~providers.base.ResponseIdNotFound`; the caller then resends the whole history without it.
* The response id comes from ``response.created`` / ``response.completed``; usage from
  ``response.completed`` (or ``response.incomplete``). Finish reasons: ``stop``, ``length``
  (``max_output_tokens``), ``content_filter``.
* JSON mode is ``text.format`` (``json_object``, or ``json_schema`` when a schema is given).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ._openai_errors import error_from_code
from .base import ChatMessage, ProviderChunk, ProviderRequest, Usage
from .openai_chat import OpenAIChatProvider

_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def new_input(messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
    """The messages after the last assistant message: what a chained request still has to send."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "assistant":
            return messages[index + 1 :]
    return messages


class OpenAIResponsesProvider(OpenAIChatProvider):
    """The Responses API; reuses the chat adapter's client and error translation."""

    kind: ClassVar[str] = "openai-responses"
    supports_response_chaining: ClassVar[bool] = True

    def _load_resources(self) -> None:
        _ = self._client.responses

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        messages = new_input(request.messages) if request.previous_response_id else request.messages
        params: dict[str, Any] = {
            "model": request.model,
            "input": [self._message(m) for m in messages],
            "stream": True,
        }
        if request.system:
            params["instructions"] = request.system
        if request.previous_response_id:
            params["previous_response_id"] = request.previous_response_id
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_tokens is not None:
            params["max_output_tokens"] = request.max_tokens
        if request.json_schema is not None:
            fmt = {"type": "json_schema", "name": "response", "schema": dict(request.json_schema)}
            params["text"] = {"format": fmt}
        elif request.json_output:
            params["text"] = {"format": {"type": "json_object"}}
        if request.extra_headers:
            params["extra_headers"] = dict(request.extra_headers)
        return params

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        try:
            upstream = await self._client.responses.create(**self._params(request))
        except Exception as exc:
            raise self._error(exc) from None
        usage: Usage | None = None
        finish: str | None = None
        response_id: str | None = None
        try:
            async for event in upstream:
                kind = event.type
                if kind == "response.output_text.delta":
                    if event.delta:
                        yield ProviderChunk(text=event.delta)
                elif kind == "response.created":
                    response_id = event.response.id
                elif kind in ("response.completed", "response.incomplete"):
                    response = event.response
                    response_id = response.id or response_id
                    if response.usage is not None:
                        u = response.usage
                        usage = Usage(u.input_tokens, u.output_tokens, u.total_tokens)
                    reason = response.incomplete_details.reason if response.incomplete_details else None
                    finish = (
                        _INCOMPLETE_REASONS.get(reason or "", "stop")
                        if kind.endswith("incomplete")
                        else "stop"
                    )
                elif kind == "response.failed":
                    error = event.response.error
                    raise error_from_code(
                        self.name,
                        error.code if error else None,
                        error.message if error else None,
                        secrets=(self._api_key,),
                    )
                elif kind == "error":
                    raise error_from_code(self.name, event.code, event.message, secrets=(self._api_key,))
        except Exception as exc:
            raise self._error(exc) from None
        finally:
            await upstream.close()
        yield ProviderChunk(usage=usage, finish_reason=finish, response_id=response_id)
