"""A turn being answered: the provider's stream relayed as events, ended by one closing write.

:class:`LiveTurn` streams the provider (through :mod:`~conversations.turns.retry`'s candidates,
in a :class:`~conversations.turns.relay.Relay`), emits the seq-numbered events of
:mod:`conversations.events`, keeps what was said in a :class:`~conversations.turns.transcript.Transcript`
and ends the answer ``complete``, ``interrupted`` (stopped or disconnected; partial text kept) or
``failed`` (error code kept) with one closing write that survives cancellation.
:class:`ReplayedTurn` is a repeated message's stored answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace

from django.conf import settings

from conversations import telemetry
from conversations.artifacts import CodeBlock
from conversations.attachments.turn_files import with_bytes
from conversations.db_errors import DATABASE_DOWN, database_problem
from conversations.events import (
    ArtifactReady,
    Completed,
    Delta,
    Failed,
    Started,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStarted,
    TurnEvent,
    UsageReported,
)
from conversations.models import Message
from conversations.ratelimit import token_rate_limiter
from conversations.telemetry.base import TurnTrace
from conversations.turns.parts import parsed_arguments
from conversations.turns.relay import Relay, Stopped
from conversations.turns.request import TurnRequest
from conversations.turns.retry import Candidate, RetryPolicy, stream_with_retries
from conversations.turns.rules import OpenedTurn, TurnOutcome
from conversations.turns.store import turn_finish_shielded
from conversations.turns.transcript import Transcript
from providers.base import Provider, ProviderChunk, ProviderError, ProviderRequest

logger = logging.getLogger(__name__)


class ReplayedTurn:
    """A turn whose ``client_message_id`` was seen before: its stored events, the provider not called."""

    def __init__(self, events: list[TurnEvent]) -> None:
        self.message_id = events[0].message_id
        self._events = events

    async def events(self) -> AsyncIterator[TurnEvent]:
        for event in self._events:
            yield event

    def stop(self) -> bool:
        return False


class LiveTurn:
    """A turn being answered by a provider. Consume ``events()`` once."""

    # (error code, message) of the endings that are not the provider's
    RELAY_FAILED = (
        "internal_error",
        "The server failed while relaying the answer; the partial text was kept.",
    )
    DISCONNECTED = ("disconnected", "The client went away before the answer was complete.")

    def __init__(
        self,
        request: TurnRequest,
        opened: OpenedTurn,
        candidates: list[tuple[Provider, str]],
        files: dict[str, bytes] | None = None,
    ) -> None:
        self.request = request
        self.files = files or {}  # the bytes of the files the model is sent, by ref or URL
        self.opened = opened
        self.message_id = opened.assistant_message_id
        self.candidates = candidates
        self._seq = 0
        self._relay: Relay | None = None
        self._stop_requested = False
        self._stop_reason = ("stopped", "Stopped before the answer was complete.")

    def stop(
        self, *, code: str = "stopped", message: str = "Stopped before the answer was complete."
    ) -> bool:
        """Stop generating: the upstream request is cancelled and the answer saved ``interrupted``."""
        if not self._stop_requested:
            self._stop_requested, self._stop_reason = True, (code, message)
        if self._relay is not None:
            self._relay.cancel()
        return True

    async def events(self) -> AsyncIterator[TurnEvent]:
        """Started, then the answer's deltas and artifacts, then one closing write, usage and the end."""
        transcript, retry_after = self._transcript(), None
        yield Started(
            self._next_seq(),
            self.message_id,
            session_key=self.opened.session_key,
            conversation_id=self.opened.conversation_id,
            user_message_id=self.opened.user_message_id,
            provider=transcript.provider,
            model=transcript.model,
        )
        trace = telemetry.current().turn(self.opened.session_key)
        self._relay = relay = Relay(self._upstream(trace))
        if self._stop_requested:
            relay.cancel()
        try:
            async for piece in relay:
                if isinstance(piece, Candidate):
                    transcript.served_by(piece.provider.name, piece.model)
                    continue
                closed = transcript.add(piece)
                if piece.text:
                    yield Delta(self._next_seq(), self.message_id, piece.text)
                for block in closed:
                    yield self._artifact_event(block)
                if piece.tool_calls:
                    for event in self._tool_events(transcript, piece):
                        yield event
            for block in transcript.end_of_text():
                yield self._artifact_event(block)
            outcome = transcript.complete()
            for index, call in enumerate(transcript.tool_calls):  # whole now: the stream ended
                yield ToolCallDone(
                    self._next_seq(),
                    self.message_id,
                    index,
                    call.id,
                    call.name,
                    call.arguments,
                    parsed_arguments(call.arguments),
                )
        except Stopped:
            outcome = transcript.interrupted(*self._stop_reason)
        except ProviderError as exc:
            outcome, retry_after = transcript.failed(exc.code, exc.message), exc.retry_after
        except Exception:
            logger.exception("turn %s failed unexpectedly", self.message_id)
            outcome = transcript.failed(*self.RELAY_FAILED)
        except BaseException:  # cancelled or the client went away: keep what we have
            relay.cancel()
            gone = transcript.interrupted(*self.DISCONNECTED)
            trace.end(gone)
            await turn_finish_shielded(self.opened.conversation_id, self.message_id, gone)
            raise
        finally:
            relay.cancel()
        outcome = await self._close(outcome)
        _charge_tokens(self.request, outcome)
        trace.end(outcome)
        for event in _closing_events(outcome, self.message_id, self._next_seq, retry_after):
            yield event

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _transcript(self) -> Transcript:
        """The answer's transcript; its usage estimates count the whole prompt (history, not a chain id)."""
        provider, model = self.candidates[0]
        json_required = self.request.json_output or self.request.json_schema is not None
        prompt = _provider_request(self.request, self.opened, model, False, self.files)
        return Transcript(prompt, provider.name, model, json_required=json_required)

    def _upstream(self, trace: TurnTrace) -> AsyncGenerator[Candidate | ProviderChunk, None]:
        policy = RetryPolicy(
            settings.LLM_RETRY_ATTEMPTS, settings.LLM_RETRY_BACKOFF, settings.LLM_RETRY_MAX_WAIT
        )
        chained = self.opened.previous_response_id is not None and self.request.context is None
        build = functools.partial(_provider_request, self.request, self.opened, files=self.files)
        return stream_with_retries(self.candidates, build, policy, chained=chained, trace=trace)

    async def _close(self, outcome: TurnOutcome) -> TurnOutcome:
        """The closing write (it survives cancellation); the outcome as stored, or ``failed`` if it could not be."""
        try:
            await turn_finish_shielded(self.opened.conversation_id, self.message_id, outcome)
        except DATABASE_DOWN as exc:
            # retried for TURN_SAVE_RETRY_SECONDS already; the sweeper keeps the text
            code, reason = database_problem(exc)
            logger.error("turn %s: the closing write failed (%s)", self.message_id, code)
            return replace(
                outcome,
                status=Message.Status.FAILED,
                error_code=code,
                error_message=f"The answer could not be saved. {reason}",
            )
        return outcome

    def _tool_events(self, transcript: Transcript, chunk: ProviderChunk) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        for piece in transcript.add_tool_pieces(chunk.tool_calls):
            if piece.started:
                events.append(
                    ToolCallStarted(self._next_seq(), self.message_id, piece.index, piece.call_id, piece.name)
                )
            if piece.arguments:
                events.append(
                    ToolCallDelta(
                        self._next_seq(), self.message_id, piece.index, piece.call_id, piece.arguments
                    )
                )
        return events

    def _artifact_event(self, block: CodeBlock) -> ArtifactReady:
        return ArtifactReady(
            self._next_seq(), self.message_id, block.position, block.language, block.filename, block.content
        )


