"""OpenAI Chat Completions over ``AsyncOpenAI``, streamed.

Contract:

* One ``AsyncOpenAI`` client per provider instance (its connection pool is reused across turns);
  ``aclose()`` releases it. The client gets its own HTTP client (the SDK's ``httpx2`` one, with the
  SDK's defaults) with a pool far larger than the SDK's default of 1000 connections / 100 kept
  alive, so concurrent streams beyond that do not queue for a connection: :data:`POOL_LIMITS`.
* The SDK's own retries are off unless ``max_retries`` says otherwise: the turn service's retry policy
  is the only one. Connect and read timeouts come from :class:`~providers.base.Timeouts`.
* Yields text chunks as they arrive, then one last chunk with usage (``stream_options.include_usage``;
  cached input and reasoning tokens from ``prompt_tokens_details`` / ``completion_tokens_details``
  when reported), the finish reason (OpenAI's own names) and the response id (the ``chatcmpl-…`` id).
* JSON mode is ``response_format`` (``json_object``, or ``json_schema`` when a schema is given).
* Client tools (:mod:`providers.openai_chat_tools` maps them): the request's tools, the history's
  calls and results go out in the Chat Completions shape; ``delta.tool_calls`` come back as
  :class:`~providers.base.ToolCallChunk` pieces (with any text of the same delta), and the finish
  reason ``tool_calls`` passes through. A delta without ``tool_calls`` costs one dict lookup more.
* Images and files (:mod:`providers.openai_chat_files` maps them): a user message's attachments
  go as content parts after its text — ``image_url`` (a data URL of the bytes, or the https URL,
  which OpenAI fetches), ``file`` with ``file_data`` for a PDF, a ``text`` part for a text file.
  Every model is sent every type (:meth:`attachment_types`; OpenAI refuses an image to a model
  without vision in its own words); a remote PDF is fetched by the server (:meth:`fetches_urls`).
* Closing the generator (``aclose()``, task cancellation) closes the upstream HTTP response at once.

How (cost per turn): the SDK still builds, authenticates and sends the request and raises its own
errors for non-2xx answers, but through its raw-response API (``with_streaming_response``), and the
server-sent events are parsed here with orjson instead of into pydantic chunk objects. The body is
built here and handed over as ``extra_body`` (documented to take precedence over the typed
arguments, which the signature requires: ``model``/``stream`` as sent, ``messages`` empty), so the
SDK's per-message TypedDict transform (about 2 ms for a dozen messages, more with a longer history)
is skipped. Client CPU per 20-chunk turn against the fake upstream: about 6 ms before, 1.3 ms now.
``data: {"error": …}`` payloads, ``[DONE]`` (after which the rest of the body is read briefly so the
connection goes back to the pool) and a stream cut short are handled as the SDK's stream handles them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar

import httpx2  # the HTTP library of openai>=3 (a fork of httpx); its client and types
import openai
import orjson

from ._openai_errors import error_from_stream_payload, translate_openai_error
from .asyncio_transport import AsyncioTransport, use_asyncio_transport
from .base import (
    ATTACHMENT_TYPES,
    ChatMessage,
    Provider,
    ProviderChunk,
    ProviderError,
    ProviderRequest,
    Timeouts,
    Usage,
    image_type,
    refuse_unsendable,
)
from .openai_chat_files import chat_content
from .openai_chat_tools import tool_call_pieces, tool_fields, tool_messages

#: Connection pool of each provider's HTTP client: no practical cap on concurrent streams (the SDK's
#: default makes stream 1001 wait for a free connection), and more idle connections kept for reuse.
POOL_LIMITS = httpx2.Limits(max_connections=10_000, max_keepalive_connections=1_000)
#: After ``[DONE]``, how long to wait for the end of the HTTP body (so the connection can be reused).
DRAIN_SECONDS = 0.1
_DONE = b"[DONE]"


class SSEDataDecoder:
    """The ``data`` of each server-sent event, from the raw bytes of an ``text/event-stream`` body.

    Lines may end in LF, CRLF or CR (also split across reads); ``data`` lines of one event are joined
    with LF; other fields (``event``, ``id``, ``retry``) and comments are ignored. Events without data
    are skipped. :meth:`finish` also returns an event the stream ended without its blank line.
    """

    __slots__ = ("_buffer", "_data", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._skip_lf = False  # the last read ended in CR: a LF opening the next one ends no line

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.splitlines()
        last = buffer[-1:]
        if last == b"\n" or last == b"\r":
            self._buffer = b""
            self._skip_lf = last == b"\r"
        else:
            self._buffer = lines.pop()
            self._skip_lf = False
        return list(self._events(lines))

    def finish(self) -> list[bytes]:
        lines = [self._buffer, b""] if self._buffer else [b""]
        self._buffer = b""
        return list(self._events(lines))

    def _events(self, lines: list[bytes]) -> Iterator[bytes]:
        data = self._data
        for line in lines:
            if line:
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif data:
                yield data[0] if len(data) == 1 else b"\n".join(data)
                data.clear()


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of a body after ``[DONE]`` (normally just the end of the chunked encoding).

    A body read to its end hands its connection back to the pool; closing it half-read would drop the
    connection. Gives up after :data:`DRAIN_SECONDS`. The reply is complete by now, so nothing here
    may turn it into an error: a failure only means the connection is not reused.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in chunks:
                pass


class OpenAIChatProvider(Provider):
    """Chat Completions (``POST {base}/chat/completions``) with streaming."""

    kind: ClassVar[str] = "openai"
    supports_tools: ClassVar[bool] = True  # each subclass declares its own (another wire, other models)
    key_env_var: ClassVar[str | None] = "OPENAI_API_KEY"
    #: OpenAI's current name for the output cap; OpenAI-compatible servers use ``max_tokens``.
    max_tokens_param: ClassVar[str] = "max_completion_tokens"
    #: Whether the upstream fetches an image's https URL itself (OpenAI does; a local server may not).
    remote_images: ClassVar[bool] = True

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
        http_transport: str = "asyncio",
    ) -> None:
        super().__init__(name=name or self.kind, default_model=default_model, timeouts=timeouts)
        self._api_key = api_key
        timeout = httpx2.Timeout(self.timeouts.read, connect=self.timeouts.connect)
        transport = (
            AsyncioTransport(max_keepalive=POOL_LIMITS.max_keepalive_connections)
            if use_asyncio_transport(http_transport)
            else None
        )
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=dict(extra_headers or {}),
            http_client=openai.DefaultAsyncHttpx2Client(
                timeout=timeout, limits=POOL_LIMITS, transport=transport
            ),
        )
        self._load_resources()

    def _load_resources(self) -> None:
        """Import the SDK resource this adapter calls now (the server builds providers at start-up):
        the SDK imports it on first use, which cost the first turn after a start ~20-90 ms."""
        _ = self._client.chat.completions.with_streaming_response

    def _error(self, exc: BaseException) -> ProviderError:
        return translate_openai_error(self.name, exc, key_setting=self.key_env_var, secrets=(self._api_key,))

    def attachment_types(self, model: str) -> frozenset[str]:
        """Images, PDFs and text files, for every model."""
        return ATTACHMENT_TYPES

    def fetches_urls(self, model: str, media_type: str) -> bool:
        """OpenAI fetches a remote image itself; Chat Completions takes no PDF by URL."""
        return self.remote_images and image_type(media_type)

    def _message(self, message: ChatMessage) -> dict[str, Any]:
        if message.attachments:
            parts = chat_content(self.name, message, remote_images=self.remote_images)
            return {"role": message.role, "content": parts}
        return {"role": message.role, "content": message.content}

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        """The JSON body of the request, exactly as sent."""
        refuse_unsendable(self, request)
        messages = [{"role": "system", "content": request.system}] if request.system else []
        for message in request.messages:
            if message.tool_calls or message.tool_results:  # a tool message: one per result
                messages += tool_messages(message)
            else:
                messages.append(self._message(message))
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body[self.max_tokens_param] = request.max_tokens
        if request.json_schema is not None:
            schema = {"name": "response", "schema": dict(request.json_schema)}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif request.json_output:
            body["response_format"] = {"type": "json_object"}
        if request.tools:
            body.update(tool_fields(request))
        return body

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        usage: Usage | None = None
        finish: str | None = None
        response_id: str | None = None
        try:
            # ``messages=()`` only satisfies the signature: ``extra_body`` carries the real body.
            async with (
                self._client.chat.completions.with_streaming_response.create(
                    model=request.model,
                    messages=(),
                    stream=True,
                    extra_body=self._body(request),
                    extra_headers=request.extra_headers or None,
                ) as response,
                contextlib.aclosing(json_events(response)) as chunks,
            ):
                async for chunk in chunks:
                    error = chunk.get("error")
                    if error:
                        raise error_from_stream_payload(self.name, error, secrets=(self._api_key,))
                    response_id = chunk.get("id") or response_id
                    reported = chunk.get("usage")
                    if reported:
                        usage = _usage(reported)
                    choices = chunk.get("choices")
                    if not choices:  # the usage-only chunk at the end
                        continue
                    choice = choices[0]
                    finish = choice.get("finish_reason") or finish
                    delta = choice.get("delta")
                    if delta:
                        text = delta.get("content")
                        calls = delta.get("tool_calls")
                        if calls:
                            yield ProviderChunk(text=text or "", tool_calls=tool_call_pieces(calls))
                        elif text:
                            yield ProviderChunk(text=text)
        except Exception as exc:
            raise self._error(exc) from None
        yield ProviderChunk(usage=usage, finish_reason=finish, response_id=response_id)

    async def aclose(self) -> None:
        await self._client.close()


async def json_events(response: openai.AsyncAPIResponse[Any]) -> AsyncIterator[dict[str, Any]]:
    """Each event's data as a JSON object, up to ``[DONE]`` (data that is not an object is skipped)."""
    async with contextlib.aclosing(_sse_payloads(response)) as payloads:
        async for payload in payloads:
            event = orjson.loads(payload)
            if isinstance(event, dict):
                yield event


