"""API keys in the admin: create (the secret is shown once), revoke, see last use.

Each key's cost is read from the conversations' answers, above this package: the admin registered
here is replaced by :class:`conversations.usage.key_costs.ApiKeyCostAdmin`, which adds that column."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.keys import api_key_create
from accounts.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "owner", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at", "created_at")
    search_fields = ("name", "prefix", "owner__username")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("owner", "name")
        return ("owner", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("owner", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, secret = api_key_create(owner=obj.owner, name=obj.name)
        obj.pk, obj.prefix, obj.secret_hash, obj.created_at = (
            key.pk,
            key.prefix,
            key.secret_hash,
            key.created_at,
        )
        messages.warning(
            request,
            f"The new API key is {secret} — copy it now: it is not stored and will not be shown again.",
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} API key(s).")
