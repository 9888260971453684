"""Google Gemini through google-genai's async client, streamed.

Contract:

* ONE ``genai.Client`` per provider instance: the SDK closes its HTTP client when the ``Client`` is
  garbage-collected, so it must live as long as the provider (``aclose()`` closes it).
* ``POST {base}/{api_version}/models/{model}:streamGenerateContent?alt=sse``. ``api_version`` defaults
  to ``v1beta`` (what Google's public API serves every feature on); base URL, version and extra
  headers are configurable, and ``request.extra_headers`` is added per call (gateways).
* Roles: ``assistant`` → ``model``; the system prompt (and any ``system`` message) becomes the
  ``systemInstruction``. JSON mode is ``responseMimeType: application/json`` plus
  ``responseJsonSchema`` when a schema is given.
* Finish reasons are normalised to OpenAI's names (``stop``, ``length``, ``content_filter``); blocked
  content (``finishReason`` SAFETY and friends, or ``promptFeedback.blockReason``) raises
  :class:`~providers.base.ContentBlocked`. Usage comes from ``usageMetadata`` (thinking tokens count
  as output and are reported as reasoning tokens; cached content as cached input), the response id
  from ``responseId``.
* No SDK retries, no automatic continuation: the turn service owns retries. Connect and read
  timeouts are applied per request (the SDK itself only knows one total timeout). google-genai does
  not wrap network errors: raw httpx/httpx2 (or aiohttp) errors are mapped here.
* Client tools (:mod:`providers.gemini_tools` maps them): declarations with the JSON Schema
  translated to Gemini's OpenAPI subset (a keyword it lacks is refused before any call:
  :meth:`GeminiProvider.check_tools`), ``toolConfig`` from ``tool_choice``; each call arrives whole
  in one ``functionCall`` part and is yielded as one piece (arguments as JSON text, the part's
  ``thoughtSignature`` kept in the piece's metadata); the history replays the calls with their
  signatures and the results as ``functionResponse`` parts. An answer that made calls finishes
  ``tool_calls`` (Gemini says ``STOP``).
* Images and files (:mod:`providers.gemini_files` maps them): after a user content's text, each
  attachment as inline bytes (``inlineData``) within ``GEMINI_INLINE_MAX_BYTES`` for the whole
  request, else uploaded through the Files API and referenced (``fileData``); a text file as a text
  part. Every model is sent every type (:meth:`GeminiProvider.attachment_types`); Gemini fetches no
  URL here (:meth:`GeminiProvider.fetches_urls`), the server hands over the bytes.
* Closing the generator closes the upstream response. Both this and the split timeouts rely on
  httpx event hooks, i.e. on the SDK's httpx transport (its default while aiohttp is not installed).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ._errors import error_for_status, redact, retry_after_from_headers, transport_error, unexpected_error
from ._httpx_hooks import note_response, noting_responses, timeout_hook
from .base import (
    ATTACHMENT_TYPES,
    AuthenticationFailed,
    ChatMessage,
    ContentBlocked,
    Provider,
    ProviderChunk,
    ProviderError,
    ProviderRequest,
    Timeouts,
    ToolCall,
    ToolSpec,
    Unavailable,
    Usage,
    refuse_unsendable,
)
from .defaults import DEFAULT_GEMINI_API_VERSION
from .gemini_files import DEFAULT_INLINE_MAX_BYTES, GeminiUploads, attachment_parts, file_gone
from .gemini_tools import (
    call_piece,
    gemini_tool_config,
    gemini_tools,
    model_content,
    response_content,
    schema_refusal,
)

_FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "RECITATION": "content_filter"}
_BLOCKED = frozenset(
    [
        "SAFETY",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "MODEL_ARMOR",
    ]
)


def _retry_delay(details: Any) -> float | None:
    """``retryDelay`` (e.g. ``"17s"``) of a ``google.rpc.RetryInfo`` in an error body, in seconds."""
    error = details.get("error", details) if isinstance(details, Mapping) else None
    for item in (error or {}).get("details") or ():
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith("RetryInfo"):
            try:
                return float(str(item.get("retryDelay", "")).rstrip("s"))
            except ValueError:
                return None
    return None


class GeminiProvider(Provider):
    kind: ClassVar[str] = "gemini"
    key_env_var: ClassVar[str | None] = "GEMINI_API_KEY"
    supports_tools: ClassVar[bool] = True  # every model; schemas are checked by check_tools

    def __init__(
        self,
        *,
        name: str | None = None,
        default_model: str,
        api_key: str,
        base_url: str | None = None,
        api_version: str | None = None,
        timeouts: Timeouts | None = None,
        extra_headers: Mapping[str, str] | None = None,
        inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES,
    ) -> None:
        super().__init__(name=name or self.kind, default_model=default_model, timeouts=timeouts)
        self._api_key = api_key
        self.inline_max_bytes = max(0, int(inline_max_bytes))
        options = types.HttpOptions(
            base_url=base_url or None,
            api_version=api_version or DEFAULT_GEMINI_API_VERSION,
            headers={str(k): str(v) for k, v in (extra_headers or {}).items()} or None,
            async_client_args={
                "event_hooks": {"request": [timeout_hook(self.timeouts)], "response": [note_response]}
            },
        )
        self._client = genai.Client(vertexai=False, api_key=api_key, http_options=options)
        self.uploads = GeminiUploads(self._client, self.name, wait_seconds=self.timeouts.read)

    def _config(self, request: ProviderRequest) -> types.GenerateContentConfig:
        system = [request.system] if request.system else []
        system += [m.content for m in request.messages if m.role == "system"]
        config = types.GenerateContentConfig(
            system_instruction="\n\n".join(system) if system else None,
            temperature=request.temperature,
            max_output_tokens=request.max_tokens,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
        )
        if request.json_output or request.json_schema is not None:
            config.response_mime_type = "application/json"
        if request.json_schema is not None:
            config.response_json_schema = dict(request.json_schema)
        if request.extra_headers:
            config.http_options = types.HttpOptions(headers=dict(request.extra_headers))
        if request.tools:
            config.tools = gemini_tools(request.tools)
            config.tool_config = gemini_tool_config(request.tool_choice)
        return config

    def check_tools(self, model: str, tools: Sequence[ToolSpec]) -> str | None:
        """A schema keyword Gemini's OpenAPI subset lacks refuses the turn before any call."""
        return schema_refusal(tools, f"The model {self.name}:{model} (Gemini)")

    def attachment_types(self, model: str) -> frozenset[str]:
        """Images, PDFs and text files, for every model."""
        return ATTACHMENT_TYPES

    async def _contents(self, request: ProviderRequest) -> list[types.Content]:
        refuse_unsendable(self, request)
        files = (
            await attachment_parts(self.name, request.messages, self.uploads, self.inline_max_bytes)
            if any(m.attachments for m in request.messages)
            else None
        )
        contents: list[types.Content] = []
        calls: dict[str, ToolCall] = {}  # the calls made so far, by id: results are named after them
        for index, m in enumerate(request.messages):
            if m.role == "system":
                continue
            if m.tool_calls:
                calls.update((call.id, call) for call in m.tool_calls)
                contents.append(model_content(m, request.model))
            elif m.tool_results:
                contents.append(response_content(m, calls))
            else:
                contents.append(_text_content(m, files[index] if files else ()))
        return contents

    def _finish(self, reason: Any) -> str:
        name = str(getattr(reason, "value", reason)).upper()
        if name in _BLOCKED:
            raise ContentBlocked(self.name, f"the provider blocked the reply ({name}): rephrase the request")
        return _FINISH_REASONS.get(name, name.lower())

    def _error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, genai_errors.APIError):
            status = int(exc.code or 500)
            if status == 403 and file_gone(exc.message):
                self.uploads.forget()  # the retry uploads the file anew
                return Unavailable(
                    self.name,
                    "the provider no longer has a file uploaded for this conversation (HTTP 403): "
                    "try again, it is uploaded anew",
                    status=403,
                )
            if status == 400 and (
                "API_KEY_INVALID" in json.dumps(exc.details, default=str)
                or "api key" in str(exc.message).lower()
            ):
                return AuthenticationFailed(
                    self.name, "the provider rejected the API key: check GEMINI_API_KEY", status=400
                )
            headers = getattr(exc.response, "headers", None)
            retry_after = retry_after_from_headers(headers) if headers else None
            return error_for_status(
                self.name,
                status,
                key_setting=self.key_env_var,
                retry_after=retry_after if retry_after is not None else _retry_delay(exc.details),
                detail=redact(exc.message, (self._api_key,)) if exc.message else None,
            )
        return transport_error(self.name, exc) or unexpected_error(self.name, exc)

    async def _responses(self, request: ProviderRequest) -> AsyncIterator[types.GenerateContentResponse]:
        """The SDK stream; closing this generator closes the upstream HTTP response at once.

        The SDK nests several async generators and closing the outer one leaves the HTTP response
        open until garbage collection, so the response is noted by an httpx hook when the request
        is sent (the first step) and closed here.
        """
        upstream = await self._client.aio.models.generate_content_stream(
            model=request.model, contents=await self._contents(request), config=self._config(request)
        )
        opened: list[Any] = []
        try:
            with noting_responses(opened):
                first = await anext(upstream, None)  # sends the request
            if first is None:
                return
            yield first
            async for response in upstream:
                yield response
        finally:
            for response in opened:
                await response.aclose()
            await upstream.aclose()

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        usage: Usage | None = None
        finish: str | None = None
        response_id: str | None = None
        calls = 0  # calls received so far: the next one's index
        try:
            async with aclosing(self._responses(request)) as responses:
                async for response in responses:
                    feedback = response.prompt_feedback
                    if feedback is not None and feedback.block_reason:
                        reason = getattr(feedback.block_reason, "value", feedback.block_reason)
                        raise ContentBlocked(
                            self.name, f"the provider blocked the prompt ({reason}): rephrase the request"
                        )
                    response_id = response.response_id or response_id
                    if response.usage_metadata is not None:
                        usage = self._usage(response.usage_metadata)
                    if not response.candidates:
                        continue
                    candidate = response.candidates[0]
                    for part in (candidate.content.parts if candidate.content else None) or ():
                        if part.function_call is not None:
                            piece = call_piece(calls, part.function_call, part.thought_signature)
                            calls += 1
                            yield ProviderChunk(tool_calls=(piece,))
                        elif part.text and not part.thought:
                            yield ProviderChunk(text=part.text)
                    if candidate.finish_reason:
                        finish = self._finish(candidate.finish_reason)
        except Exception as exc:
            raise self._error(exc) from None
        if calls and finish == "stop":
            finish = "tool_calls"
        yield ProviderChunk(usage=usage, finish_reason=finish, response_id=response_id)

    @staticmethod
    def _usage(meta: types.GenerateContentResponseUsageMetadata) -> Usage:
        """``usageMetadata`` as a :class:`Usage` with the same meaning as OpenAI's.

        Gemini's ``candidatesTokenCount`` leaves the thinking tokens out (they are
        ``thoughtsTokenCount``), but Google bills them as output: they are added to ``output_tokens``
        (and reported again as ``reasoning_tokens``, included in it, as with OpenAI), so output prices
        apply to them. ``promptTokenCount`` already includes ``cachedContentTokenCount``. Gemini leaves
        a count of 0 out, so a reply without a cache hit or thinking reports None for either.
        """
        prompt = meta.prompt_token_count or 0
        thoughts = meta.thoughts_token_count
        output = (meta.candidates_token_count or 0) + (thoughts or 0)
        return Usage(
            prompt,
            output,
            meta.total_token_count or prompt + output,
            cached_input_tokens=meta.cached_content_token_count,
            reasoning_tokens=thoughts,
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()


def _text_content(message: ChatMessage, files: Sequence[types.Part] = ()) -> types.Content:
    """A message's text, then its attachments' parts (a message of files alone has no text part)."""
    parts = [types.Part(text=message.content)] if message.content or not files else []
    return types.Content(role="model" if message.role == "assistant" else "user", parts=[*parts, *files])
