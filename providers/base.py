"""The one interface every LLM provider adapter implements.

A provider turns a :class:`ProviderRequest` into an async stream of
:class:`ProviderChunk`. Adapters translate their SDK's exceptions into the
:class:`ProviderError` taxonomy below; no SDK type or exception crosses this
boundary. This package never imports from ``conversations``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the client offers the model: its name, what it does, and its JSON Schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, object] = field(default_factory=dict)
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made: ``arguments`` is the JSON text as the model produced it.

    ``metadata`` is what the provider needs back on the next round (Gemini's ``thought_signature``),
    opaque here.
    """

    id: str
    name: str
    arguments: str
    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The client's answer to one call: its output text, and whether the tool failed."""

    call_id: str
    output: str
    is_error: bool = False
    name: str = ""  # the called tool's name, when known (some providers want it with the result)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation sent to a model. An assistant message may carry the
    ``tool_calls`` it made (its ``content`` the text said before them); a ``tool`` message carries
    the ``tool_results`` of one round (an adapter sends them in its provider's shape)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCallChunk:
    """A piece of a streamed tool call: the first piece of call ``index`` carries its ``id`` and
    ``name``; later ones only an ``arguments`` fragment (cut anywhere, even mid-character of JSON)."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""
    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect and read timeouts in seconds for the upstream HTTP calls."""

    connect: float = 10.0
    read: float = 120.0


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    json_output: bool = False
    json_schema: Mapping[str, object] | None = None
    previous_response_id: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | Mapping[str, object] | None = None  # none, auto, required, {"name": tool}
    parallel_tool_calls: bool | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one reply; the cached/reasoning breakdowns are None when the provider reports none."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    estimated: bool = False
    #: Input tokens served from the provider's prompt cache (included in input_tokens); None when not reported.
    cached_input_tokens: int | None = None
    #: Output tokens spent on reasoning (included in output_tokens); None when not reported.
    reasoning_tokens: int | None = None


def estimate_usage(request: ProviderRequest, output_text: str) -> Usage:
    """A rough count (about four characters per token), marked ``estimated``.

    For replies the provider reported no usage for, e.g. one cut short by a disconnect.
    """

    def tokens(text: str) -> int:
        return -(-len(text) // 4)

    def message_tokens(message: ChatMessage) -> int:
        calls = sum(tokens(c.name) + tokens(c.arguments) for c in message.tool_calls)
        return tokens(message.content) + calls + sum(tokens(r.output) for r in message.tool_results)

    prompt = tokens(request.system or "") + sum(message_tokens(m) for m in request.messages)
    output = tokens(output_text)
    return Usage(prompt, output, prompt + output, estimated=True)


@dataclass(frozen=True, slots=True)
class ProviderChunk:
    """One piece of a streamed reply. Any field may be empty on a given chunk."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    tool_calls: tuple[ToolCallChunk, ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole reply, as :meth:`Provider.complete` returns it."""

    text: str
    usage: Usage | None
    finish_reason: str | None
    response_id: str | None
    tool_calls: tuple[ToolCall, ...] = ()


class ProviderError(Exception):
    """Base of the error taxonomy. ``message`` is safe to show: it never holds key material."""

    code: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status
        self.retry_after = retry_after


class RateLimited(ProviderError):
    code = "rate_limited"
    retryable = True


class AuthenticationFailed(ProviderError):
    code = "provider_auth_failed"


class InvalidRequest(ProviderError):
    code = "invalid_request"


class ResponseIdNotFound(InvalidRequest):
    """The upstream no longer knows ``previous_response_id``: resend the history instead."""

    code = "previous_response_not_found"


class ContentBlocked(ProviderError):
    code = "content_blocked"


class Unavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True


class Timeout(ProviderError):
    code = "provider_timeout"
    retryable = True


class Provider:
    """Base class: subclasses implement :meth:`stream` as an async generator.

    Capabilities are class attributes, as in simonw/llm. ``name`` is the
    configured name (``openai``, ``ollama``, …); ``kind`` is the adapter.
    """

    kind: ClassVar[str] = "base"
    supports_response_chaining: ClassVar[bool] = False
    supports_json_output: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False  # client tools (function calling): see tools_supported

    def __init__(self, *, name: str, default_model: str, timeouts: Timeouts | None = None) -> None:
        self.name = name
        self.default_model = default_model
        self.timeouts = timeouts or Timeouts()

    def tools_supported(self, model: str) -> bool:
        """Whether ``model`` may be offered tools through this provider (its adapter's capability;
        an adapter for servers of many models narrows it by its configuration)."""
        return self.supports_tools

    def check_tools(self, model: str, tools: Sequence[ToolSpec]) -> str | None:
        """Why ``tools`` cannot be offered to ``model`` as they are (e.g. a JSON Schema keyword the
        provider's schema dialect lacks), as a sentence naming the tool and the fix; None when they
        can. The turn service asks before it stores anything: a refusal, never an upstream 400."""
        return None

    def check_tool_choice(self, model: str, choice: str | Mapping[str, object]) -> str | None:
        """Why ``tool_choice`` cannot be honoured by ``model`` (a sentence naming it and the fix);
        None when it can. Asked before anything is stored, like :meth:`check_tools`."""
        return None

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        raise NotImplementedError

    async def complete(self, request: ProviderRequest) -> Completion:
        parts: list[str] = []
        usage = finish = response_id = None
        calls = ToolCallAssembler()
        async for chunk in self.stream(request):
            parts.append(chunk.text)
            calls.add(chunk.tool_calls)
            usage = chunk.usage or usage
            finish = chunk.finish_reason or finish
            response_id = chunk.response_id or response_id
        return Completion("".join(parts), usage, finish, response_id, calls.calls())

    async def aclose(self) -> None:
        """Release pooled connections. Providers are built once per process."""


class ToolCallAssembler:
    """Streamed :class:`ToolCallChunk` pieces put back together, by index, in the order calls began."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list] = {}  # index -> [id, name, argument pieces, metadata]

    def add(self, pieces: tuple[ToolCallChunk, ...]) -> None:
        for piece in pieces:
            call = self._calls.setdefault(piece.index, [piece.id, piece.name, [], dict(piece.metadata)])
            call[0] = call[0] or piece.id
            call[1] = call[1] or piece.name
            if piece.arguments:
                call[2].append(piece.arguments)
            if piece.metadata:
                call[3].update(piece.metadata)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(c[0], c[1], "".join(c[2]), c[3]) for c in self._calls.values())
