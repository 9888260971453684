"""Z.AI (GLM) through zai-sdk, whose client is synchronous only.

Contract:

* The SDK's blocking stream runs in a worker thread that hands chunks to the event loop through an
  ``asyncio.Queue``; the loop never blocks on the SDK.
* Cancellation: when the consumer stops (``aclose()`` on the generator, task cancelled), a stop flag
  is set and the worker closes the SDK's HTTP response itself (httpx's sync client is not safe to
  close from another thread) as soon as its blocking read returns, i.e. at the next chunk, so the
  upstream sees the connection end promptly. A silent upstream is ended by the read timeout.
* The SDK's retries are off unless ``max_retries`` says otherwise (the SDK's default is 3).
* Temperature: the SDK rewrites it (≤ 0 → 0.01 with ``do_sample`` off, ≥ 1 → 0.99). We pass ours
  through unchanged in the request body instead, so what the caller asked for is what Z.AI gets.
* Client tools (:mod:`providers.zai_tools` maps them): tools and the history's calls and results in
  the Chat Completions shape; ``tool_choice`` auto as is, none as no tools offered, required or a
  named tool refused before any call (:meth:`ZaiProvider.check_tool_choice`); no
  ``parallel_tool_calls`` (Z.AI has none); ``tool_stream`` for the models that stream arguments.
  Calls are read from ``delta.tool_calls`` either way (whole calls, each in a chunk already marked
  ``finish_reason: "tool_calls"``, or fragments by index): the stream is read to its end, never
  stopped at the first finish reason.
* Images and files: images only to the vision models ``ZAI_VISION_MODELS`` names
  (:data:`DEFAULT_VISION_MODELS`, ``*`` globs), as Chat Completions ``image_url`` parts after the
  text (:mod:`providers.openai_chat_files`): a data URL of the bytes (zai-sdk strips its
  ``data:image/…;base64,`` prefix and sends the bare base64, as Z.AI documents) or the https URL,
  which Z.AI fetches (:meth:`ZaiProvider.fetches_urls`). Text files to every model: with images,
  ``text`` parts; without, the message's text and each file's as one string (Z.AI documents the
  list form for its vision models only). No PDFs.
* Yields text chunks (``reasoning_content`` is not part of the answer and is skipped), then one last
  chunk with usage (cached input and reasoning tokens when ``prompt_tokens_details`` /
  ``completion_tokens_details`` report them), finish reason and the completion id. Errors, including
  the raw httpx ``RemoteProtocolError`` of a mid-stream drop, are mapped to the provider error taxonomy.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, ClassVar

import httpx
from zai import ZaiClient
from zai.core import _errors as zai_errors

from ._errors import (
    body_message,
    error_for_status,
    redact,
    retry_after_from_headers,
    transport_error,
    unexpected_error,
)
from .base import (
    IMAGE_TYPES,
    TEXT,
    ChatMessage,
    Provider,
    ProviderChunk,
    ProviderError,
    ProviderRequest,
    Timeout,
    Timeouts,
    Unavailable,
    Usage,
    image_type,
    refuse_unsendable,
)
from .model_globs import matches, parse_globs
from .openai_chat_files import chat_content, joined_text
from .zai_tools import call_pieces, choice_refusal, history_messages, tool_params

#: ``ZAI_VISION_MODELS`` by default: the GLM vision models, which take images.
DEFAULT_VISION_MODELS = "glm-4v*,glm-4.5v*,glm-4.6v*"


class _Worker:
    """One SDK stream pumped from a daemon thread into the event loop."""

    def __init__(self, start: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._start = start
        self._loop = loop
        self._stop = threading.Event()

    def _put(self, kind: str, payload: Any = None) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, (kind, payload))
        except RuntimeError:  # the loop is gone: nobody is listening any more
            self._stop.set()

    def run(self) -> None:
        response = None
        try:
            upstream = self._start()
            response = upstream.response
            for chunk in upstream:
                if self._stop.is_set():
                    return
                self._put("chunk", chunk)
            self._put("done")
        except BaseException as exc:
            if not self._stop.is_set():
                self._put("error", exc)
        finally:
            if response is not None:
                with contextlib.suppress(Exception):  # closing a cut connection may complain
                    response.close()

    def stop(self) -> None:
        self._stop.set()


def _usage(reported: Any) -> Usage:
    """The SDK's usage; cached and reasoning tokens (inside prompt/completion tokens) when reported."""
    cached = getattr(getattr(reported, "prompt_tokens_details", None), "cached_tokens", None)
    reasoning = getattr(getattr(reported, "completion_tokens_details", None), "reasoning_tokens", None)
    return Usage(
        reported.prompt_tokens,
        reported.completion_tokens,
        reported.total_tokens,
        cached_input_tokens=cached if isinstance(cached, int) else None,
        reasoning_tokens=reasoning if isinstance(reasoning, int) else None,
    )


