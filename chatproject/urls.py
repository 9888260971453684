"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from conversations.dialects.urls import root_urlpatterns
from conversations.usage.admin_page import usage_admin_view
from conversations.views.health import health
from conversations.views.metrics import metrics

urlpatterns = [
    *root_urlpatterns(),  # COMPAT_ROOT_DIALECT: one seed dialect at the root, before /health
    path("health", health, name="health"),
    path("metrics", metrics, name="metrics"),  # METRICS_ENABLED + METRICS_TOKEN (docs/telemetry.md)
    path("compat/", include("conversations.dialects.urls")),
    path("admin/usage/", usage_admin_view, name="admin-usage"),  # staff: usage, cost, budgets
    path("admin/", admin.site.urls),
    path("", include("conversations.page_urls")),
    path("", include("conversations.urls")),
    path("", include("conversations.usage.urls")),
    path("", include("billing.urls")),
]

handler404 = "conversations.views.error_pages.not_found"
handler500 = "conversations.views.error_pages.internal_error"
