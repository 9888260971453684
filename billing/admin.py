"""Prices and budgets in the admin: a price saved here applies in this process at once, in others
within a minute (:data:`billing.prices.REFRESH_SECONDS`)."""

from __future__ import annotations

from django.contrib import admin

from billing.budget_state import budget_state
from billing.models import Budget, ModelPrice
from billing.prices import price_book


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = (
        "provider",
        "model",
        "input_per_mtok",
        "cached_input_per_mtok",
        "output_per_mtok",
        "effective_from",
    )
    list_filter = ("provider",)
    search_fields = ("model",)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        price_book.load()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        price_book.load()


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("scope", "subject", "amount", "period", "spent_now", "reserved", "resets_at")
    list_filter = ("scope", "period")
    search_fields = ("subject",)
    readonly_fields = ("spent", "reserved", "period_start", "reserved_for", "updated_at")

    @admin.display(description="spent this period")
    def spent_now(self, obj: Budget) -> str:
        return budget_state(obj)["spent"]

    @admin.display(description="resets at")
    def resets_at(self, obj: Budget) -> str:
        return budget_state(obj)["resets_at"] or "never"
