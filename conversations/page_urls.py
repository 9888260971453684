"""URLs of the browser chat page: ``/`` and its login and logout."""

from django.urls import path

from conversations.views import first_user, pages

urlpatterns = [
    path("", pages.chat_page, name="chat-page"),
    path("accounts/login/", pages.ChatLoginView.as_view(), name="chat-login"),
    path("accounts/logout/", pages.ChatLogoutView.as_view(), name="chat-logout"),
    path("accounts/first-user/", first_user.first_user, name="first-user"),
]
