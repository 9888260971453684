"""The turn service: one chat turn from the user's message to exactly one terminal state.

``start_turn`` validates, resolves the provider, and does the opening writes
(one thread hop); it raises :class:`~conversations.errors.TurnRejected` before
anything streams. The returned turn's ``events()`` streams the provider, emits
the seq-numbered events of :mod:`conversations.events`, and ends the answer
``complete``, ``interrupted`` (stopped or disconnected; partial text kept) or
``failed`` (error code kept) with one closing write that survives cancellation.
Edges never call providers or the ORM: they call this module.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.conf import settings

from conversations import turn_store
from conversations.artifacts import CodeBlock
from conversations.db import DATABASE_DOWN, database_problem, run_db
from conversations.errors import (
    InvalidTurnInput,
    PayloadTooLarge,
    RepeatedTurnInProgress,
    TurnRejected,
    UnknownProviderOrModel,
)
from conversations.events import ArtifactReady, Completed, Delta, Failed, Started, TurnEvent, UsageReported
from conversations.models import Message
from conversations.ratelimit import turn_rate_limiter
from conversations.relay import Relay, Stopped
from conversations.replay import stored_turn_events
from conversations.retry import Candidate, RetryPolicy, stream_with_retries
from conversations.running import accepting_turns
from conversations.transcript import Transcript
from conversations.turn_rules import ExistingAnswer, OpenedTurn, TurnOpening, TurnOutcome
from providers.base import ChatMessage, Provider, ProviderChunk, ProviderError, ProviderRequest
from providers.registry import ProviderNotConfigured, UnknownModel, UnknownProvider, get_registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A decoded request for one turn, whatever edge it came from.

    ``context``, when given, is the client's own transcript (OpenAI-compatible
    and seed clients send one) and replaces the stored history for this call.
    """

    session_key: str
    content: str
    owner_id: int | None = None
    client_message_id: str | None = None
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    json_output: bool = False
    json_schema: Mapping[str, object] | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    context: tuple[ChatMessage, ...] | None = None
    history_limit: int | None = None
    edit_of: str | None = None
    regenerate_of: str | None = None
    rate_limit_key: str | None = None  # who is charged for this turn (API key, user or IP)
    rate_limit: str | None = None  # this turn's rate ("20/60 seconds"): None → RATE_LIMIT_TURNS, "" → none
    system_default: str | None = None  # told to the provider when the conversation has no system prompt


def validate_turn_request(request: TurnRequest) -> None:
    if request.regenerate_of is None and (not request.content or not request.content.strip()):
        raise InvalidTurnInput(
            "content is empty: send the user's message as a non-empty string.", field="content"
        )
    size = len(request.content.encode("utf-8", "surrogatepass"))
    if size > settings.MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"content is {size} bytes, over the {settings.MAX_MESSAGE_BYTES}-byte limit (MAX_MESSAGE_BYTES): "
            "shorten the message.",
            field="content",
        )
    if not request.session_key or len(request.session_key) > 128:
        raise InvalidTurnInput("session key must be 1 to 128 characters.", field="session_key")
    if request.temperature is not None and not (0.0 <= request.temperature <= 2.0):
        raise InvalidTurnInput("temperature must be between 0 and 2.", field="temperature")
    if request.max_tokens is not None and not (1 <= request.max_tokens <= 1_000_000):
        raise InvalidTurnInput("max_tokens must be a whole number from 1 to 1000000.", field="max_tokens")
    texts = (request.content, request.system or "", request.client_message_id or "", request.session_key)
    if any("\x00" in text for text in texts):
        raise InvalidTurnInput("Text must not contain NUL (\\u0000) characters: remove them.")
    if request.client_message_id is not None and not (0 < len(request.client_message_id) <= 128):
        raise InvalidTurnInput("client_message_id must be 1 to 128 characters.", field="client_message_id")


