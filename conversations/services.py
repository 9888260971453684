"""Writes of the turn path, each one thread hop and one transaction (HackSoft style: entity first).

``turn_open`` and ``turn_finish`` are the ORM reference of a turn's two writes; their rules
(what is stored, when a session is busy, when a close chains) live in :mod:`conversations.turn_rules`.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.db import retry_while_database_down
from conversations.errors import InvalidTurnInput, NotFound
from conversations.models import Artifact, Conversation, Message
from conversations.turn_rules import (
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
    session_closing_values,
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


@transaction.atomic
def turn_open(opening: TurnOpening) -> OpenedTurn | ExistingAnswer:
    """Store the user message and an assistant message in ``streaming``.

    Returns the stored answer instead when ``client_message_id`` was seen before
    in this session (the caller replays it). Raises :class:`TurnInProgress` when
    another turn of the session is still streaming. An edit stores the new user
    message beside the old one (same parent); a regenerate answers the same user
    message again; both leave the old branch in place.
    """
    branching = opening.edit_of or opening.regenerate_of
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
    if opening.regenerate_of:
        target = _target_message(conversation, opening.regenerate_of)
        user = target if target.role == Message.Role.USER else target.parent
        if user is None or user.role != Message.Role.USER:
            raise InvalidTurnInput("Only an answer to a user message (or that message) can be regenerated.")
        parent_id = str(user.parent_id) if user.parent_id else None
    elif opening.edit_of:
        target = _target_message(conversation, opening.edit_of)
        if target.role != Message.Role.USER:
            raise InvalidTurnInput("Only user messages can be edited: regenerate an answer instead.")
        parent_id = str(target.parent_id) if target.parent_id else None
    else:
        parent_id = next(iter(recent), None)
    history = branch_history(recent, parent_id, opening.history_limit)
    stored = (conversation.provider, conversation.model)
    provider, model = turn_model(opening, *stored)
    previous = chain_from(opening, stored, (provider, model), conversation.last_response_id)
    if user is None:
        user = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=opening.user_content,
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
    )
    conversation.provider, conversation.model = provider, model
    conversation.save(update_fields=["provider", "model", "system_prompt", "updated_at"])
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
    if not answer.update(**closing_values(outcome, now)):
        return False
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
    Conversation.objects.filter(pk=conversation_id).update(**session_closing_values(outcome, now))
    return True


SESSION_EXPORT_FORMAT = "chat-session/1"


def conversation_create(*, owner_id: int | None, session_key: str, **fields: object) -> Conversation:
    try:
        with transaction.atomic():
            return Conversation.objects.create(owner_id=owner_id, session_key=session_key, **fields)
    except IntegrityError:
        from conversations.errors import TurnRejected

        raise TurnRejected(
            f"A session with key {session_key!r} already exists: choose another key or omit it.",
            code="session_exists",
            status=409,
        ) from None


def conversation_export(conversation: Conversation) -> dict:
    """The session, its messages (every branch, with parent ids) and their artifacts, as plain JSON."""
    messages = conversation.messages.prefetch_related("artifacts").order_by("created_at")
    return {
        "format": SESSION_EXPORT_FORMAT,
        "session": {
            "session_key": conversation.session_key,
            "title": conversation.title,
            "provider": conversation.provider,
            "model": conversation.model,
            "system_prompt": conversation.system_prompt,
            "metadata": conversation.metadata,
            "created_at": conversation.created_at.isoformat(),
        },
        "messages": [
            {
                "id": str(m.pk),
                "parent_id": str(m.parent_id) if m.parent_id else None,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "provider": m.provider,
                "model": m.model,
                "input_tokens": m.input_tokens,
                "output_tokens": m.output_tokens,
                "usage_estimated": m.usage_estimated,
                "finish_reason": m.finish_reason,
                "error_code": m.error_code,
                "error_message": m.error_message,
                "created_at": m.created_at.isoformat(),
                "completed_at": m.completed_at.isoformat() if m.completed_at else None,
                "artifacts": [
                    {
                        "position": a.position,
                        "language": a.language,
                        "filename": a.filename,
                        "content": a.content,
                    }
                    for a in m.artifacts.all()
                ],
            }
            for m in messages
        ],
    }


@transaction.atomic
def conversation_import(*, owner_id: int | None, data: dict) -> Conversation:
    """A new session from an export (validated by the API). New ids; parents and order kept."""
    import uuid

    session = data["session"]
    key = session["session_key"]
    if Conversation.objects.filter(owner_id=owner_id, session_key=key).exists():
        key = f"{key[:100]}-imported-{uuid.uuid4().hex[:8]}"
    conversation = Conversation.objects.create(
        owner_id=owner_id,
        session_key=key,
        title=session.get("title", ""),
        provider=session.get("provider", ""),
        model=session.get("model", ""),
        system_prompt=session.get("system_prompt", ""),
        metadata=session.get("metadata") or {},
    )
    ids = {m["id"]: uuid.uuid4() for m in data["messages"]}
    rows, artifacts = [], []
    for m in data["messages"]:
        status = m["status"] if m["status"] != Message.Status.STREAMING else Message.Status.INTERRUPTED
        rows.append(
            Message(
                id=ids[m["id"]],
                conversation=conversation,
                parent_id=ids.get(m.get("parent_id") or ""),
                role=m["role"],
                content=m["content"],
                status=status,
                provider=m.get("provider", ""),
                model=m.get("model", ""),
                input_tokens=m.get("input_tokens"),
                output_tokens=m.get("output_tokens"),
                usage_estimated=m.get("usage_estimated", False),
                finish_reason=m.get("finish_reason", ""),
                error_code=m.get("error_code", ""),
                error_message=m.get("error_message", ""),
                created_at=m["created_at"],
                completed_at=m.get("completed_at"),
            )
        )
        artifacts += [
            Artifact(message_id=ids[m["id"]], conversation=conversation, **a) for a in m.get("artifacts", [])
        ]
    Message.objects.bulk_create(rows)
    Artifact.objects.bulk_create(artifacts)
    return conversation


@transaction.atomic
def conversation_greeting_store(
    *, owner_id: int | None, session_key: str, greeting: str, system: str | None = None
) -> bool:
    """A new session's opening words (a voice agent's greeting) as its first message, the
    assistant's, so the model sees them as context from the first turn on. A session that already
    has messages (a repeated session start) is left alone: ``False``."""
    lookup = {"owner_id": owner_id, "session_key": session_key}
    conversation = Conversation.objects.select_for_update().filter(**lookup).first()
    if conversation is None:
        try:
            with transaction.atomic():
                conversation = Conversation.objects.create(**lookup, system_prompt=system or "")
        except IntegrityError:  # created by a concurrent request: lock theirs
            conversation = Conversation.objects.select_for_update().get(**lookup)
    if conversation.messages.exists():
        return False
    Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=greeting,
        status=Message.Status.COMPLETE,
        completed_at=timezone.now(),
    )
    return True
