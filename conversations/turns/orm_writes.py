"""A turn's two writes through the ORM, each one thread hop and one transaction: the reference.

``turn_open`` and ``turn_finish`` store what the native PostgreSQL path
(:mod:`conversations.turns.pg_writes`) stores, from the same rules
(:mod:`conversations.turns.rules`: what is stored, when a session is busy, when a close chains).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.budgets import history_tokens, reservation
from billing.prices import price_book
from billing.reservations import budgets_locked, has_room, reserve, settle
from conversations.counters import PREVIEW_LENGTH
from conversations.db import retry_while_database_down
from conversations.errors import InvalidTurnInput, NotFound
from conversations.models import Artifact, Conversation, Message
from conversations.turns.parts import tool_results
from conversations.turns.rules import (
    OPENING_COUNTERS,
    RECENT_FIELDS,
    TREE_WINDOW,
    TURN_SAVE_RETRY_SECONDS,
    ExistingAnswer,
    OpenedTurn,
    TurnOpening,
    TurnOutcome,
    artifact_values,
    branch_history,
    busy_cutoff,
    chain_from,
    closing_values,
    new_session_values,
    opening_refusal,
    session_closing_counters,
    session_closing_values,
    skips_calls,
    tool_results_refusal,
    turn_in_progress,
    turn_model,
)


def _conversation_for_update(opening: TurnOpening) -> Conversation:
    lookup = {"owner_id": opening.owner_id, "session_key": opening.session_key}
    conversation = Conversation.objects.select_for_update().filter(**lookup).first()
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(**lookup, **new_session_values(opening))
    except IntegrityError:  # created by a concurrent request: lock theirs
        return Conversation.objects.select_for_update().get(**lookup)


def _recent_messages(conversation: Conversation) -> dict[str, tuple]:
    """The newest messages of a session as ``{id: row of RECENT_FIELDS}``, newest first."""
    rows = conversation.messages.order_by("-created_at").values_list(*RECENT_FIELDS)
    return {str(row[0]): row for row in rows[:TREE_WINDOW]}


def _target_message(conversation: Conversation, message_id: str) -> Message:
    try:
        message = conversation.messages.filter(pk=message_id).first()
    except Exception:  # a malformed id
        message = None
    if message is None:
        raise NotFound("No message with this id in this session.")
    return message


def turn_existing_answer(conversation_id: str, client_message_id: str) -> ExistingAnswer | None:
    """The assistant answer to the user message with this client id, if that message exists."""
    user = Message.objects.filter(
        conversation_id=conversation_id, client_message_id=client_message_id
    ).first()
    if user is None:
        return None
    answer = user.children.filter(role=Message.Role.ASSISTANT).order_by("-created_at").first() or user
    return ExistingAnswer(str(answer.pk), answer.status)


ANSWERED_ROLES = (Message.Role.USER, Message.Role.TOOL)  # the messages an answer answers


@transaction.atomic
def turn_open(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """Store the user message and an assistant message in ``streaming``.

    Returns the stored answer instead when ``client_message_id`` was seen before
    in this session (the caller replays it). Raises :class:`TurnInProgress` when
    another turn of the session is still streaming. An edit stores the new user
    message beside the old one (same parent); a regenerate answers the same user
    message again; a reply to an earlier answer (``reply_to``) continues the branch ending at
    that answer; all leave the other branches in place.
    """
    branching = opening.edit_of or opening.regenerate_of or opening.reply_to
    if (
        branching
        and not Conversation.objects.filter(
            owner_id=opening.owner_id, session_key=opening.session_key
        ).exists()
    ):
        raise NotFound("No session with this key.")
    conversation = _conversation_for_update(opening)
    if opening.client_message_id:
        existing = turn_existing_answer(conversation.pk, opening.client_message_id)
        if existing is not None:
            return existing
    busy = conversation.messages.filter(
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        created_at__gte=busy_cutoff(opening, timezone.now()),
    ).first()
    if busy is not None:
        raise turn_in_progress(str(busy.pk))
    if opening.system is not None and opening.system != conversation.system_prompt:
        conversation.system_prompt = opening.system
    recent = _recent_messages(conversation)
    user: Message | None = None
    replied_response_id = ""
    if opening.regenerate_of:
        target = _target_message(conversation, opening.regenerate_of)
        user = target if target.role in ANSWERED_ROLES else target.parent
        if user is None or user.role not in ANSWERED_ROLES:
            raise InvalidTurnInput(
                "Only an answer to a user message or to tool results (or that message) can be regenerated."
            )
        parent_id = str(user.parent_id) if user.parent_id else None
    elif opening.edit_of:
        target = _target_message(conversation, opening.edit_of)
        if target.role != Message.Role.USER:
            raise InvalidTurnInput("Only user messages can be edited: regenerate an answer instead.")
        parent_id = str(target.parent_id) if target.parent_id else None
    elif opening.reply_to:
        target = _target_message(conversation, opening.reply_to)
        if target.role != Message.Role.ASSISTANT:
            raise InvalidTurnInput("Only an answer can be replied to.")
        parent_id, replied_response_id = str(target.pk), target.response_id
    else:
        parent_id = next(iter(recent), None)
    if opening.answers_calls and user is None:
        call_ids = [result.call_id for result in tool_results(opening.user_parts)]
        refusal = tool_results_refusal(recent, parent_id, call_ids)
        if refusal is not None:
            raise refusal
    new_role = user.role if user is not None else opening.user_role
    history = branch_history(recent, parent_id, opening.history_limit, new_role)
    stored = (conversation.provider, conversation.model)
    provider, model = turn_model(opening, *stored)
    previous = chain_from(
        opening,
        stored,
        (provider, model),
        conversation.last_response_id,
        replied_response_id,
        skips_calls(recent, parent_id, new_role),
    )
    now = timezone.now()
    budgets = budgets_locked(opening.claims) if opening.claims else []
    reserved = Decimal(0)
    if budgets:
        rate = price_book.rate(provider, model)
        if rate is None or not has_room(budgets, now):
            rows = [
                (b.scope, b.subject, b.amount, b.spent, b.reserved, b.period, b.period_start) for b in budgets
            ]
            raise opening_refusal(rows, now, rate, provider, model)
        contents = [row[4] for row in recent.values()]
        reserved = reservation(
            rate,
            opening.reserve_input_tokens + history_tokens(contents, opening.history_limit),
            opening.reserve_output_tokens,
        )
    if user is None:
        user = Message.objects.create(
            conversation=conversation,
            role=opening.user_role,
            content=opening.user_content,
            parts=list(opening.user_parts),
            client_message_id=opening.client_message_id or None,
            status=Message.Status.COMPLETE,
            parent_id=parent_id,
            completed_at=timezone.now(),
        )
    answer = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        provider=provider,
        model=model,
        parent=user,
        reserved_cost=reserved,
        budget_ids=[b.pk for b in budgets],
        api_key_id=opening.api_key_id,
    )
    if budgets:
        reserve(budgets, reserved, answer.pk, now)
    conversation.provider, conversation.model = provider, model
    # the session's counters (conversations/counters.py): its new messages; the answer is the last one
    conversation.message_count += 1 if opening.regenerate_of else 2
    conversation.last_message_role, conversation.last_message_preview = Message.Role.ASSISTANT, ""
    conversation.last_message_at = answer.created_at
    conversation.save(update_fields=["provider", "model", "system_prompt", "updated_at", *OPENING_COUNTERS])
    return OpenedTurn(
        conversation_id=str(conversation.pk),
        session_key=conversation.session_key,
        user_message_id=str(user.pk),
        assistant_message_id=str(answer.pk),
        system=conversation.system_prompt,
        history=history,
        previous_response_id=previous,
        user_content=user.content,
        provider=provider,
        model=model,
        max_tokens=opening.reserve_output_tokens if budgets else None,
        user_role=user.role,
        user_parts=tuple(user.parts or ()),
    )


@retry_while_database_down(TURN_SAVE_RETRY_SECONDS)
@transaction.atomic
def turn_finish(
    conversation_id: str, message_id: str, outcome: TurnOutcome, *, only_if_streaming: bool = False
) -> bool:
    """The one closing write of a turn: the answer's terminal state, its artifacts, the session's chain id.

    Returns whether the answer was closed; when it was not (no such answer, or ``only_if_streaming``
    and it is no longer ``streaming``: another process closed it) nothing is written. Safe to
    repeat (it is retried while the database is down, and a commit whose acknowledgement was lost
    may run twice): the same values are written again and existing artifacts are kept.
    """
    now = timezone.now()
    answer = Message.objects.filter(pk=message_id)
    if only_if_streaming:
        answer = answer.filter(status=Message.Status.STREAMING)
    before = (
        answer.select_for_update().values_list("status", "reserved_cost", "budget_ids", "created_at").first()
    )
    if before is None or not answer.update(**closing_values(outcome, now)):
        return False
    if before[0] == Message.Status.STREAMING:  # settled once, however often the write is repeated
        settle(before[2], before[1], outcome.cost)
    if outcome.artifacts:
        Artifact.objects.bulk_create(
            [
                Artifact(
                    message_id=message_id,
                    conversation_id=conversation_id,
                    created_at=now,
                    **artifact_values(block),
                )
                for block in outcome.artifacts
            ],
            ignore_conflicts=True,  # a repeated save: (message, position) is unique
        )
    counters = session_closing_counters(outcome, first_close=before[0] == Message.Status.STREAMING)
    newest = Q(last_message_at__isnull=True) | Q(last_message_at__lte=before[3])
    Conversation.objects.filter(pk=conversation_id).update(
        **session_closing_values(outcome, now),
        input_tokens=F("input_tokens") + counters["input_tokens"],
        output_tokens=F("output_tokens") + counters["output_tokens"],
        cost=Coalesce(F("cost"), Value(Decimal(0))) + counters["cost"]
        if counters["cost"] is not None
        else F("cost"),
        cost_unknown_answers=F("cost_unknown_answers") + counters["cost_unknown_answers"],
        last_message_role=Case(
            When(newest, then=Value(Message.Role.ASSISTANT)), default=F("last_message_role")
        ),
        last_message_preview=Case(
            When(newest, then=Value(outcome.content[:PREVIEW_LENGTH])), default=F("last_message_preview")
        ),
        last_message_at=Case(When(newest, then=Value(before[3])), default=F("last_message_at")),
    )
    return True
