"""Persistence: a chat session (Conversation), its messages, and extracted code artifacts.

One row per message, appended; a streaming answer writes its row at the start
(status ``streaming``) and once at the end, never per token.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from conversations import search


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversations",
        help_text="Empty for anonymous sessions.",
    )
    session_key = models.CharField(
        max_length=128, help_text="The client-facing session id, e.g. 'sess-1234'. Unique per owner."
    )
    title = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=128, blank=True)
    system_prompt = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    last_response_id = models.CharField(
        max_length=200, blank=True, help_text="Provider-side id of the last answer, for chaining."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Counters and the last message's preview, kept by the writes that change them (a turn's two
    # writes, deletes, imports; conversations/counters.py), so a list costs what its page costs.
    # ``manage.py recount_sessions`` recomputes them from the messages.
    message_count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(
        max_digits=18, decimal_places=8, null=True, blank=True, help_text="The answers' known cost (USD)."
    )
    cost_unknown_answers = models.PositiveIntegerField(
        default=0, help_text="Answers whose model has no price."
    )
    last_message_role = models.CharField(max_length=16, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "session_key"],
                condition=Q(owner__isnull=False),
                name="conversation_session_key_unique_per_owner",
            ),
            models.UniqueConstraint(
                fields=["session_key"],
                condition=Q(owner__isnull=True),
                name="conversation_session_key_unique_anonymous",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-updated_at"], name="conversation_owner_recent"),
            models.Index(fields=["-updated_at"], name="conversation_recent"),
            # Search (conversations/search.py; built concurrently by migration 0006): part of a
            # title (`icontains` is UPPER(title) LIKE UPPER('%…%')), a session key or its prefix.
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name=search.CONVERSATION_TITLE_INDEX),
            models.Index(OpClass("session_key", name="varchar_pattern_ops"), name=search.SESSION_KEY_INDEX),
        ]

    def __str__(self) -> str:
        return self.title or self.session_key


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"
        TOOL = "tool"  # the results of an answer's tool calls (conversations/turns/parts.py)

    class Status(models.TextChoices):
        PENDING = "pending"
        STREAMING = "streaming"
        COMPLETE = "complete"
        INTERRUPTED = "interrupted"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    parts = models.JSONField(
        default=list,
        blank=True,
        help_text="Typed parts (tool calls, tool results), in order; [] when the content is the only part.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=128, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(
        default=False, help_text="True when the token counts are our estimate, not the provider's."
    )
    cached_input_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Input tokens the provider served from its cache (in input_tokens)."
    )
    reasoning_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Output tokens spent on reasoning (in output_tokens)."
    )
    cost = models.DecimalField(
        max_digits=16,
        decimal_places=8,
        null=True,
        blank=True,
        help_text="What the answer cost (USD) at the price in effect; empty when the model's price is unknown.",
    )
    reserved_cost = models.DecimalField(
        max_digits=16, decimal_places=8, default=0, help_text="Held against budgets while it ran."
    )
    budget_ids = models.JSONField(
        default=list, blank=True, help_text="The budgets this answer is charged to."
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The API key the turn was made with (usage per key).",
    )
    finish_reason = models.CharField(max_length=40, blank=True)
    response_id = models.CharField(max_length=200, blank=True, help_text="Provider-side response id.")
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    client_message_id = models.CharField(max_length=128, null=True, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The message this one answers or replaces (edits and regenerations branch here).",
    )
    request_options = models.JSONField(
        null=True,
        blank=True,
        help_text="What the request that started this answer asked for, when its protocol shows it "
        "back (the Responses API: instructions, metadata, temperature, background, input items).",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="message_client_id_unique_per_conversation",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_conversation_time"),
            models.Index(fields=["status"], name="message_status"),
            GinIndex(search.content_vector(search.INDEX_CONFIG), name=search.MESSAGE_CONTENT_INDEX),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class Artifact(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="artifacts")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="artifacts")
    language = models.CharField(max_length=40, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    content = models.TextField()
    position = models.PositiveIntegerField(help_text="Order of the code block within its message, from 0.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["message", "position"]
        constraints = [
            models.UniqueConstraint(fields=["message", "position"], name="artifact_position_unique"),
        ]
        indexes = [models.Index(fields=["conversation", "created_at"], name="artifact_conversation_time")]

    def __str__(self) -> str:
        return self.filename or f"{self.language or 'text'} #{self.position}"


class Attachment(models.Model):
    """A file a user message carries (an image, a PDF, a text file): its bytes in the attachment
    storage (``STORAGES["attachments"]``: the filesystem or S3), exactly as the user sent them.

    Uploaded (``POST /api/attachments``) before the message that sends it, or taken from the turn's
    request (a data URL, a fetched https URL). Until a message sends it, it has no ``message``: it
    belongs to who uploaded it, and is deleted after ``ATTACHMENT_UNSENT_HOURS``. Sent, it belongs
    to the session (and so to its owner): deleting the session deletes it and its file.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
        help_text="Empty for owner-less callers (they all share 'no owner', as their sessions do).",
    )
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
        help_text="The user message that sent it; empty while unsent.",
    )
    uploader_key = models.CharField(
        max_length=200, help_text="Who stored it (user, API key or address): the daily byte limit's key."
    )
    storage_name = models.CharField(max_length=255, help_text="Its name in the attachment storage.")
    media_type = models.CharField(max_length=100, help_text="Sniffed from its bytes.")
    filename = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    source_url = models.TextField(blank=True, help_text="The https URL it was fetched from, if any.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["uploader_key", "created_at"], name="attachment_uploader_day"),
            models.Index(fields=["created_at"], name="attachment_unsent", condition=Q(message__isnull=True)),
        ]

    def __str__(self) -> str:
        return self.filename or f"{self.media_type} ({self.size} bytes)"
