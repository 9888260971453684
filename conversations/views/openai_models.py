"""``GET /v1/models`` and ``GET /v1/models/{id}``: the models a caller may name, in OpenAI's list
format, so OpenAI-compatible clients (Open WebUI, LibreChat, LangChain) can discover this server.

Ids are ``provider:model`` for every configured provider and bare for the default provider
(:meth:`providers.registry.ProviderRegistry.catalog`); any of them is a valid ``model`` for
``/v1/chat/completions``, and a name no provider serves is refused there as it is here. A provider
the operator opened to any name (``<PREFIX>_MODELS=*``) lists the names it knows, and
``GET /v1/models/{id}`` finds any other it would serve. The offline demo is listed only where it may answer
(``DEMO_PROVIDER_ALLOWED``). Authentication is the native API's (API key, session, anonymous when
allowed); errors are OpenAI's shape.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from conversations.codecs.base import JsonReply
from conversations.codecs.openai_chat import openai_error
from conversations.edge.http_errors import HttpError
from conversations.routes.pipeline import http_response
from conversations.views.auth import request_caller
from providers.defaults import split_model
from providers.registry import UnknownModel, UnknownProvider, get_registry

#: ``created`` of every model object (OpenAI's field is a Unix time; these models have no such date).
CREATED = 0


def _model(model_id: str, provider: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": provider}


def _models() -> dict[str, dict[str, object]]:
    return {
        model_id: _model(model_id, provider)
        for model_id, provider in get_registry().catalog()
        if provider != "demo" or settings.DEMO_PROVIDER_ALLOWED
    }


def _served(model_id: str) -> dict[str, object] | None:
    """The model a turn naming ``model_id`` would be answered by, when a provider opened to any
    name serves it (the same resolution as the turn's)."""
    registry = get_registry()
    provider, model = split_model(model_id)
    try:
        config = registry.config(provider)
        registry.resolve_model(provider, model)
    except (UnknownProvider, UnknownModel):
        return None
    name = config.spec.name
    if not config.configured or (name == "demo" and not settings.DEMO_PROVIDER_ALLOWED):
        return None
    return _model(model_id, name)


async def _refused(request: HttpRequest) -> HttpResponse | None:
    """The caller's authentication error in OpenAI's shape, or None when the caller may list."""
    try:
        await request_caller(request)
    except HttpError as exc:
        return http_response(openai_error(exc.status, exc.code, exc.message))
    return None


async def models_list(request: HttpRequest) -> HttpResponse:
    if refused := await _refused(request):
        return refused
    return http_response(JsonReply({"object": "list", "data": list(_models().values())}))


async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    if refused := await _refused(request):
        return refused
    model = _models().get(model_id) or _served(model_id)
    if model is None:
        message = f"The model {model_id!r} does not exist here: GET /v1/models lists the ones you may use."
        return http_response(openai_error(404, "model_not_found", message, param="model"))
    return http_response(JsonReply(model))
