"""``POST /v1/chat/completions``: the turn pipeline with the OpenAI chat codec
(:mod:`conversations.codecs.openai_chat`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations.codecs.openai_chat import OpenAIChatCodec
from conversations.edge.pipeline import Route, streaming_route, turn_pipeline

CHAT_COMPLETIONS = Route(OpenAIChatCodec())


@streaming_route("POST")
@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    return await turn_pipeline(request, CHAT_COMPLETIONS)
