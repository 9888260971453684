"""A session's counters on its own row: messages, tokens, cost, and its last message's preview.

The turn's two writes keep them (:mod:`conversations.turns.orm_writes`, and the same in SQL in
:mod:`conversations.turns.pg_writes`): the opening adds its messages and makes the new answer the
last message; the closing adds the answer's tokens and cost (once) and, when the answer is still the
session's newest message, its text as the preview. Every other write that adds or removes messages
(an import, a greeting, a deleted message or response) recomputes its session with
:func:`sessions_recount`, which ``manage.py recount_sessions`` runs over every session in batches.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, DecimalField, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Left

from conversations.models import Conversation, Message

PREVIEW_LENGTH = 200


def _aggregate(expression, output_field=None):
    """A subquery of one aggregate over the session's messages."""
    rows = (
        Message.objects.filter(conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(value=expression)
        .values("value")
    )
    return Subquery(rows, output_field=output_field)


def sessions_recount(conversation_ids: Iterable) -> int:
    """Recompute the counters of these sessions from their messages; how many were updated."""
    newest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-created_at", "-id")
    big = IntegerField()
    return Conversation.objects.filter(pk__in=list(conversation_ids)).update(
        message_count=Coalesce(_aggregate(Count("id"), big), Value(0)),
        input_tokens=Coalesce(_aggregate(Sum("input_tokens"), big), Value(0)),
        output_tokens=Coalesce(_aggregate(Sum("output_tokens"), big), Value(0)),
        cost=_aggregate(Sum("cost"), DecimalField(max_digits=18, decimal_places=8)),
        cost_unknown_answers=Coalesce(
            _aggregate(
                Count(
                    "id",
                    filter=Q(role=Message.Role.ASSISTANT, cost__isnull=True)
                    & ~Q(status=Message.Status.STREAMING),
                ),
                big,
            ),
            Value(0),
        ),
        last_message_role=Coalesce(Subquery(newest.values("role")[:1]), Value("")),
        last_message_preview=Coalesce(
            Subquery(newest.values(preview=Left("content", PREVIEW_LENGTH))[:1]), Value("")
        ),
        last_message_at=Subquery(newest.values("created_at")[:1]),
    )


COUNTER_FIELDS = (
    "message_count",
    "input_tokens",
    "output_tokens",
    "cost",
    "cost_unknown_answers",
    "last_message_role",
    "last_message_preview",
    "last_message_at",
)
