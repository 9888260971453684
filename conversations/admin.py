"""Admin for inspecting sessions, messages and artifacts."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from conversations.models import Artifact, Conversation, Message

USAGE_FIELDS = ("input_tokens", "output_tokens", "usage_estimated", "finish_reason", "response_id")


def admin_link(obj: object, label: str | None = None) -> str:
    if obj is None:
        return "-"
    meta = obj._meta  # type: ignore[attr-defined]
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])  # type: ignore[attr-defined]
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


class MessageInline(admin.TabularInline):
    model = Message
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
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("session_key", "title", "owner", "provider", "model", "message_count", "updated_at")
    list_filter = ("provider", "model", "created_at", "updated_at")
    search_fields = ("title", "session_key", "messages__content")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    readonly_fields = ("id", "last_response_id", "created_at", "updated_at")
    date_hierarchy = "created_at"
    inlines = (MessageInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(message_count=Count("messages", distinct=True))

    @admin.display(description="messages", ordering="message_count")
    def message_count(self, obj: Conversation) -> int:
        return obj.message_count  # type: ignore[attr-defined]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
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
    list_filter = ("status", "role", "provider", "model", "created_at")
    search_fields = ("content", "conversation__session_key", "conversation__title", "client_message_id")
    list_select_related = ("conversation",)
    raw_id_fields = ("conversation", "parent")
    readonly_fields = ("id", "conversation_link", "parent_link", *USAGE_FIELDS, "created_at", "completed_at")
    date_hierarchy = "created_at"
    inlines = (ArtifactInline,)

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        return Truncator(obj.content).chars(80)

    @admin.display(description="conversation", ordering="conversation__session_key")
    def conversation_link(self, obj: Message) -> str:
        return admin_link(obj.conversation)

    @admin.display(description="parent")
    def parent_link(self, obj: Message) -> str:
        return admin_link(obj.parent)


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "language",
        "filename",
        "position",
        "message_link",
        "conversation_link",
        "created_at",
    )
    list_filter = ("language", "created_at")
    search_fields = ("filename", "content", "conversation__session_key")
    list_select_related = ("message", "conversation")
    raw_id_fields = ("message", "conversation")
    readonly_fields = ("message_link", "conversation_link", "created_at")

    @admin.display(description="message")
    def message_link(self, obj: Artifact) -> str:
        return admin_link(obj.message)

    @admin.display(description="conversation")
    def conversation_link(self, obj: Artifact) -> str:
        return admin_link(obj.conversation)
