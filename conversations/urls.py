from django.urls import path

from conversations.views import openai_compat, streams, turns

urlpatterns = [
    path("api/sessions/<str:session_key>/messages", turns.post_message, name="session-messages-post"),
    path(
        "api/sessions/<str:session_key>/messages/<uuid:message_id>/stop",
        turns.stop_message,
        name="session-message-stop",
    ),
    path(
        "api/sessions/<str:session_key>/messages/<uuid:message_id>/stream",
        streams.resume_stream,
        name="session-message-stream",
    ),
    path("v1/chat/completions", openai_compat.chat_completions, name="openai-chat-completions"),
]
