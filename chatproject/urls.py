"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from conversations.views.health import health

urlpatterns = [
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("", include("conversations.urls")),
]
