"""``manage.py recount_sessions``: recompute every session's counters and preview from its messages,
in batches (after a deploy that adds them, or to check that they never drifted: ``--check``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from conversations.counters import COUNTER_FIELDS, sessions_recount
from conversations.models import Conversation


class Command(BaseCommand):
    help = "Recompute each session's message count, tokens, cost and last-message preview, in batches."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch", type=int, default=1000, help="Sessions per transaction (default 1000)."
        )
        parser.add_argument(
            "--check", action="store_true", help="Change nothing: report the sessions whose counters differ."
        )

    def handle(self, *args: Any, batch: int, check: bool, **options: Any) -> None:
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        done = drifted = 0
        last = None
        while True:
            page = Conversation.objects.order_by("pk")
            if last is not None:
                page = page.filter(pk__gt=last)
            ids = list(page.values_list("pk", flat=True)[:batch])
            if not ids:
                break
            last = ids[-1]
            if check:
                drifted += self._drifted(ids)
            else:
                sessions_recount(ids)
            done += len(ids)
        if check:
            self.stdout.write(
                f"{done} sessions checked, {drifted} with counters that differ from their messages."
            )
            if drifted:
                raise CommandError("Counters drifted: run manage.py recount_sessions to fix them.")
        else:
            self.stdout.write(f"{done} sessions recounted.")

    def _drifted(self, ids: list) -> int:
        from django.db import transaction

        with transaction.atomic():
            before = {
                row["pk"]: row
                for row in Conversation.objects.filter(pk__in=ids).values("pk", *COUNTER_FIELDS)
            }
            sessions_recount(ids)
            after = {
                row["pk"]: row
                for row in Conversation.objects.filter(pk__in=ids).values("pk", *COUNTER_FIELDS)
            }
            transaction.set_rollback(True)
        return sum(before[pk] != after[pk] for pk in ids)
