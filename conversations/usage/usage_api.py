"""``GET /api/usage``: the caller's usage and budgets (staff: anyone's, with ``user``)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api.permissions import require_owner
from conversations.usage.user_report import GROUPS, usage_report


def _moment(request: Request, name: str, default: dt.datetime) -> dt.datetime:
    raw = request.query_params.get(name)
    if not raw:
        return default
    day = parse_date(raw) if len(raw) == 10 else None
    moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None
    if moment is None:
        try:
            moment = parse_datetime(raw)
        except ValueError:
            moment = None
    if moment is None:
        raise ValidationError({name: "must be a date (2026-12-01) or an ISO-8601 date-time."})
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class UsageView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from",
                OpenApiTypes.DATE,
                description="Start, UTC (a date, or an ISO-8601 date-time); default: this month's first day.",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.DATE,
                description="End, exclusive (a date is that day's start, or a date-time); default: now.",
            ),
            OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(GROUPS), description="default: day"),
            OpenApiParameter("user", OpenApiTypes.INT, description="Staff only: another user's usage."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        owner_id = require_owner(request, "Usage")
        if request.query_params.get("user"):
            if not request.user.is_staff:
                raise ValidationError({"user": "only staff may read another user's usage."})
            try:
                owner_id = int(request.query_params["user"])
            except ValueError:
                raise ValidationError({"user": "must be a user id (a whole number)."}) from None
        now = timezone.now()
        start = _moment(request, "from", now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
        end = _moment(request, "to", now + dt.timedelta(seconds=1))
        if end <= start:
            raise ValidationError({"to": "must be after from."})
        group_by = request.query_params.get("group_by") or "day"
        if group_by not in GROUPS:
            raise ValidationError({"group_by": f"must be one of {', '.join(GROUPS)}."})
        return Response(usage_report(owner_id, start, end, group_by))
