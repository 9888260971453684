"""API keys in the admin: create (the secret is shown once), revoke, see last use."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone

from accounts.keys import api_key_create
from accounts.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "owner", "created_at", "last_used_at", "revoked_at", "total_cost")

    def get_queryset(self, request):
        from django.db.models import Sum

        from conversations.models import Message

        spent = Message.objects.filter(api_key=OuterRef("pk")).values("api_key").annotate(total=Sum("cost"))
        return super().get_queryset(request).annotate(cost_total=Subquery(spent.values("total")[:1]))

    @admin.display(description="cost (USD)", ordering="cost_total")
    def total_cost(self, obj) -> str:
        """What the key's turns cost at their models' prices (answers without a price not included)."""
        return "—" if obj.cost_total is None else f"{obj.cost_total.normalize():f}"

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
