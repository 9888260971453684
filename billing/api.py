"""``/api/budgets`` (staff): budgets of users, API keys, mounts and anonymous callers.

``GET /api/usage`` reads the conversations' answers, so it lives above them
(:mod:`conversations.usage.usage_api`)."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAdminUser

from billing.budget_state import budget_state
from billing.budgets import PERIODS
from billing.models import Budget


class BudgetSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=16, decimal_places=8, min_value=Decimal(0))
    period = serializers.ChoiceField(choices=PERIODS)
    subject = serializers.CharField(
        max_length=64,
        allow_blank=True,
        help_text='The user id, the API key id, the mount name, "" (anonymous), or "*" (the default for new ones).',
    )

    class Meta:
        model = Budget
        fields = [
            "id",
            "scope",
            "subject",
            "amount",
            "period",
            "spent",
            "reserved",
            "period_start",
            "updated_at",
        ]
        read_only_fields = ["spent", "reserved", "period_start", "updated_at"]

    def to_representation(self, instance: Budget) -> dict:
        return {**super().to_representation(instance), **budget_state(instance)}


class BudgetViewSet(viewsets.ModelViewSet):
    """Budgets of users, API keys, mounts and anonymous callers (staff only)."""

    permission_classes = [IsAdminUser]
    serializer_class = BudgetSerializer
    queryset = Budget.objects.order_by("scope", "subject")
