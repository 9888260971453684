"""Writes of the turn path, each one thread hop and one transaction (HackSoft style: entity first)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.artifacts import CodeBlock
from conversations.errors import TurnInProgress
from conversations.models import Artifact, Conversation, Message
from providers.base import ChatMessage

TITLE_LENGTH = 80


@dataclass(frozen=True, slots=True)
class TurnOpening:
    """What a new turn needs to know; ``user_content`` is stored as the user's message."""

    owner_id: int | None
    session_key: str
    user_content: str
    client_message_id: str | None
    provider: str
    model: str
    system: str | None
    history_limit: int
    chaining: bool
    metadata: dict = field(default_factory=dict)
    stale_after: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    conversation_id: str
    session_key: str
    user_message_id: str
    assistant_message_id: str
    system: str
    history: tuple[ChatMessage, ...]  # earlier messages, oldest first, without the new one
    previous_response_id: str | None


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    status: str
    content: str
    provider: str
    model: str
    finish_reason: str = ""
    response_id: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False
    error_code: str = ""
    error_message: str = ""
    artifacts: tuple[CodeBlock, ...] = ()


def _conversation_for_update(opening: TurnOpening) -> Conversation:
    lookup = {"owner_id": opening.owner_id, "session_key": opening.session_key}
    conversation = Conversation.objects.select_for_update().filter(**lookup).first()
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(
                **lookup,
                title=opening.user_content.strip().splitlines()[0][:TITLE_LENGTH],
                provider=opening.provider,
                model=opening.model,
                system_prompt=opening.system or "",
                metadata=opening.metadata,
            )
    except IntegrityError:  # created by a concurrent request: lock theirs
        return Conversation.objects.select_for_update().get(**lookup)


def _history(conversation: Conversation, limit: int) -> tuple[ChatMessage, ...]:
    if limit <= 0:
        return ()
    rows = (
        conversation.messages.filter(
            status=Message.Status.COMPLETE, role__in=(Message.Role.USER, Message.Role.ASSISTANT)
        )
        .order_by("-created_at")
        .values_list("role", "content")[:limit]
    )
    return tuple(ChatMessage(role, content) for role, content in reversed(rows))


def turn_existing_answer(conversation_id: str, client_message_id: str) -> Message | None:
    """The assistant answer to the user message with this client id, if that message exists."""
    user = Message.objects.filter(
        conversation_id=conversation_id, client_message_id=client_message_id
    ).first()
    if user is None:
        return None
    answer = user.children.filter(role=Message.Role.ASSISTANT).order_by("-created_at").first()
    return answer or user


@transaction.atomic
def turn_open(opening: TurnOpening) -> OpenedTurn | Message:
    """Store the user message and an assistant message in ``streaming``.

    Returns the stored answer instead when ``client_message_id`` was seen before
    in this session (the caller replays it). Raises :class:`TurnInProgress` when
    another turn of the session is still streaming.
    """
    conversation = _conversation_for_update(opening)
    if opening.client_message_id:
        existing = turn_existing_answer(conversation.pk, opening.client_message_id)
        if existing is not None:
            return existing
    busy = conversation.messages.filter(
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        created_at__gte=timezone.now() - opening.stale_after,
    ).first()
    if busy is not None:
        raise TurnInProgress(
            "Another answer in this session is still streaming: wait for it, stop it, or use another session.",
            message_id=str(busy.pk),
        )
    if opening.system is not None and opening.system != conversation.system_prompt:
        conversation.system_prompt = opening.system
    history = _history(conversation, opening.history_limit)
    previous = None
    if (
        opening.chaining
        and conversation.last_response_id
        and (conversation.provider, conversation.model) == (opening.provider, opening.model)
    ):
        previous = conversation.last_response_id
    user = Message.objects.create(
        conversation=conversation,
        role=Message.Role.USER,
        content=opening.user_content,
        client_message_id=opening.client_message_id or None,
        status=Message.Status.COMPLETE,
        completed_at=timezone.now(),
    )
    answer = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        provider=opening.provider,
        model=opening.model,
        parent=user,
    )
    conversation.provider, conversation.model = opening.provider, opening.model
    conversation.save(update_fields=["provider", "model", "system_prompt", "updated_at"])
    return OpenedTurn(
        conversation_id=str(conversation.pk),
        session_key=conversation.session_key,
        user_message_id=str(user.pk),
        assistant_message_id=str(answer.pk),
        system=conversation.system_prompt,
        history=history,
        previous_response_id=previous,
    )


@transaction.atomic
def turn_finish(conversation_id: str, message_id: str, outcome: TurnOutcome) -> None:
    """The one closing write of a turn: the answer's terminal state, its artifacts, the session's chain id."""
    now = timezone.now()
    Message.objects.filter(pk=message_id).update(
        status=outcome.status,
        content=outcome.content,
        provider=outcome.provider,
        model=outcome.model,
        finish_reason=outcome.finish_reason,
        response_id=outcome.response_id,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        usage_estimated=outcome.usage_estimated,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
        completed_at=now,
    )
    if outcome.artifacts:
        Artifact.objects.bulk_create(
            Artifact(
                message_id=message_id,
                conversation_id=conversation_id,
                language=block.language,
                filename=block.filename,
                content=block.content,
                position=block.position,
            )
            for block in outcome.artifacts
        )
    fields: dict[str, object] = {"updated_at": now}
    if outcome.status == Message.Status.COMPLETE and outcome.response_id:
        fields["last_response_id"] = outcome.response_id
    Conversation.objects.filter(pk=conversation_id).update(**fields)
