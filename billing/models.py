"""Prices per model and budgets per user, API key, seed mount and anonymous callers.

A budget's ``spent`` and ``reserved`` are moved by the turn's own two writes (the opening write
reserves, the closing write settles; see :mod:`billing.budgets`), so no turn costs an extra round
trip and parallel turns cannot overshoot a budget by more than one reservation.
"""

from __future__ import annotations

import datetime

from django.db import models
from django.utils import timezone

MONEY = {"max_digits": 16, "decimal_places": 8}


class ModelPrice(models.Model):
    """What one ``provider:model`` costs per million tokens, from a date on (the newest row that has
    taken effect applies; rows win over the ``PRICES`` setting and the shipped defaults)."""

    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=128)
    input_per_mtok = models.DecimalField(**MONEY, help_text="Input tokens, per million.")
    cached_input_per_mtok = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="Input tokens read from the provider's cache, per million (empty: as input).",
    )
    output_per_mtok = models.DecimalField(
        **MONEY, help_text="Output tokens (reasoning included), per million."
    )
    effective_from = models.DateField(default=datetime.date(2000, 1, 1))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "effective_from"], name="model_price_unique_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.model} from {self.effective_from}"


class Budget(models.Model):
    """A spending cap for one subject of one scope, over a period that resets on schedule (UTC).

    ``subject``: the user's id, the API key's id, the mount's name, ``""`` for anonymous callers, or
    ``"*"``: the default a new user's or key's budget starts from.
    """

    class Scope(models.TextChoices):
        USER = "user"
        KEY = "key"
        MOUNT = "mount"
        ANONYMOUS = "anonymous"

    class Period(models.TextChoices):
        DAY = "day"
        WEEK = "week"
        MONTH = "month"
        NONE = "none"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    subject = models.CharField(max_length=64, blank=True)
    amount = models.DecimalField(**MONEY, help_text="The cap per period, in the prices' currency (USD).")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    spent = models.DecimalField(**MONEY, default=0, help_text="Settled cost in the current period.")
    reserved = models.DecimalField(**MONEY, default=0, help_text="Held by turns still running.")
    period_start = models.DateTimeField(null=True, blank=True)
    reserved_for = models.UUIDField(null=True, blank=True, editable=False)  # the last answer that reserved
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "subject"]
        constraints = [models.UniqueConstraint(fields=["scope", "subject"], name="budget_unique_per_subject")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.subject or '(anonymous)'} {self.amount}/{self.period}"
