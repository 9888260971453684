"""``GET /v1/models`` and ``GET /v1/models/{id}``: the models a caller may name, in OpenAI's list
format, so OpenAI-compatible clients (Open WebUI, LibreChat, LangChain) can discover this server.

Ids are ``provider:model`` for every configured provider and bare for the default provider
(:meth:`providers.registry.ProviderRegistry.catalog`); any of them is a valid ``model`` for
``/v1/chat/completions``. The offline demo is listed only where it may answer
(``DEMO_PROVIDER_ALLOWED``). Authentication is the native API's (API key, session, anonymous when
allowed); errors are OpenAI's shape.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from conversations.codecs.base import JsonReply
from conversations.codecs.openai_chat import openai_error
from conversations.edge.errors import HttpError
from conversations.edge.pipeline import http_response
from conversations.views.auth import request_caller
from providers.registry import get_registry

#: ``created`` of every model object (OpenAI's field is a Unix time; these models have no such date).
CREATED = 0


def _models() -> dict[str, dict[str, object]]:
    return {
        model_id: {"id": model_id, "object": "model", "created": CREATED, "owned_by": provider}
        for model_id, provider in get_registry().catalog()
        if provider != "demo" or settings.DEMO_PROVIDER_ALLOWED
    }


async def _refused(request: HttpRequest) -> HttpResponse | None:
    """The caller's authentication error in OpenAI's shape, or None when the caller may list."""
    try:
        await request_caller(request)
    except HttpError as exc:
        return http_response(openai_error(exc.status, exc.code, exc.message))
    return None


@require_GET
async def models_list(request: HttpRequest) -> HttpResponse:
    if refused := await _refused(request):
        return refused
    return http_response(JsonReply({"object": "list", "data": list(_models().values())}))


@require_GET
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    if refused := await _refused(request):
        return refused
    model = _models().get(model_id)
    if model is None:
        message = f"The model {model_id!r} does not exist here: GET /v1/models lists the ones you may use."
        return http_response(openai_error(404, "model_not_found", message, param="model"))
    return http_response(JsonReply(model))
