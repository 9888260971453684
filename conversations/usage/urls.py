from django.urls import path

from conversations.usage.usage_api import UsageView

urlpatterns = [
    path("api/usage", UsageView.as_view(), name="usage"),
]
