"""Writes of the turn path, each one thread hop and one transaction (HackSoft style: entity first)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.artifacts import CodeBlock
from conversations.db import retry_while_database_down
from conversations.errors import InvalidTurnInput, NotFound, TurnInProgress
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
    edit_of: str | None = None  # a user message: the new one replaces it, as a new branch
    regenerate_of: str | None = None  # an answer (or its user message): answer the same message again
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
    user_content: str


@dataclass(frozen=True, slots=True)
class ExistingAnswer:
    """The stored answer to a repeated ``client_message_id`` (or its user message when unanswered)."""

    message_id: str
    status: str


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


def session_title(content: str) -> str:
    """A new session's title: the first line of its first message."""
    lines = content.strip().splitlines()
    return lines[0][:TITLE_LENGTH] if lines else ""


def chain_from(opening: TurnOpening, provider: str, model: str, last_response_id: str) -> str | None:
    """The provider-side response id to continue from, when the turn may chain (same provider and model)."""
    if (
        opening.chaining
        and not (opening.edit_of or opening.regenerate_of)
        and last_response_id
        and (provider, model) == (opening.provider, opening.model)
    ):
        return last_response_id
    return None


def _conversation_for_update(opening: TurnOpening) -> Conversation:
    lookup = {"owner_id": opening.owner_id, "session_key": opening.session_key}
    conversation = Conversation.objects.select_for_update().filter(**lookup).first()
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(
                **lookup,
                title=session_title(opening.user_content),
                provider=opening.provider,
                model=opening.model,
                system_prompt=opening.system or "",
                metadata=opening.metadata,
            )
    except IntegrityError:  # created by a concurrent request: lock theirs
        return Conversation.objects.select_for_update().get(**lookup)


TREE_WINDOW = 400


def _recent_messages(conversation: Conversation) -> dict[str, tuple]:
    """The newest messages of a session as ``{id: (id, parent_id, role, status, content)}``, newest first."""
    rows = conversation.messages.order_by("-created_at").values_list(
        "id", "parent_id", "role", "status", "content"
    )
    return {str(row[0]): row for row in rows[:TREE_WINDOW]}


def branch_history(messages: dict[str, tuple], leaf_id: str | None, limit: int) -> tuple[ChatMessage, ...]:
    """The complete messages on the branch ending at ``leaf_id`` (itself included), oldest first, at most ``limit``."""
    chain: list[ChatMessage] = []
    seen: set[str] = set()
    current = leaf_id
    while current and current in messages and current not in seen and len(chain) < limit:
        seen.add(current)
        _, parent_id, role, status, content = messages[current]
        if status == Message.Status.COMPLETE and role in (Message.Role.USER, Message.Role.ASSISTANT):
            chain.append(ChatMessage(role, content))
        current = str(parent_id) if parent_id else None
    return tuple(reversed(chain))


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
        created_at__gte=timezone.now() - opening.stale_after,
    ).first()
    if busy is not None:
        raise TurnInProgress(
            "Another answer in this session is still streaming: wait for it, stop it, or use another session.",
            message_id=str(busy.pk),
        )
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
    previous = chain_from(opening, conversation.provider, conversation.model, conversation.last_response_id)
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
        user_content=user.content,
    )


# How long the closing write of a turn waits for an unreachable database (a restart, a failover)
# before giving up; the client's stream waits for it, then gets its terminal event.
TURN_SAVE_RETRY_SECONDS = 20.0


@retry_while_database_down(TURN_SAVE_RETRY_SECONDS)
@transaction.atomic
def turn_finish(conversation_id: str, message_id: str, outcome: TurnOutcome) -> None:
    """The one closing write of a turn: the answer's terminal state, its artifacts, the session's chain id.

    Safe to repeat (it is retried while the database is down, and a commit whose acknowledgement
    was lost may run twice): the same values are written again and existing artifacts are kept.
    """
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
            [
                Artifact(
                    message_id=message_id,
                    conversation_id=conversation_id,
                    language=block.language,
                    filename=block.filename,
                    content=block.content,
                    position=block.position,
                )
                for block in outcome.artifacts
            ],
            ignore_conflicts=True,  # a repeated save: (message, position) is unique
        )
    fields: dict[str, object] = {"updated_at": now}
    if outcome.status == Message.Status.COMPLETE and outcome.response_id:
        fields["last_response_id"] = outcome.response_id
    Conversation.objects.filter(pk=conversation_id).update(**fields)


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
