"""GET /metrics: the GenAI metrics in Prometheus' text format, for operators without a collector.

Served only with ``METRICS_ENABLED`` and a ``METRICS_TOKEN``, to a caller sending
``Authorization: Bearer <METRICS_TOKEN>``: otherwise ``404`` (not served here) or ``401`` (no or
a wrong token). ``METRICS_BIND`` serves the same on a listener of its own (docs/telemetry.md).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from conversations import telemetry
from conversations.edge.http_errors import json_error


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    exposition = telemetry.current().prometheus_exposition() if settings.METRICS_ENABLED and token else None
    if exposition is None:
        return json_error(404, "not_found", "No such endpoint or object.")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        return json_error(
            401,
            "unauthorized",
            "Send Authorization: Bearer <METRICS_TOKEN>.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = exposition
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})
