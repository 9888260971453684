"""GET /health: 200 when every dependency answers, 503 naming the ones that do not."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from conversations.health_probes import dependency_states

FIX_HINT = {"database": "check DATABASE_URL and that PostgreSQL is running", "redis": "check REDIS_URL"}


@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    states = await dependency_states()
    failing = [name for name, state in states.items() if state != "ok"]
    if not failing:
        return JsonResponse({"status": "ok", **states})
    message = "; ".join(f"{name} is unreachable: {FIX_HINT[name]}" for name in failing)
    body = {
        "status": "unavailable",
        **states,
        "error": {"code": "dependency_unavailable", "message": message},
    }
    return JsonResponse(body, status=503, headers={"Cache-Control": "no-store"})