def _resolve(provider: str | None, model: str | None) -> tuple[Provider, str]:
    try:
        resolved = get_registry().resolve(provider, model)
        if resolved[0].kind == "demo" and not settings.DEMO_PROVIDER_ALLOWED:
            raise TurnRejected(
                "No LLM provider is configured on this server: set LLM_PROVIDER and its key "
                "(OPENAI_API_KEY, GEMINI_API_KEY, ZAI_API_KEY or OPENAI_COMPATIBLE_BASE_URL), "
                "or LLM_PROVIDER=demo to serve the offline demo on purpose.",
                code="provider_not_configured",
                status=503,
            )
        return resolved
    except (UnknownProvider, UnknownModel) as exc:
        raise UnknownProviderOrModel(str(exc)) from None
    except ProviderNotConfigured as exc:
        # Asked for by name: the client's choice (422). The server's default: its configuration (503).
        raise TurnRejected(
            str(exc), code="provider_not_configured", status=422 if provider else 503
        ) from None


def _session_model(opened: OpenedTurn, default: tuple[Provider, str]) -> tuple[Provider, str]:
    """The session's stored provider and model, chosen by the opening; the server's default when
    this server no longer serves them (the answer then records who really answered)."""
    try:
        return _resolve(opened.provider, opened.model or None)
    except TurnRejected as exc:
        logger.warning(
            "session %s: its provider %s:%s is not available (%s); answering with the default %s:%s",
            opened.session_key,
            opened.provider,
            opened.model,
            exc.message,
            default[0].name,
            default[1],
        )
        return default


def _fallbacks(primary: tuple[Provider, str]) -> list[tuple[Provider, str]]:
    candidates = [primary]
    for entry in settings.LLM_FALLBACKS:
        name, _, model = entry.partition(":")
        try:
            candidate = get_registry().resolve(name, model or None)
        except (UnknownProvider, UnknownModel, ProviderNotConfigured) as exc:
            logger.warning("LLM_FALLBACKS entry %r skipped: %s", entry, exc)
            continue
        if (candidate[0].name, candidate[1]) not in {(p.name, m) for p, m in candidates}:
            candidates.append(candidate)
    return candidates


# Closing writes run as tasks kept here, so a cancelled stream cannot cancel its own save.
_pending_saves: set[asyncio.Task] = set()


def _start_save(conversation_id: str, message_id: str, outcome: TurnOutcome) -> asyncio.Task:
    """The closing write as a task of its own, kept until done: cancelling its caller cannot stop it."""
    task = asyncio.ensure_future(turn_store.finish_turn(conversation_id, message_id, outcome))
    _pending_saves.add(task)
    task.add_done_callback(_pending_saves.discard)
    return task


async def _save_outcome(conversation_id: str, message_id: str, outcome: TurnOutcome) -> None:
    await asyncio.shield(_start_save(conversation_id, message_id, outcome))


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
        self, request: TurnRequest, opened: OpenedTurn, candidates: list[tuple[Provider, str]]
    ) -> None:
        self.request = request
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
        self._relay = relay = Relay(self._upstream())
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
            for block in transcript.end_of_text():
                yield self._artifact_event(block)
            outcome = transcript.complete()
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
            await _save_outcome(self.opened.conversation_id, self.message_id, gone)
            raise
        finally:
            relay.cancel()
        outcome = await self._close(outcome)
        for event in _closing_events(outcome, self.message_id, self._next_seq, retry_after):
            yield event

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _transcript(self) -> Transcript:
        """The answer's transcript; its usage estimates count the whole prompt (history, not a chain id)."""
        provider, model = self.candidates[0]
        json_required = self.request.json_output or self.request.json_schema is not None
        prompt = _provider_request(self.request, self.opened, model, False)
        return Transcript(prompt, provider.name, model, json_required=json_required)

    def _upstream(self) -> AsyncGenerator[Candidate | ProviderChunk, None]:
        policy = RetryPolicy(
            settings.LLM_RETRY_ATTEMPTS, settings.LLM_RETRY_BACKOFF, settings.LLM_RETRY_MAX_WAIT
        )
        chained = self.opened.previous_response_id is not None and self.request.context is None
        build = functools.partial(_provider_request, self.request, self.opened)
        return stream_with_retries(self.candidates, build, policy, chained=chained)

    async def _close(self, outcome: TurnOutcome) -> TurnOutcome:
        """The closing write (it survives cancellation); the outcome as stored, or ``failed`` if it could not be."""
        try:
            await _save_outcome(self.opened.conversation_id, self.message_id, outcome)
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

    def _artifact_event(self, block: CodeBlock) -> ArtifactReady:
        return ArtifactReady(
            self._next_seq(), self.message_id, block.position, block.language, block.filename, block.content
        )


