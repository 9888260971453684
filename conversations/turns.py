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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

import orjson
from django.conf import settings

from conversations import turn_store
from conversations.artifacts import CodeBlock, FenceScanner
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
from conversations.replay import stored_turn_events
from conversations.retry import RetryPolicy, ServedBy, stream_with_retries
from conversations.running import accepting_turns
from conversations.turn_rules import ExistingAnswer, OpenedTurn, TurnOpening, TurnOutcome
from providers.base import ChatMessage, Provider, ProviderError, ProviderRequest, Usage, estimate_usage
from providers.registry import ProviderNotConfigured, UnknownModel, UnknownProvider, get_registry

logger = logging.getLogger(__name__)

_STOPPED = object()
_END = object()


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

    def __init__(
        self, request: TurnRequest, opened: OpenedTurn, candidates: list[tuple[Provider, str]]
    ) -> None:
        self.request = request
        self.opened = opened
        self.message_id = opened.assistant_message_id
        self.candidates = candidates
        self.served = ServedBy(*candidates[0])
        self._seq = 0
        self._producer: asyncio.Task | None = None
        self._stop_requested = False
        self._stop_reason = ("stopped", "Stopped before the answer was complete.")
        self._retry_after: float | None = None

    def stop(
        self, *, code: str = "stopped", message: str = "Stopped before the answer was complete."
    ) -> bool:
        """Stop generating: the upstream request is cancelled and the answer saved ``interrupted``."""
        if not self._stop_requested:
            self._stop_requested, self._stop_reason = True, (code, message)
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
        return True

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _provider_request(self, model: str, chained: bool) -> ProviderRequest:
        request, opened = self.request, self.opened
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

    async def _produce(self, queue: asyncio.Queue) -> None:
        stream = stream_with_retries(
            self.candidates,
            self._provider_request,
            RetryPolicy(settings.LLM_RETRY_ATTEMPTS, settings.LLM_RETRY_BACKOFF, settings.LLM_RETRY_MAX_WAIT),
            self.served,
            chained=self.opened.previous_response_id is not None and self.request.context is None,
        )
        try:
            async for chunk in stream:
                queue.put_nowait(chunk)
            queue.put_nowait(_END)
        except asyncio.CancelledError:
            queue.put_nowait(_STOPPED)
            raise
        except BaseException as exc:  # handed to the consumer, which decides the terminal state
            queue.put_nowait(exc)
        finally:
            await stream.aclose()

    def _outcome(self, status: str, text: str, usage: Usage | None, **fields: object) -> TurnOutcome:
        if usage is None:
            usage = estimate_usage(self._provider_request(self.served.model, False), text)
        return TurnOutcome(
            status=status,
            content=text,
            provider=self.served.provider.name,
            model=self.served.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            usage_estimated=usage.estimated,
            **fields,  # type: ignore[arg-type]
        )

    async def events(self) -> AsyncIterator[TurnEvent]:
        opened, message_id = self.opened, self.message_id
        yield Started(
            self._next_seq(),
            message_id,
            session_key=opened.session_key,
            conversation_id=opened.conversation_id,
            user_message_id=opened.user_message_id,
            provider=self.served.provider.name,
            model=self.served.model,
        )
        queue: asyncio.Queue = asyncio.Queue()
        self._producer = asyncio.create_task(self._produce(queue))
        if self._stop_requested:
            self._producer.cancel()
        parts: list[str] = []
        blocks: list[CodeBlock] = []
        scanner = FenceScanner()
        usage: Usage | None = None
        finish = response_id = ""
        outcome: TurnOutcome | None = None
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if item is _STOPPED:
                    outcome = self._outcome(
                        Message.Status.INTERRUPTED,
                        "".join(parts),
                        usage,
                        artifacts=tuple(blocks),
                        error_code=self._stop_reason[0],
                        error_message=self._stop_reason[1],
                    )
                    break
                if isinstance(item, BaseException):
                    raise item
                if item.text:
                    parts.append(item.text)
                    yield Delta(self._next_seq(), message_id, item.text)
                    for block in scanner.feed(item.text):
                        blocks.append(block)
                        yield self._artifact_event(block)
                usage = item.usage or usage
                finish = item.finish_reason or finish
                response_id = item.response_id or response_id
            if outcome is None:
                for block in scanner.finish():
                    blocks.append(block)
                    yield self._artifact_event(block)
                outcome = self._completed_outcome("".join(parts), usage, finish, response_id, tuple(blocks))
        except ProviderError as exc:
            outcome = self._outcome(
                Message.Status.FAILED,
                "".join(parts),
                usage,
                artifacts=tuple(blocks),
                error_code=exc.code,
                error_message=exc.message,
            )
            self._retry_after = exc.retry_after
        except Exception:
            logger.exception("turn %s failed unexpectedly", message_id)
            outcome = self._outcome(
                Message.Status.FAILED,
                "".join(parts),
                usage,
                artifacts=tuple(blocks),
                error_code="internal_error",
                error_message="The server failed while relaying the answer; the partial text was kept.",
            )
        except BaseException:  # cancelled or the client went away: keep what we have
            if self._producer is not None:
                self._producer.cancel()
            await _save_outcome(
                opened.conversation_id,
                message_id,
                self._outcome(
                    Message.Status.INTERRUPTED,
                    "".join(parts),
                    usage,
                    artifacts=tuple(blocks),
                    error_code="disconnected",
                    error_message="The client went away before the answer was complete.",
                ),
            )
            raise
        finally:
            if self._producer is not None and not self._producer.done():
                self._producer.cancel()
        try:
            await _save_outcome(opened.conversation_id, message_id, outcome)
        except (
            DATABASE_DOWN
        ) as exc:  # retried for TURN_SAVE_RETRY_SECONDS already; the sweeper keeps the text
            code, reason = database_problem(exc)
            logger.error("turn %s: the closing write failed (%s)", message_id, code)
            outcome = replace(
                outcome,
                status=Message.Status.FAILED,
                error_code=code,
                error_message=f"The answer could not be saved. {reason}",
            )
        for event in self._closing_events(outcome, self._retry_after):
            yield event

    def _artifact_event(self, block: CodeBlock) -> ArtifactReady:
        return ArtifactReady(
            self._next_seq(), self.message_id, block.position, block.language, block.filename, block.content
        )

    def _completed_outcome(
        self, text: str, usage: Usage | None, finish: str, response_id: str, blocks: tuple[CodeBlock, ...]
    ) -> TurnOutcome:
        if self.request.json_output or self.request.json_schema is not None:
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                return self._outcome(
                    Message.Status.FAILED,
                    text,
                    usage,
                    finish_reason=finish,
                    response_id=response_id,
                    artifacts=blocks,
                    error_code="invalid_json",
                    error_message=f"The model's reply is not valid JSON ({exc}); the raw text was kept.",
                )
        return self._outcome(
            Message.Status.COMPLETE,
            text,
            usage,
            finish_reason=finish or "stop",
            response_id=response_id,
            artifacts=blocks,
        )

    def _closing_events(self, outcome: TurnOutcome, retry_after: float | None) -> list[TurnEvent]:
        usage = UsageReported(
            self._next_seq(),
            self.message_id,
            outcome.input_tokens or 0,
            outcome.output_tokens or 0,
            (outcome.input_tokens or 0) + (outcome.output_tokens or 0),
            outcome.usage_estimated,
        )
        if outcome.status == Message.Status.COMPLETE:
            terminal: TurnEvent = Completed(
                self._next_seq(),
                self.message_id,
                outcome.content,
                outcome.finish_reason,
                outcome.response_id,
                outcome.provider,
                outcome.model,
            )
        else:
            terminal = Failed(
                self._next_seq(),
                self.message_id,
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
        provider=opening.provider,
        model=opening.model,
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
        chaining=primary[0].supports_response_chaining,
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
    return LiveTurn(request, opened, _fallbacks(primary))