def _charge_tokens(request: TurnRequest, outcome: TurnOutcome) -> None:
    """The turn's tokens against its key's token rate (``RATE_LIMIT_TOKENS``), in the background."""
    key = request.limit_key
    tokens = (outcome.input_tokens or 0) + (outcome.output_tokens or 0)
    if key is not None and tokens and settings.RATE_LIMIT_TOKENS and settings.REDIS_URL:
        task = asyncio.get_running_loop().create_task(token_rate_limiter.spend(key, tokens))
        _charging.add(task)  # a task only the loop refers to may be collected before it runs
        task.add_done_callback(_charging.discard)


_charging: set[asyncio.Task] = set()


def _provider_request(
    request: TurnRequest, opened: OpenedTurn, model: str, chained: bool, files: dict[str, bytes] | None = None
) -> ProviderRequest:
    """What ``model`` is asked: the client's transcript, or the stored history (only the new
    message when ``chained`` on the provider's side through ``previous_response_id``), with the
    bytes of the files they carry (``files``, read once per turn)."""
    if request.context is not None:
        messages = request.context
    elif chained:
        messages = (opened.new_message,)
    else:
        messages = (*opened.history, opened.new_message)
    if files:
        messages = with_bytes(messages, files)
    return ProviderRequest(
        model=model,
        messages=messages,
        system=opened.system or request.system_default or None,
        temperature=request.temperature,
        max_tokens=opened.max_tokens or request.max_tokens,  # a budget's cap is never above the request's
        json_output=request.json_output,
        json_schema=request.json_schema,
        previous_response_id=opened.previous_response_id if chained else None,
        extra_headers=request.extra_headers,
        tools=request.tools,
        tool_choice=request.tool_choice,
        parallel_tool_calls=request.parallel_tool_calls,
    )


def _closing_events(
    outcome: TurnOutcome, message_id: str, next_seq: Callable[[], int], retry_after: float | None
) -> list[TurnEvent]:
    """The events that end a turn: its usage, then completed or failed."""
    tokens_in, tokens_out = outcome.input_tokens or 0, outcome.output_tokens or 0
    usage = UsageReported(
        next_seq(), message_id, tokens_in, tokens_out, tokens_in + tokens_out, outcome.usage_estimated
    )
    if outcome.status == Message.Status.COMPLETE:
        terminal: TurnEvent = Completed(
            next_seq(),
            message_id,
            outcome.content,
            outcome.finish_reason,
            outcome.response_id,
            outcome.provider,
            outcome.model,
        )
    else:
        terminal = Failed(
            next_seq(),
            message_id,
            outcome.status,
            outcome.error_code,
            outcome.error_message,
            outcome.content,
            retry_after,
        )
    return [usage, terminal]


Turn = LiveTurn | ReplayedTurn