def _provider_request(request: TurnRequest, opened: OpenedTurn, model: str, chained: bool) -> ProviderRequest:
    """What ``model`` is asked: the client's transcript, or the stored history (only the new
    message when ``chained`` on the provider's side through ``previous_response_id``)."""
    if request.context is not None:
        messages = request.context
    elif chained:
        messages = (ChatMessage("user", opened.user_content),)
    else:
        messages = (*opened.history, ChatMessage("user", opened.user_content))
    return ProviderRequest(
        model=model,
        messages=messages,
        system=opened.system or request.system_default or None,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        json_output=request.json_output,
        json_schema=request.json_schema,
        previous_response_id=opened.previous_response_id if chained else None,
        extra_headers=request.extra_headers,
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


async def _open_shielded(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """Store the opening rows; a client that goes away meanwhile cannot leave an answer ``streaming``.

    The write may commit after the caller is cancelled (it is already on the wire, or in a
    thread): it runs on, and an answer it opened is closed at once as ``interrupted``.
    """
    task = asyncio.ensure_future(turn_store.open_turn(opening))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(functools.partial(_close_abandoned_opening, opening))
        raise


def _close_abandoned_opening(opening: TurnOpening, task: asyncio.Task) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    opened = task.result()
    if not isinstance(opened, OpenedTurn):
        return
    outcome = TurnOutcome(
        status=Message.Status.INTERRUPTED,
        content="",
        provider=opened.provider,
        model=opened.model,
        error_code="disconnected",
        error_message="The client went away before the answer started.",
    )
    _start_save(opened.conversation_id, opened.assistant_message_id, outcome)


async def start_turn(request: TurnRequest) -> Turn:
    """Validate, resolve the provider and store the opening rows; raise TurnRejected on bad input."""
    if not accepting_turns():
        raise TurnRejected(
            "The server is shutting down: retry in a moment (another instance will answer).",
            code="shutting_down",
            status=503,
        )
    validate_turn_request(request)
    primary = _resolve(request.provider, request.model)
    rate_key = request.rate_limit_key or (
        f"user:{request.owner_id}" if request.owner_id is not None else None
    )
    rate = settings.RATE_LIMIT_TURNS if request.rate_limit is None else request.rate_limit
    if rate_key is not None and rate:
        decision = await turn_rate_limiter.hit(rate_key, rate)
        if not decision.allowed:
            raise TurnRejected(
                f"Too many messages: the limit is {rate}. Retry after the given seconds.",
                code="rate_limited",
                status=429,
                retry_after=round(decision.retry_after, 1),
            )
    opening = TurnOpening(
        owner_id=request.owner_id,
        session_key=request.session_key,
        user_content=request.content,
        client_message_id=request.client_message_id,
        provider=primary[0].name,
        model=primary[1],
        system=request.system,
        history_limit=settings.MAX_HISTORY_MESSAGES
        if request.history_limit is None
        else request.history_limit,
        session_model=request.provider is None and request.model is None,
        edit_of=request.edit_of,
        regenerate_of=request.regenerate_of,
        stale_after=timedelta(seconds=settings.TURN_STALE_SECONDS),
    )
    opened = await _open_shielded(opening)
    if isinstance(opened, ExistingAnswer):
        if opened.status in (Message.Status.STREAMING, Message.Status.PENDING):
            raise RepeatedTurnInProgress(
                "This message is still being answered: wait for it, or resume its stream.",
                message_id=opened.message_id,
            )
        return ReplayedTurn(await run_db(stored_turn_events, opened.message_id))
    if (opened.provider, opened.model) != (primary[0].name, primary[1]):
        primary = _session_model(opened, primary)
    return LiveTurn(request, opened, _fallbacks(primary))
