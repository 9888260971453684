from django.urls import include, path

from conversations.views import (
    ai_sdk,
    openai_compat,
    openai_models,
    openai_responses,
    streams,
    turns,
    ws_tickets,
)

M = "api/sessions/<str:session_key>/messages"

urlpatterns = [
    path(M, turns.messages_collection, name="session-messages"),
    path(f"{M}/<uuid:message_id>/stop", turns.stop_message, name="session-message-stop"),
    path(f"{M}/<uuid:message_id>/stream", streams.resume_stream, name="session-message-stream"),
    path(f"{M}/<uuid:message_id>/edit", turns.edit_message, name="session-message-edit"),
    path(f"{M}/<uuid:message_id>/regenerate", turns.regenerate_message, name="session-message-regenerate"),
    path("api/ai-sdk/chat", ai_sdk.chat, name="ai-sdk-chat"),
    path("api/ws-ticket", ws_tickets.ws_ticket, name="ws-ticket"),
    path("api/ai-sdk/ws-ticket", ws_tickets.ws_ticket, name="ai-sdk-ws-ticket"),  # its first name
    path("api/ai-sdk/chat/<str:chat_id>/stream", ai_sdk.resume_chat_stream, name="ai-sdk-chat-stream"),
    path("api/ai-sdk/chat/<str:chat_id>/stop", ai_sdk.stop_chat, name="ai-sdk-chat-stop"),
    path("v1/chat/completions", openai_compat.chat_completions, name="openai-chat-completions"),
    path("v1/responses", openai_responses.responses_create, name="openai-responses"),
    path("v1/responses/<str:response_id>", openai_responses.response_detail, name="openai-response"),
    path(
        "v1/responses/<str:response_id>/cancel",
        openai_responses.response_cancel,
        name="openai-response-cancel",
    ),
    path(
        "v1/responses/<str:response_id>/input_items",
        openai_responses.response_input_items,
        name="openai-response-input-items",
    ),
    path("v1/models", openai_models.models_list, name="openai-models"),
    path("v1/models/<path:model_id>", openai_models.model_detail, name="openai-model"),
    path("", include("conversations.api.urls")),
]
