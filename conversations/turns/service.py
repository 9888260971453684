"""The turn service: one chat turn from the user's message to its stored answer.

:func:`turn_start` validates, chooses the provider, applies the rate limit and does the
opening write; it raises :class:`~conversations.errors.TurnRejected` before anything
streams. The turn it returns (:mod:`conversations.turns.live`) streams the answer and
closes it. Edges never call providers or the ORM: they call this module.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from django.conf import settings

from billing.budgets import claims_for, input_estimate, output_reservation
from billing.prices import price_book
from conversations.attachments.turn_files import (
    TurnFiles,
    bind_files,
    examine_files,
    history_for,
    keep_files,
    load_files,
    without_missing,
)
from conversations.db import run_db
from conversations.errors import (
    ModelNotFound,
    RepeatedTurnInProgress,
    ToolsNotSupported,
    TurnRejected,
    UnknownProviderOrModel,
)
from conversations.models import Message
from conversations.ratelimit import token_rate_limiter, turn_rate_limiter
from conversations.telemetry import stages
from conversations.turns import store
from conversations.turns.admission import admission_gate
from conversations.turns.live import LiveTurn, ReplayedTurn, Turn
from conversations.turns.parts import results_text, tool_result_part, user_parts
from conversations.turns.request import TurnRequest
from conversations.turns.rules import ExistingAnswer, OpenedTurn, TurnOpening, TurnOutcome
from conversations.turns.running import accepting_turns
from conversations.turns.stored_replay import stored_turn_events
from providers.base import InputFile, Provider, attachment_tokens
from providers.registry import ProviderNotConfigured, UnknownModel, UnknownProvider, get_registry

logger = logging.getLogger(__name__)


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
    except UnknownModel as exc:
        raise ModelNotFound(str(exc), field="model") from None
    except UnknownProvider as exc:
        raise UnknownProviderOrModel(str(exc), field="provider") from None
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


def _tools_refusal(request: TurnRequest, provider: Provider, model: str) -> ToolsNotSupported | None:
    """Why the turn's tools cannot go to ``provider``/``model``: it cannot call tools at all, or its
    adapter cannot take a tool's schema or the ``tool_choice`` (:meth:`Provider.check_tools`,
    :meth:`Provider.check_tool_choice`); None when they can. Never dropped, never an upstream 400."""
    if not request.tools:
        return None
    where = {"provider": provider.name, "model": model}
    if not provider.tools_supported(model):
        return ToolsNotSupported(
            f"The model {provider.name}:{model} cannot call tools here ({provider.kind} adapter): name a model "
            "that can (docs/tools.md lists them and the setting for OpenAI-compatible servers), or send "
            "the request without tools.",
            field="tools",
            **where,
        )
    problem = provider.check_tools(model, request.tools)
    if problem:
        return ToolsNotSupported(problem, field="tools", **where)
    problem = provider.check_tool_choice(model, request.tool_choice) if request.tool_choice else None
    if problem:
        return ToolsNotSupported(problem, field="tool_choice", **where)
    return None


def _check_tools(request: TurnRequest, provider: Provider, model: str) -> None:
    """Tools offered to a provider or model that cannot take them: 422 naming both, never dropped."""
    refusal = _tools_refusal(request, provider, model)
    if refusal is not None:
        raise refusal


def _takes_files(candidate: tuple[Provider, str], files: Sequence[InputFile]) -> bool:
    """Whether a fallback can be sent these files: their types, and a remote one it must fetch itself."""
    provider, model = candidate
    if provider.check_attachments(model, files):
        return False
    return all(f.data is not None or f.ref or provider.fetches_urls(model, f.media_type) for f in files)


def _fallbacks(
    primary: tuple[Provider, str],
    *,
    budgeted: bool,
    request: TurnRequest | None = None,
    files: Sequence[InputFile] = (),
) -> list[tuple[Provider, str]]:
    """The primary, then ``LLM_FALLBACKS``; a turn a budget applies to skips those without a price
    (the opening write's rule, :func:`conversations.turns.rules.opening_refusal`, for its fallbacks),
    and a turn with tools those that cannot take them (:func:`_tools_refusal`)."""
    candidates = [primary]
    for entry in settings.LLM_FALLBACKS:
        name, _, model = entry.partition(":")
        try:
            candidate = get_registry().resolve(name, model or None)
        except (UnknownProvider, UnknownModel, ProviderNotConfigured) as exc:
            logger.warning("LLM_FALLBACKS entry %r skipped: %s", entry, exc)
            continue
        if budgeted and price_book.rate(candidate[0].name, candidate[1]) is None:
            logger.warning("LLM_FALLBACKS entry %r skipped: a budget applies and it has no price", entry)
            continue
        refusal = _tools_refusal(request, *candidate) if request is not None else None
        if refusal is not None:
            logger.warning("LLM_FALLBACKS entry %r skipped for this turn's tools: %s", entry, refusal.message)
            continue
        if files and not _takes_files(candidate, files):
            logger.warning("LLM_FALLBACKS entry %r skipped: it cannot take this turn's attachments", entry)
            continue
        if (candidate[0].name, candidate[1]) not in {(p.name, m) for p, m in candidates}:
            candidates.append(candidate)
    return candidates


async def _open_shielded(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """Store the opening rows; a client that goes away meanwhile cannot leave an answer ``streaming``.

    The write waits its turn at the admission gate first (a client leaving there leaves the
    queue). Once started it may commit after the caller is cancelled (it is already on the wire,
    or in a thread): it runs on, and an answer it opened is closed at once as ``interrupted``.
    """
    if stages.on:
        stages.mark("checked")
    gate = admission_gate()
    await gate.acquire()
    if stages.on:
        stages.mark("admitted")
    task = asyncio.ensure_future(store.turn_open(opening))
    task.add_done_callback(lambda _: gate.release())
    try:
        opened = await asyncio.shield(task)
        if stages.on:
            stages.mark("opened")
        return opened
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
    store.turn_finish_detached(opened.conversation_id, opened.assistant_message_id, outcome)


async def turn_start(request: TurnRequest) -> Turn:
    """Validate, resolve the provider and store the opening rows; raise TurnRejected on bad input."""
    if not accepting_turns():
        raise TurnRejected(
            "The server is shutting down: retry in a moment (another instance will answer).",
            code="shutting_down",
            status=503,
        )
    request.validate()
    primary = _resolve(request.provider, request.model)
    _check_tools(request, *primary)
    files = await _examined_files(request, primary) if _carries_files(request) else None
    if files is not None and files.context is not None:
        request = replace(request, context=files.context)
    rate_key = request.limit_key
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
    if rate_key is not None:
        tokens = await token_rate_limiter.allow(rate_key)
        if not tokens.allowed:
            raise TurnRejected(
                f"Too many tokens: the limit is {settings.RATE_LIMIT_TOKENS}. Retry after the given seconds.",
                code="rate_limited",
                status=429,
                retry_after=round(tokens.retry_after, 1),
            )
    price_book.refresh_soon()
    content = results_text(request.tool_results) if request.continues_tools else request.content
    offered = "".join(f"{tool.name}{tool.description}{tool.parameters}" for tool in request.tools)
    if files is not None:
        files = await keep_files(files, owner_id=request.owner_id, uploader_key=_uploader_key(request))
    new_files = tuple(files.files) if files is not None else ()
    if new_files and request.context:  # a client transcript: its last message is the new one
        last = replace(request.context[-1], attachments=new_files)
        request = replace(request, context=(*request.context[:-1], last))
    opening = TurnOpening(
        api_key_id=request.api_key_id,
        # the mount's budget applies to the turns its route sets it on, never from the session key
        claims=claims_for(request.owner_id, request.api_key_id, request.mount),
        reserve_input_tokens=input_estimate(content, request.system or "", offered)
        + sum(attachment_tokens(file.media_type, file.size) for file in new_files),
        reserve_output_tokens=output_reservation(request.max_tokens),
        owner_id=request.owner_id,
        session_key=request.session_key,
        user_content=content,
        user_role=Message.Role.TOOL if request.continues_tools else Message.Role.USER,
        user_parts=tuple(tool_result_part(result) for result in request.tool_results)
        or tuple(user_parts(content, new_files)),
        answers_calls=request.continues_tools and request.context is None,
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
        reply_to=request.reply_to,
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
    if files is not None:
        await bind_files(files, opened.conversation_id, opened.user_message_id)
    if (opened.provider, opened.model) != (primary[0].name, primary[1]):
        primary = _session_model(opened, primary)
    opened, sent, loaded = await _files_sent(request, opened, primary, new_files)
    candidates = _fallbacks(primary, budgeted=opened.max_tokens is not None, request=request, files=sent)
    return LiveTurn(request, opened, candidates, loaded)


async def _files_sent(
    request: TurnRequest, opened: OpenedTurn, primary: tuple[Provider, str], new_files: tuple[InputFile, ...]
) -> tuple[OpenedTurn, list[InputFile], dict[str, bytes] | None]:
    """The files the model is sent (the history's as ``primary`` can take them, the new message's)
    and their bytes, read once; nothing for a turn without files."""
    if request.context is None and any(message.attachments for message in opened.history):
        opened = replace(opened, history=history_for(*primary, opened.history))
    messages = request.context if request.context is not None else (*opened.history, opened.new_message)
    sent = [file for message in messages for file in message.attachments]
    if not sent:
        return opened, sent, None
    known = {file.ref: file.data for file in new_files if file.ref and file.data is not None}
    loaded = await load_files(messages, *primary, known=known)
    if request.context is None:
        opened = replace(opened, history=without_missing(opened.history, loaded))
    return opened, sent, loaded


def _carries_files(request: TurnRequest) -> bool:
    return bool(request.attachments) or any(m.attachments for m in request.context or ())


async def _examined_files(request: TurnRequest, primary: tuple[Provider, str]) -> TurnFiles:
    """The turn's files checked before anything is stored (:mod:`conversations.attachments.turn_files`)."""
    return await examine_files(
        request.attachments,
        owner_id=request.owner_id,
        session_key=request.session_key,
        provider=primary[0],
        model=primary[1],
        context=request.context,
    )


def _uploader_key(request: TurnRequest) -> str:
    """Who the daily attachment bytes count against: the turn's rate-limit key."""
    return request.limit_key or (f"user:{request.owner_id}" if request.owner_id else "anonymous")
