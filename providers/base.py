"""The one interface every LLM provider adapter implements.

A provider turns a :class:`ProviderRequest` into an async stream of
:class:`ProviderChunk`. Adapters translate their SDK's exceptions into the
:class:`ProviderError` taxonomy below; no SDK type or exception crosses this
boundary. This package never imports from ``conversations``.
"""

from __future__ import annotations

import base64
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


IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
PDF = "application/pdf"
TEXT = "text/plain"
ATTACHMENT_TYPES = IMAGE_TYPES | {PDF, TEXT}  # every type the server takes (docs/attachments.md)


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file a user message carries: an image, a PDF or a text file.

    ``data`` is its bytes exactly as the user sent them (never re-encoded), or None when the
    attachment is a remote ``url`` (https) the provider may fetch itself; an adapter whose provider
    needs bytes is given them (the turn service fetches the URL safely first). ``ref`` is the
    stored attachment's id (the server's own; never sent to a provider).
    """

    media_type: str  # one of ATTACHMENT_TYPES; "image/*" for a remote image of a type not yet known
    data: bytes | None = None
    url: str = ""
    filename: str = ""
    size: int = 0  # bytes; known even when ``data`` is not loaded
    detail: str | None = None  # OpenAI's image detail (auto, low, high), when the client gave one
    ref: str = ""
    sha256: str = ""  # hex, when known (a stored attachment's)

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES

    @property
    def data_url(self) -> str:
        """``data:<type>;base64,…`` of :attr:`data` (the shape OpenAI's wires take inline bytes in)."""
        return f"data:{self.media_type};base64,{base64.b64encode(self.data or b'').decode('ascii')}"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation sent to a model. An assistant message may carry the
    ``tool_calls`` it made (its ``content`` the text said before them); a ``tool`` message carries
    the ``tool_results`` of one round (an adapter sends them in its provider's shape); a user
    message may carry ``attachments`` (after its text, in the order the user attached them)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    attachments: tuple[InputFile, ...] = ()


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


IMAGE_TOKENS = 1_600  # an image's input tokens, estimated high (OpenAI: up to ~1,500 at high detail)
PDF_BYTES_PER_TOKEN = 25  # a PDF's input tokens, estimated from its size (text and page images)


def attachment_tokens(media_type: str, size: int) -> int:
    """An attachment's input tokens, estimated before the provider counts them (budget reservations,
    usage of a cut answer): a fixed count per image, a PDF by its size, a text file at ~4 bytes a token."""
    if media_type in IMAGE_TYPES:
        return IMAGE_TOKENS
    if media_type == PDF:
        return max(IMAGE_TOKENS, -(-size // PDF_BYTES_PER_TOKEN))
    return -(-size // 4)


def estimate_usage(request: ProviderRequest, output_text: str) -> Usage:
    """A rough count (about four characters per token), marked ``estimated``.

    For replies the provider reported no usage for, e.g. one cut short by a disconnect.
    """

    def tokens(text: str) -> int:
        return -(-len(text) // 4)

    def message_tokens(message: ChatMessage) -> int:
        calls = sum(tokens(c.name) + tokens(c.arguments) for c in message.tool_calls)
        files = sum(attachment_tokens(a.media_type, a.size) for a in message.attachments)
        return tokens(message.content) + calls + files + sum(tokens(r.output) for r in message.tool_results)

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

    def attachment_types(self, model: str) -> frozenset[str]:
        """The media types (of :data:`ATTACHMENT_TYPES`) ``model`` may be sent through this
        provider: its adapter's declared capability (narrowed by configuration for servers of many
        models). ``text/plain`` is in every adapter's set that takes any: a text file is sent as a
        text part (the file's own text) where a wire has no file part for it."""
        return frozenset()

    def fetches_urls(self, model: str, media_type: str) -> bool:
        """Whether the provider fetches a remote (https) attachment of ``media_type`` itself; when
        not, the turn service fetches it (with SSRF protection) and the adapter gets its bytes."""
        return False

    def check_attachments(self, model: str, attachments: Sequence[InputFile]) -> str | None:
        """Why ``attachments`` cannot go to ``model`` (a sentence naming the model, the type and
        the fix), or None. Asked before anything is stored, like :meth:`check_tools`."""
        allowed = self.attachment_types(model)
        for attachment in attachments:
            wanted = attachment.media_type
            if wanted not in allowed and not (wanted == "image/*" and allowed & IMAGE_TYPES):
                takes = ", ".join(sorted(allowed)) or "no attachments"
                return (
                    f"The model {self.name}:{model} cannot take {attachment.media_type} attachments here "
                    f"({self.kind} adapter; it takes {takes}): name a model that can (docs/attachments.md "
                    "lists them), or send the message without it."
                )
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


# ---- attachments: what every adapter that takes them shares ------------------------------------

#: The label of a text attachment the client sent without a filename.
TEXT_FILE_NAME = "attachment.txt"


def text_file_text(file: InputFile) -> str:
    """A ``text/plain`` attachment as the text an adapter sends for it (a text part, or a wire's
    text input): its filename (:data:`TEXT_FILE_NAME` when it has none), a colon and a newline,
    then the file's text. The bytes were checked as UTF-8 when the file was accepted; a byte that
    is not would show as U+FFFD rather than fail the turn."""
    text = (file.data or b"").decode("utf-8", errors="replace")
    return f"{file.filename or TEXT_FILE_NAME}:\n{text}"


def attachment_data(provider: str, file: InputFile) -> bytes:
    """The bytes of ``file`` for an adapter that sends them inline. A remote attachment comes
    with its bytes to a provider that does not fetch URLs itself (the turn service fetches it:
    :meth:`Provider.fetches_urls`); without them it cannot be sent, and the turn is refused."""
    if file.data is None:
        shown = file.filename or file.url or file.media_type
        raise InvalidRequest(
            provider,
            f"the attachment {shown!r} came without its bytes and this provider does not fetch URLs: "
            "attach the file itself instead of its address",
        )
    return file.data


def refuse_unsendable(provider: Provider, request: ProviderRequest) -> None:
    """Raise :class:`InvalidRequest` (the sentence of :meth:`Provider.check_attachments`) when a
    message of ``request``, the history's included, carries an attachment its model cannot take:
    an adapter never sends a part its provider would refuse or ignore. Costs nothing without
    attachments."""
    files = [file for message in request.messages for file in message.attachments]
    if files:
        refusal = provider.check_attachments(request.model, files)
        if refusal is not None:
            raise InvalidRequest(provider.name, refusal)


def image_type(media_type: str) -> bool:
    """Whether ``media_type`` is an image's: one of :data:`IMAGE_TYPES`, or ``image/*`` (a remote
    image whose exact type is not known before it is fetched)."""
    return media_type in IMAGE_TYPES or media_type == "image/*"