class ZaiProvider(Provider):
    kind: ClassVar[str] = "zai"
    key_env_var: ClassVar[str | None] = "ZAI_API_KEY"
    supports_tools: ClassVar[bool] = True  # every GLM chat model Z.AI serves takes function tools

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
        vision_models: str | Iterable[str] = DEFAULT_VISION_MODELS,
    ) -> None:
        super().__init__(name=name or self.kind, default_model=default_model, timeouts=timeouts)
        self._api_key = api_key
        self.vision_models = parse_globs(vision_models)
        self._client = ZaiClient(
            api_key=api_key,
            base_url=base_url or None,
            timeout=httpx.Timeout(self.timeouts.read, connect=self.timeouts.connect),
            max_retries=max_retries,
            custom_headers=dict(extra_headers or {}) or None,
        )

    def attachment_types(self, model: str) -> frozenset[str]:
        """Text files for every model; images too for a vision model (``ZAI_VISION_MODELS``)."""
        return IMAGE_TYPES | {TEXT} if matches(model, self.vision_models) else frozenset({TEXT})

    def fetches_urls(self, model: str, media_type: str) -> bool:
        """Z.AI fetches a remote image itself."""
        return image_type(media_type)

    def _message(self, message: ChatMessage) -> dict[str, Any]:
        if message.attachments:
            joined = joined_text(message)
            return {
                "role": message.role,
                "content": joined if joined is not None else chat_content(self.name, message),
            }
        return {"role": message.role, "content": message.content}

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        refuse_unsendable(self, request)
        messages: list[dict[str, Any]] = (
            [{"role": "system", "content": request.system}] if request.system else []
        )
        for m in request.messages:
            if m.tool_calls or m.tool_results:
                messages += history_messages(m)
            else:
                messages.append(self._message(m))
        params: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if request.tools:
            params.update(tool_params(request))
        body: dict[str, Any] = {}
        if request.temperature is not None:
            body["temperature"] = request.temperature  # bypasses the SDK's rewrite, see module docstring
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.json_output or request.json_schema is not None:
            params["response_format"] = {"type": "json_object"}
        if request.extra_headers:
            params["extra_headers"] = dict(request.extra_headers)
        if body:
            params["extra_body"] = body
        return params

    def check_tool_choice(self, model: str, choice: str | Mapping[str, object]) -> str | None:
        """Z.AI takes ``tool_choice`` auto only: required or a named tool is refused before any call."""
        return choice_refusal(f"{self.name}:{model}", choice)

    def _error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, zai_errors.APIStatusError):
            response = exc.response
            text = response.text if response.is_closed else ""
            try:
                message = body_message(response.json()) if text else None
            except ValueError:
                message = text or None
            return error_for_status(
                self.name,
                exc.status_code,
                key_setting=self.key_env_var,
                retry_after=retry_after_from_headers(response.headers),
                detail=redact(message, (self._api_key,)) if message else None,
            )
        mapped = transport_error(self.name, exc)
        if mapped is not None:
            return mapped
        if isinstance(exc, zai_errors.APITimeoutError):
            return Timeout(
                self.name, "no answer from the provider in time: try again, or raise LLM_READ_TIMEOUT"
            )
        if isinstance(exc, zai_errors.APIConnectionError):
            return Unavailable(
                self.name, "could not reach the provider: check ZAI_BASE_URL, or try again later"
            )
        if isinstance(exc, zai_errors.APIResponseError):  # an error payload inside the stream
            message = body_message({"error": exc.json_data}) or exc.message
            return Unavailable(
                self.name,
                f"the provider stopped the reply with an error ({redact(message, (self._api_key,))}): try again",
            )
        return unexpected_error(self.name, exc)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        params = self._params(request)
        worker = _Worker(lambda: self._client.chat.completions.create(**params), asyncio.get_running_loop())
        threading.Thread(target=worker.run, name=f"{self.name}-stream", daemon=True).start()
        usage: Usage | None = None
        finish: str | None = None
        response_id: str | None = None
        try:
            while True:
                kind, payload = await worker.queue.get()
                if kind == "done":
                    break
                if kind == "error":
                    raise self._error(payload)
                response_id = payload.id or response_id
                if payload.usage is not None:
                    usage = _usage(payload.usage)
                if not payload.choices:
                    continue
                choice = payload.choices[0]
                finish = choice.finish_reason or finish  # a whole call's chunk says tool_calls: read on
                delta = choice.delta
                if delta is None:
                    continue
                if delta.tool_calls:
                    yield ProviderChunk(text=delta.content or "", tool_calls=call_pieces(delta.tool_calls))
                elif delta.content:
                    yield ProviderChunk(text=delta.content)
        finally:
            worker.stop()
        yield ProviderChunk(usage=usage, finish_reason=finish, response_id=response_id)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)
