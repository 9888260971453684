"""The admin usage page (``/admin/usage/``, staff only): cost and tokens per day by model, the top
users and API keys, budget consumption, for a range of days (default: the last 30, today included).

The numbers come from :func:`conversations.usage.staff_report.usage_overview`; the page embeds them as JSON for its
charts (Chart.js, vendored in ``static/chat/vendor/chartjs/``) and shows them as tables too, so they
are readable without JavaScript and by screen readers.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone

from conversations.usage.staff_report import usage_overview

DEFAULT_DAYS = 30
MAX_DAYS = 366


class UsageRangeForm(forms.Form):
    """A range of whole UTC days, both ends included."""

    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError("“To” must not be before “From”.")
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(f"Choose at most {MAX_DAYS} days.")
        return data


def default_range(today: datetime.date | None = None) -> dict[str, datetime.date]:
    today = today or timezone.now().astimezone(datetime.UTC).date()
    return {"start": today - datetime.timedelta(days=DEFAULT_DAYS - 1), "end": today}


def range_bounds(start: datetime.date, end: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """``[start 00:00, the day after end 00:00)`` in UTC: the usage API's ``from`` and ``to``."""
    midnight = datetime.time(tzinfo=datetime.UTC)
    return (
        datetime.datetime.combine(start, midnight),
        datetime.datetime.combine(end + datetime.timedelta(days=1), midnight),
    )


def usage_page(request: HttpRequest) -> HttpResponse:
    form = UsageRangeForm(request.GET if "start" in request.GET else None, initial=default_range())
    chosen = form.cleaned_data if form.is_bound and form.is_valid() else default_range()
    start, end = range_bounds(chosen["start"], chosen["end"])
    context = {
        **admin.site.each_context(request),
        "title": "Usage and cost",
        "form": form,
        "overview": usage_overview(start, end),
        "first_day": chosen["start"],
        "last_day": chosen["end"],
        "api_range": _api_range(start, end),
    }
    return TemplateResponse(request, "admin/billing/usage.html", context)


def _api_range(start: datetime.datetime, end: datetime.datetime) -> str:
    query = QueryDict(mutable=True)
    query.update({"from": start.date().isoformat(), "to": end.date().isoformat()})
    return query.urlencode()


usage_admin_view = admin.site.admin_view(usage_page)
