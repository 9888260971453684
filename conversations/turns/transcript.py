"""An answer as it streams, and the outcome it ends with.

:class:`Transcript` takes a provider's chunks in order and keeps what the
closing write stores: the text, the code blocks found in it, the usage, finish
reason and response id, and the provider and model that answered. Each way a
turn ends (:meth:`~Transcript.complete`, :meth:`~Transcript.failed`,
:meth:`~Transcript.interrupted`) is one call giving its
:class:`~conversations.turns.rules.TurnOutcome`. Usage the provider did not
report (an answer cut short, a provider that never tells) is estimated from the
prompt and the text so far, and the outcome says so. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson

from billing.prices import price_book
from conversations.artifacts import CodeBlock, FenceScanner
from conversations.models import Message
from conversations.turns.parts import answer_parts
from conversations.turns.rules import TurnOutcome
from providers.base import ProviderChunk, ProviderRequest, ToolCall, ToolCallChunk, Usage, estimate_usage

TOOL_CALLS = "tool_calls"  # the finish reason of an answer that ends in tool calls


class ToolCallPiece:
    """What one streamed piece did to the answer's calls: began ``call_id`` (``started``, with
    its ``name``) and/or added an ``arguments`` fragment to it."""

    __slots__ = ("arguments", "call_id", "index", "name", "started")

    def __init__(self, index: int, call_id: str, name: str, started: bool, arguments: str) -> None:
        self.index, self.call_id, self.name, self.started, self.arguments = (
            index,
            call_id,
            name,
            started,
            arguments,
        )


class Transcript:
    """One answer's chunks so far. ``prompt`` is what usage estimates count as input."""

    def __init__(
        self, prompt: ProviderRequest, provider: str, model: str, *, json_required: bool = False
    ) -> None:
        self.prompt = prompt
        self.provider, self.model = provider, model
        self.json_required = json_required  # a complete answer must parse as JSON
        self.usage: Usage | None = None  # as the provider reported it
        self.finish_reason = ""
        self.response_id = ""
        self._parts: list[str] = []
        self._blocks: list[CodeBlock] = []
        self._scanner = FenceScanner()
        self._calls: dict[int, list] = {}  # provider index -> [id, name, argument pieces, metadata]

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def artifacts(self) -> tuple[CodeBlock, ...]:
        return tuple(self._blocks)

    def served_by(self, provider: str, model: str) -> None:
        """The answer comes from ``provider``/``model`` from now on (a fallback, before the first token)."""
        self.provider, self.model = provider, model

    def add(self, chunk: ProviderChunk) -> list[CodeBlock]:
        """Take the next chunk; return the code blocks its text closed."""
        closed: list[CodeBlock] = []
        if chunk.text:
            self._parts.append(chunk.text)
            closed = self._scanner.feed(chunk.text)
            self._blocks.extend(closed)
        self.usage = chunk.usage or self.usage
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.response_id = chunk.response_id or self.response_id
        return closed

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The answer's calls so far, in the order they began (the last may be cut mid-arguments)."""
        return tuple(ToolCall(c[0], c[1], "".join(c[2]), c[3]) for c in self._calls.values())

    def add_tool_pieces(self, pieces: tuple[ToolCallChunk, ...]) -> list[ToolCallPiece]:
        """Take a chunk's tool-call pieces (accumulated by index); return what each did. A call the
        provider gave no id gets one (``call_…``), so its result can name it."""
        done: list[ToolCallPiece] = []
        for piece in pieces:
            call = self._calls.get(piece.index)
            started = call is None
            if call is None:
                call = self._calls[piece.index] = [
                    piece.id or f"call_{uuid.uuid4().hex[:24]}",
                    piece.name,
                    [],
                    dict(piece.metadata),
                ]
            else:
                call[1] = call[1] or piece.name
                call[3].update(piece.metadata)
            if piece.arguments:
                call[2].append(piece.arguments)
            ordinal = list(self._calls).index(piece.index)  # calls are few: a list is fine
            done.append(ToolCallPiece(ordinal, call[0], call[1], started, piece.arguments))
        return done

    def end_of_text(self) -> list[CodeBlock]:
        """The whole answer has arrived: return the blocks its last line or an unclosed fence held."""
        closed = self._scanner.finish()
        self._blocks.extend(closed)
        return closed

    def complete(self) -> TurnOutcome:
        """The answer as it ended upstream; ``failed`` (``invalid_json``) when JSON was asked for and not given.

        Ends the text first if :meth:`end_of_text` was not called.
        """
        self.end_of_text()
        if self._calls:  # an answer that calls tools is complete as its calls: no JSON text to check
            return self._outcome(
                Message.Status.COMPLETE, finish_reason=TOOL_CALLS, response_id=self.response_id
            )
        if self.json_required:
            try:
                orjson.loads(self.text)
            except orjson.JSONDecodeError as exc:
                return self._outcome(
                    Message.Status.FAILED,
                    finish_reason=self.finish_reason,
                    response_id=self.response_id,
                    error_code="invalid_json",
                    error_message=f"The model's reply is not valid JSON ({exc}); the raw text was kept.",
                )
        return self._outcome(
            Message.Status.COMPLETE,
            finish_reason=self.finish_reason or "stop",
            response_id=self.response_id,
        )

    def failed(self, code: str, message: str) -> TurnOutcome:
        """Ended by an error (the provider's, or ours); the partial text is kept."""
        return self._outcome(Message.Status.FAILED, error_code=code, error_message=message)

    def interrupted(self, code: str, message: str) -> TurnOutcome:
        """Stopped, or its client went away; the partial text is kept."""
        return self._outcome(Message.Status.INTERRUPTED, error_code=code, error_message=message)

    def _outcome(self, status: str, **fields: str) -> TurnOutcome:
        text = self.text
        said = text + "".join(call.name + call.arguments for call in self.tool_calls)
        usage = self.usage if self.usage is not None else estimate_usage(self.prompt, said)
        return TurnOutcome(
            cached_input_tokens=usage.cached_input_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=self._cost(status, text, usage),
            status=status,
            content=text,
            provider=self.provider,
            model=self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            usage_estimated=usage.estimated,
            artifacts=self.artifacts,
            parts=tuple(answer_parts(text, self.tool_calls, complete=status == Message.Status.COMPLETE)),
            **fields,
        )

    def _cost(self, status: str, text: str, usage: Usage):
        """What the answer cost at its model's price (None: unknown); nothing for an answer that ended
        before any token with no usage reported (a refused or unreachable upstream charges nothing)."""
        if not text and not self._calls and usage.estimated and status != Message.Status.COMPLETE:
            return Decimal(0)
        return price_book.cost(
            self.provider, self.model, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens
        )
