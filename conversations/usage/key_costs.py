"""Each API key's cost in the admin's list of keys.

The cost is summed over the conversations' answers, which ``accounts`` (below them) does not read:
this subclass of ``accounts``' key admin adds the column and takes its place in the admin site.
:mod:`conversations.admin` imports this module, so the admin's autodiscovery registers it.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery, Sum
from django.http import HttpRequest

from accounts.admin import ApiKeyAdmin
from accounts.models import ApiKey
from conversations.models import Message


class ApiKeyCostAdmin(ApiKeyAdmin):
    list_display = (*ApiKeyAdmin.list_display, "total_cost")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        spent = Message.objects.filter(api_key=OuterRef("pk")).values("api_key").annotate(total=Sum("cost"))
        return super().get_queryset(request).annotate(cost_total=Subquery(spent.values("total")[:1]))

    @admin.display(description="cost (USD)", ordering="cost_total")
    def total_cost(self, obj: ApiKey) -> str:
        """What the key's turns cost at their models' prices (answers without a price not included)."""
        return "—" if obj.cost_total is None else f"{obj.cost_total.normalize():f}"


def register(site: admin.AdminSite = admin.site) -> None:
    """Put the key admin with costs in place of ``accounts``' own (imported above, so registered)."""
    if site.is_registered(ApiKey):
        site.unregister(ApiKey)
    site.register(ApiKey, ApiKeyCostAdmin)


register()
