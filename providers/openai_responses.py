"""OpenAI Responses API (``POST {base}/responses``), streamed, with ``previous_response_id`` chaining.

Contract (on top of :mod:`providers.openai_chat`, whose client, timeouts and retries it shares):

* The system prompt travels as ``instructions`` (the API does not carry it over a chain, so it is
  sent on every turn).
* With ``request.previous_response_id`` only the new input is sent: the messages after the last
  assistant message. An id the upstream does not know raises
  :class:`~providers.base.ResponseIdNotFound`; the caller then resends the whole history without it.
  So does a chain that cannot go on because the response it continues made tool calls the new
  input does not answer (OpenAI's 400 "No tool output found for function call …": the user wrote
  instead of sending the results; the history leaves those calls out).
* The response id comes from ``response.created`` / ``response.completed``; usage from
  ``response.completed`` (or ``response.incomplete``), with cached input and reasoning tokens from
  ``input_tokens_details`` / ``output_tokens_details`` when reported. Finish reasons: ``stop``, ``length``
  (``max_output_tokens``), ``content_filter``.
* JSON mode is ``text.format`` (``json_object``, or ``json_schema`` when a schema is given).
* Client tools (:mod:`providers.openai_responses_tools` maps them): the request's tools go flat
  (``strict: false`` unless the client asked for strict), the history's calls as ``function_call``
  items and its results as ``function_call_output`` items (chained, only the new results go);
  streamed ``function_call`` items come back as :class:`~providers.base.ToolCallChunk` pieces (the
  call id is ``call_id``; the item id ``fc_…`` rides in the piece's ``metadata`` as ``item_id``),
  and the finish reason is ``tool_calls`` when the response made calls (this API has none of its own).
* Images and files (:mod:`providers.openai_responses_files` maps them): a user message's
  attachments go as input parts after its ``input_text`` — ``input_image`` (data URL or https
  URL, ``detail`` always), ``input_file`` (``file_data`` with a filename, or ``file_url`` for a
  remote PDF), ``input_text`` for a text file. OpenAI fetches remote images and PDFs itself
  (:meth:`fetches_urls`).
* As in the chat adapter, the SDK sends the request (raw-response API, body as ``extra_body``)
  and the events are parsed here with orjson, not into the SDK's pydantic event objects.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ._openai_errors import error_from_code
from .base import (
    PDF,
    ChatMessage,
    InvalidRequest,
    ProviderChunk,
    ProviderError,
    ProviderRequest,
    ResponseIdNotFound,
    Usage,
    image_type,
    refuse_unsendable,
)
from .openai_chat import OpenAIChatProvider, json_events, usage_detail
from .openai_responses_files import responses_content
from .openai_responses_tools import CallReader, input_items, tool_fields

_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _usage(reported: dict[str, Any]) -> Usage:
    """Responses usage; cached and reasoning tokens are already inside input/output tokens."""
    prompt = reported.get("input_tokens") or 0
    output = reported.get("output_tokens") or 0
    return Usage(
        prompt,
        output,
        reported.get("total_tokens") or prompt + output,
        cached_input_tokens=usage_detail(reported, "input_tokens_details", "cached_tokens"),
        reasoning_tokens=usage_detail(reported, "output_tokens_details", "reasoning_tokens"),
    )


def new_input(messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
    """The messages after the last assistant message: what a chained request still has to send."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "assistant":
            return messages[index + 1 :]
    return messages


class OpenAIResponsesProvider(OpenAIChatProvider):
    """The Responses API; reuses the chat adapter's client and error translation."""

    supports_tools: ClassVar[bool] = True  # function_call items (providers.openai_responses_tools)
    kind: ClassVar[str] = "openai-responses"
    supports_response_chaining: ClassVar[bool] = True

    def _load_resources(self) -> None:
        _ = self._client.responses

    def fetches_urls(self, model: str, media_type: str) -> bool:
        """OpenAI fetches remote images (``image_url``) and PDFs (``file_url``) itself."""
        return image_type(media_type) or media_type == PDF

    def _message(self, message: ChatMessage) -> dict[str, Any]:
        if message.attachments:
            return {"role": message.role, "content": responses_content(self.name, message)}
        return {"role": message.role, "content": message.content}

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        refuse_unsendable(self, request)
        messages = new_input(request.messages) if request.previous_response_id else request.messages
        items: list[dict[str, Any]] = []
        for message in messages:
            if message.tool_calls or message.tool_results:
                items += input_items(message)
            else:
                items.append(self._message(message))
        params: dict[str, Any] = {"model": request.model, "input": items, "stream": True}
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
        if request.tools:
            params.update(tool_fields(request))
        if request.extra_headers:
            params["extra_headers"] = dict(request.extra_headers)
        return params

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        params = self._params(request)
        extra_headers = params.pop("extra_headers", None)
        usage: Usage | None = None
        finish: str | None = None
        response_id: str | None = None
        calls = CallReader()
        try:
            # The body travels as ``extra_body`` (as in the chat adapter): the SDK builds, signs and
            # sends the request and raises its errors; the events are read here with orjson.
            async with (
                self._client.responses.with_streaming_response.create(
                    model=request.model, stream=True, extra_body=params, extra_headers=extra_headers
                ) as response,
                contextlib.aclosing(json_events(response)) as events,
            ):
                async for event in events:
                    kind = event.get("type")
                    if kind == "response.output_text.delta":
                        if event.get("delta"):
                            yield ProviderChunk(text=event["delta"])
                    elif kind == "response.function_call_arguments.delta":
                        piece = calls.fragment(event)
                        if piece is not None:
                            yield ProviderChunk(tool_calls=(piece,))
                    elif kind in ("response.output_item.added", "response.function_call_arguments.done"):
                        piece = calls.added(event) if kind.endswith("added") else calls.whole(event)
                        if piece is not None:
                            yield ProviderChunk(tool_calls=(piece,))
                    elif kind == "response.created":
                        response_id = (event.get("response") or {}).get("id") or response_id
                    elif kind in ("response.completed", "response.incomplete"):
                        done = event.get("response") or {}
                        response_id = done.get("id") or response_id
                        if done.get("usage"):
                            usage = _usage(done["usage"])
                        reason = (done.get("incomplete_details") or {}).get("reason")
                        finish = (
                            _INCOMPLETE_REASONS.get(reason or "", "stop")
                            if kind.endswith("incomplete")
                            else "tool_calls"
                            if calls.called
                            else "stop"
                        )
                    elif kind == "response.failed":
                        error = (event.get("response") or {}).get("error") or {}
                        raise error_from_code(
                            self.name, error.get("code"), error.get("message"), secrets=(self._api_key,)
                        )
                    elif kind == "error":
                        raise error_from_code(
                            self.name, event.get("code"), event.get("message"), secrets=(self._api_key,)
                        )
        except Exception as exc:
            error = self._error(exc)
            if request.previous_response_id and unanswered_chain(error):
                raise ResponseIdNotFound(
                    self.name,
                    "the chained response made tool calls this input does not answer: resend the history",
                    status=error.status,
                ) from None
            raise error from None
        yield ProviderChunk(usage=usage, finish_reason=finish, response_id=response_id)


def unanswered_chain(error: ProviderError) -> bool:
    """OpenAI's 400 for a chained request after a response whose calls it does not answer (a user
    who wrote instead of sending the results): the chain cannot go on, the history (which leaves
    unanswered calls out) can."""
    return isinstance(error, InvalidRequest) and "No tool output found for function call" in error.message