async def _sse_payloads(response: openai.AsyncAPIResponse[Any]) -> AsyncIterator[bytes]:
    """The data of each event of an OpenAI stream, up to ``[DONE]`` (the SDK's stream rules).

    After ``[DONE]`` the rest of an HTTP/1.1 body is read (see :func:`_drain`); HTTP/2 can end the
    stream without dropping the connection.
    """
    decoder = SSEDataDecoder()
    async with contextlib.aclosing(response.iter_bytes()) as chunks:
        async for chunk in chunks:
            for payload in decoder.feed(chunk):
                if payload.startswith(_DONE):
                    if response.http_version == "HTTP/1.1":
                        await _drain(chunks)
                    return
                yield payload
        for payload in decoder.finish():
            if payload.startswith(_DONE):
                return
            yield payload


def _usage(reported: Mapping[str, Any]) -> Usage:
    """Chat Completions usage; cached and reasoning tokens are already inside prompt/completion tokens.

    OpenAI always sends both breakdowns; OpenAI-compatible servers often send neither (then None).
    """
    prompt = reported.get("prompt_tokens") or 0
    completion = reported.get("completion_tokens") or 0
    return Usage(
        prompt,
        completion,
        reported.get("total_tokens") or prompt + completion,
        cached_input_tokens=usage_detail(reported, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=usage_detail(reported, "completion_tokens_details", "reasoning_tokens"),
    )


def usage_detail(usage: Mapping[str, Any], breakdown: str, key: str) -> int | None:
    """``usage[breakdown][key]`` when the upstream reported it as a count, else None."""
    details = usage.get(breakdown)
    value = details.get(key) if isinstance(details, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
