"""Admin for inspecting sessions, messages, artifacts and attachments, at ten million messages.

A changelist page costs what its page costs: no ``COUNT(*)`` of the whole table (an estimate, or a
count capped at ``CappedCountPaginator.cap``), filters that need no ``SELECT DISTINCT`` over the
table, ordering by an indexed column, search through indexes only (conversations/search.py), and
raw ids instead of a select of every row for foreign keys.

Deleting a session, a message or an attachment here deletes the attachments' files too (through
:mod:`conversations.session_writes` and the attachment store), as the API does: none is left
orphaned in the storage.
"""

from __future__ import annotations

import contextlib
import json
import uuid

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator

from conversations import search, session_writes
from conversations.attachments import store
from conversations.models import Artifact, Attachment, Conversation, Message
from conversations.usage import key_costs  # noqa: F401 (registers the API key admin with each key's cost)

INLINE_MESSAGES = 50
SEARCH_MATCHES = 1000  # messages a message search lists at most


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` + 1 rows; an unfiltered list of a large PostgreSQL table reports the
    planner's estimate (``pg_class.reltuples``) instead. Pages past the cap are not offered."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if connection.vendor == "postgresql" and not rows.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [rows.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > self.cap:
                return int(row[0])
        return rows.order_by()[: self.cap + 1].count()


def session_ids_by_key(term: str) -> list:
    """The sessions whose key is ``term`` or starts with it (the ``conversation_session_key`` index)."""
    sessions = Conversation.objects.filter(Q(session_key=term) | Q(session_key__startswith=term))
    return list(sessions.values_list("pk", flat=True)[:1000])


def messages_matching(term: str) -> QuerySet[Message]:
    """Full-text through the message index on PostgreSQL; a substring elsewhere (small databases)."""
    if connection.vendor == "postgresql":
        return Message.objects.alias(document=search.content_vector()).filter(
            document=search.websearch_query(term)
        )
    return Message.objects.filter(content__icontains=term)


class ScaleAdmin(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50


USAGE_FIELDS = ("input_tokens", "output_tokens", "usage_estimated", "finish_reason", "response_id")


def admin_link(obj: object, label: str | None = None) -> str:
    if obj is None:
        return "-"
    meta = obj._meta  # type: ignore[attr-defined]
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])  # type: ignore[attr-defined]
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


class NewestMessagesFormSet(BaseInlineFormSet):
    """The session's newest ``INLINE_MESSAGES``, oldest first (a session may hold 100,000: the
    others are in the message changelist)."""

    def get_queryset(self) -> list[Message]:
        if not hasattr(self, "_newest"):
            self._newest = list(self.queryset.order_by("-created_at", "-id")[:INLINE_MESSAGES])[::-1]
        return self._newest


class MessageInline(admin.TabularInline):
    model = Message
    formset = NewestMessagesFormSet
    verbose_name_plural = f"messages (the newest {INLINE_MESSAGES})"
    fk_name = "conversation"
    fields = ("role", "status", "short_content", "model", "input_tokens", "output_tokens", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False
    ordering = ("created_at",)

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        return Truncator(obj.content).chars(120)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ArtifactInline(admin.StackedInline):
    model = Artifact
    fk_name = "message"
    fields = ("position", "language", "filename", "content")
    readonly_fields = ("position",)
    extra = 0


@admin.register(Conversation)
class ConversationAdmin(ScaleAdmin):
    """Search: part of a title, a session key or its prefix, or words of a message (full-text)."""

    list_display = ("session_key", "title", "owner", "provider", "model", "message_count", "updated_at")
    list_filter = ("created_at", "updated_at")
    search_fields = ("title", "session_key", "messages__content")  # see get_search_results
    search_help_text = "Part of a title, a session key (or its start), or words of a message."
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    readonly_fields = ("id", "last_response_id", "created_at", "updated_at")
    ordering = ("-updated_at",)
    inlines = (MessageInline,)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        messages = messages_matching(term).filter(conversation_id=OuterRef("pk"))
        by_key = Q(pk__in=session_ids_by_key(term))
        return queryset.filter(Q(title__icontains=term) | by_key | Exists(messages)), False

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        session_writes.conversation_delete(obj)  # its attachments' files too

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for conversation in queryset:
            session_writes.conversation_delete(conversation)


@admin.register(Message)
class MessageAdmin(ScaleAdmin):
    """Search: words of the content (full-text), or a session key (or its start)."""

    list_display = (
        "short_content",
        "conversation_link",
        "role",
        "status",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "created_at",
    )
    # Choices need no query; provider and model would need a SELECT DISTINCT over every message.
    list_filter = ("status", "role", "created_at")
    search_fields = ("content", "conversation__session_key")  # see get_search_results
    search_help_text = "Words of the content, or a session key (or its start)."
    list_select_related = ("conversation",)
    raw_id_fields = ("conversation", "parent", "api_key")
    readonly_fields = (
        "id",
        "conversation_link",
        "parent_link",
        "parts_json",
        *USAGE_FIELDS,
        "created_at",
        "completed_at",
    )
    # shown read-only (parts_json): a tool call edited by hand would no longer match its results
    exclude = ("parts",)
    ordering = ("-created_at",)
    inlines = (ArtifactInline,)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        # The matches first, by the index alone, at most SEARCH_MATCHES of them: filtering inside
        # the page's query would let PostgreSQL walk the created_at index newest first and compute
        # to_tsvector for every message until it found a page of (perhaps old, perhaps no) matches.
        matches = list(messages_matching(term).order_by().values_list("pk", flat=True)[:SEARCH_MATCHES])
        return queryset.filter(Q(pk__in=matches) | Q(conversation_id__in=session_ids_by_key(term))), False

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        session_writes.message_delete(obj)  # its attachments' files too (unless an edit still sends them)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for message in queryset:
            session_writes.message_delete(message)

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        return Truncator(obj.content).chars(80)

    @admin.display(description="conversation", ordering="conversation__session_key")
    def conversation_link(self, obj: Message) -> str:
        return admin_link(obj.conversation)

    @admin.display(description="parent")
    def parent_link(self, obj: Message) -> str:
        return admin_link(obj.parent)

    @admin.display(description="parts")
    def parts_json(self, obj: Message) -> str:
        """The stored parts (tool calls, tool results) as indented JSON; none for a text message."""
        if not obj.parts:
            return "— (text only: the content is its one part)"
        return format_html("<pre>{}</pre>", json.dumps(obj.parts, indent=2, ensure_ascii=False))


@admin.register(Artifact)
class ArtifactAdmin(ScaleAdmin):
    """Search: a session key (or its start)."""

    list_display = (
        "__str__",
        "language",
        "filename",
        "position",
        "message_link",
        "conversation_link",
        "created_at",
    )
    list_filter = ("created_at",)
    search_fields = ("conversation__session_key",)  # see get_search_results
    search_help_text = "A session key (or its start)."
    list_select_related = ("message", "conversation")
    raw_id_fields = ("message", "conversation")
    readonly_fields = ("message_link", "conversation_link", "created_at")
    ordering = ("-id",)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(conversation_id__in=session_ids_by_key(term)), False

    @admin.display(description="message")
    def message_link(self, obj: Artifact) -> str:
        return admin_link(obj.message)

    @admin.display(description="conversation")
    def conversation_link(self, obj: Artifact) -> str:
        return admin_link(obj.conversation)


class SentFilter(admin.SimpleListFilter):
    """Sent in a message, or an upload not yet sent (deleted after ``ATTACHMENT_UNSENT_HOURS``)."""

    title = "sent"
    parameter_name = "sent"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Sent"), ("no", "Not sent yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(message__isnull=self.value() == "no")
        return queryset


@admin.register(Attachment)
class AttachmentAdmin(ScaleAdmin):
    """Read-only: an attachment is what a user sent. Deleting one deletes its file through the
    store (the message that sent it keeps its file part; the download then answers 404).
    Search: part of a filename, the start of a SHA-256, or an id."""

    list_display = (
        "id",
        "filename",
        "owner",
        "conversation_link",
        "media_type",
        "size",
        "created_at",
        "sent",
    )
    list_filter = (SentFilter, "created_at")
    search_fields = ("filename", "sha256")  # see get_search_results
    search_help_text = "Part of a filename, the start of a SHA-256, or an attachment id."
    list_select_related = ("owner", "conversation")
    ordering = ("-created_at",)
    fields = (
        "id",
        "owner",
        "conversation_link",
        "message_link",
        "filename",
        "media_type",
        "size",
        "sha256",
        "width",
        "height",
        "source_url",
        "uploader_key",
        "storage_name",
        "created_at",
    )
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = Q(filename__icontains=term) | Q(sha256__startswith=term.lower())
        with contextlib.suppress(ValueError):
            found |= Q(pk=uuid.UUID(term))
        return queryset.filter(found), False

    @admin.display(description="sent", boolean=True, ordering="message")
    def sent(self, obj: Attachment) -> bool:
        return obj.message_id is not None

    @admin.display(description="session")
    def conversation_link(self, obj: Attachment) -> str:
        return admin_link(obj.conversation)

    @admin.display(description="message")
    def message_link(self, obj: Attachment) -> str:
        return admin_link(obj.message, Truncator(obj.message.content).chars(80) if obj.message else None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Attachment) -> None:
        store.delete_attachments(Attachment.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        store.delete_attachments(queryset)
