"""The native API's route table (the native turn API, OpenAI's chat and Responses APIs, the AI SDK
transport): each endpoint declared once, protocol → codec → caller rule → lookups; Django's URL
patterns and the lean edge's streaming marks are made from it (:mod:`conversations.routes.table`)."""

from __future__ import annotations

from django.urls import include, path

from conversations.codecs.ai_sdk import UIMessageStreamCodec
from conversations.codecs.native import NativeCodec
from conversations.codecs.openai_chat import OpenAIChatCodec
from conversations.codecs.openai_responses import OpenAIResponsesCodec
from conversations.dialects.sessions import asession_key_for_answer
from conversations.routes.pipeline import Route
from conversations.routes.table import Endpoint, turn, url_patterns
from conversations.sockets import ticket_view
from conversations.views import (
    ai_sdk,
    ai_sdk_history,
    attachments,
    openai_models,
    openai_responses,
    streams,
    turns,
)
from conversations.views.auth import request_caller

# The native API's caller rule: API key, else session cookie (with CSRF), else anonymous if allowed.
CALLER = {"caller": request_caller, "session_for_answer": asession_key_for_answer}
NEW_MESSAGE = Route(NativeCodec(), **CALLER)
EDIT = Route(NativeCodec("edit_of"), body_required=False, **CALLER)
REGENERATE = Route(NativeCodec("regenerate_of"), body_required=False, **CALLER)
CHAT_COMPLETIONS = Route(OpenAIChatCodec(), **CALLER)
RESPONSES = Route(OpenAIResponsesCodec(), start=openai_responses.start_response, **CALLER)
AI_SDK_CHAT = Route(UIMessageStreamCodec(), start=ai_sdk.start_ui_chat, **CALLER)

POST, GET = ("POST",), ("GET",)
M = "api/sessions/<str:session_key>/messages"
A = "api/attachments"  # its POST body bypasses the request guard's buffer (chatproject/body_guard.py)
R = "v1/responses/<str:response_id>"

ROUTES = [
    Endpoint(M, NEW_MESSAGE, "session-messages", streaming=POST, otherwise=turns.message_list),
    Endpoint(f"{M}/<uuid:message_id>/stop", turns.stop_message, "session-message-stop", POST, POST),
    Endpoint(f"{M}/<uuid:message_id>/stream", streams.resume_stream, "session-message-stream", GET, GET),
    turn(f"{M}/<uuid:message_id>/edit", EDIT, "session-message-edit"),
    turn(f"{M}/<uuid:message_id>/regenerate", REGENERATE, "session-message-regenerate"),
    turn("api/ai-sdk/chat", AI_SDK_CHAT, "ai-sdk-chat"),
    Endpoint("api/ws-ticket", ticket_view.ws_ticket, "ws-ticket", POST),
    Endpoint("api/ai-sdk/ws-ticket", ticket_view.ws_ticket, "ai-sdk-ws-ticket", POST),  # its first name
    Endpoint(
        "api/ai-sdk/chat/<str:chat_id>/stream", ai_sdk.resume_chat_stream, "ai-sdk-chat-stream", GET, GET
    ),
    Endpoint("api/ai-sdk/chat/<str:chat_id>/stop", ai_sdk.stop_chat, "ai-sdk-chat-stop", POST, POST),
    Endpoint(
        "api/ai-sdk/chat/<str:chat_id>/messages", ai_sdk_history.chat_messages, "ai-sdk-chat-messages", GET
    ),
    turn("v1/chat/completions", CHAT_COMPLETIONS, "openai-chat-completions"),
    turn("v1/responses", RESPONSES, "openai-responses"),
    Endpoint(R, openai_responses.response_detail, "openai-response", ("GET", "DELETE"), GET),
    Endpoint(f"{R}/cancel", openai_responses.response_cancel, "openai-response-cancel", POST, POST),
    Endpoint(f"{R}/input_items", openai_responses.response_input_items, "openai-response-input-items", GET),
    Endpoint(A, attachments.attachments, "attachments", POST),
    Endpoint(f"{A}/<uuid:attachment_id>", attachments.attachment_detail, "attachment", ("GET", "DELETE")),
    Endpoint(
        f"{A}/<uuid:attachment_id>/content",
        attachments.attachment_content,
        "attachment-content",
        ("GET", "HEAD"),
    ),
    Endpoint("v1/models", openai_models.models_list, "openai-models", GET),
    Endpoint("v1/models/<path:model_id>", openai_models.model_detail, "openai-model", GET),
]

urlpatterns = [*url_patterns(ROUTES), path("", include("conversations.api.urls"))]
