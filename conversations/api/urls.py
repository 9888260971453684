from django.urls import path

from conversations.api import views
from conversations.api.docs import ApiDocsView, ApiSchemaView

S = "api/sessions/<str:session_key>"

urlpatterns = [
    path("api/schema/", ApiSchemaView.as_view(), name="schema"),  # API_DOCS: who may read them
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/providers", views.ProviderList.as_view(), name="provider-list"),
    path("api/sessions", views.SessionListCreate.as_view(), name="session-list"),
    path("api/sessions/import", views.SessionImport.as_view(), name="session-import"),
    path(S, views.SessionDetail.as_view(), name="session-detail"),
    path(f"{S}/export", views.SessionExport.as_view(), name="session-export"),
    path(f"{S}/artifacts", views.ArtifactList.as_view(), name="session-artifacts"),
    path(f"{S}/artifacts/<int:artifact_id>", views.ArtifactDetail.as_view(), name="artifact-detail"),
    path(f"{S}/artifacts/<int:artifact_id>/raw", views.ArtifactRaw.as_view(), name="artifact-raw"),
    path(f"{S}/messages/<uuid:message_id>", views.MessageDetail.as_view(), name="message-detail"),
    path(f"{S}/messages/<uuid:message_id>/artifacts", views.ArtifactList.as_view(), name="message-artifacts"),
]
